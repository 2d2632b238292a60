"""User-facing errors: the CLI prints them as one line and exits non-zero, no traceback."""


class UserError(Exception):
    """A problem the user can fix (bad option, missing file, unreachable server)."""

    exit_code = 2


class EnvironmentProblem(UserError):
    """The installation lacks something every input needs (a module, a model): the run stops with
    one line instead of quarantining every page for the same reason."""
