"""The `newsstance` command: one entry point, a subcommand per stage.

Each stage module registers its own commands (`register(app)`), so stages stay
independent. User errors (`UserError`) print one line and exit 2 - no traceback.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from newsstance import __version__
from newsstance.errors import UserError

app = typer.Typer(
    name="newsstance",
    help="Normalise scraped news, annotate entities and stance in Label Studio, publish and benchmark.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    rich_markup_mode=None,
)
scheme_app = typer.Typer(help="The annotation scheme and the files derived from it.", no_args_is_help=True)
app.add_typer(scheme_app, name="scheme")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"newsstance {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """newsstance: an annotated news corpus and the toolkit that makes it."""


@scheme_app.command("sync")
def scheme_sync(
    scheme_path: Annotated[
        Path | None, typer.Option("--scheme", help="Scheme YAML (default annotations/scheme.yaml).")
    ] = None,
) -> None:
    """Regenerate the Label Studio config and the JSON Schemas derived from the scheme."""
    from newsstance.scheme import load_scheme, sync_derived_files

    scheme = load_scheme(scheme_path)
    changed = sync_derived_files(scheme)
    for path in changed:
        typer.echo(f"wrote {path}")
    typer.echo(f"{len(changed)} file(s) changed")


@scheme_app.command("check")
def scheme_check(
    scheme_path: Annotated[
        Path | None, typer.Option("--scheme", help="Scheme YAML (default annotations/scheme.yaml).")
    ] = None,
) -> None:
    """Fail when a derived file is out of date with the scheme."""
    from newsstance.scheme import load_scheme, out_of_sync

    stale = out_of_sync(load_scheme(scheme_path))
    if stale:
        raise UserError(f"out of date with the scheme: {', '.join(stale)} (run `newsstance scheme sync`)")
    typer.echo("derived files are in sync with the scheme")


@scheme_app.command("config")
def scheme_config(
    scheme_path: Annotated[
        Path | None, typer.Option("--scheme", help="Scheme YAML (default annotations/scheme.yaml).")
    ] = None,
) -> None:
    """Print the Label Studio labelling config."""
    from newsstance.scheme import load_scheme

    typer.echo(load_scheme(scheme_path).label_config(), nl=False)


def _register_stages() -> None:
    from newsstance.evaluate.cli import register as register_evaluate
    from newsstance.gold.cli import register as register_gold
    from newsstance.normalize.cli import register as register_normalize
    from newsstance.release.cli import register as register_release
    from newsstance.run import register as register_run
    from newsstance.studio.cli import register as register_studio

    for register in (
        register_run,
        register_normalize,
        register_studio,
        register_gold,
        register_release,
        register_evaluate,
    ):
        register(app)


_register_stages()


def main() -> None:
    try:
        app(standalone_mode=True)
    except UserError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
