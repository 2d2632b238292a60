"""`newsstance run`: the main job, end to end on a corpus (default: the embedded sample)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the `run` command to the root app."""
