"""Commands `newsstance agree` and `newsstance adjudicate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsstance.errors import UserError


def _default(path: Path | None, relative: str) -> Path:
    if path is not None:
        return path
    from newsstance.paths import project_root

    return project_root() / relative


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""

    @app.command("agree")
    def agree(
        annotations: Annotated[
            Path | None,
            typer.Option("--annotations", help="Annotation records (default annotations/annotations.jsonl)."),
        ] = None,
        out: Annotated[
            Path | None, typer.Option("--out", help="Agreement report (default annotations/agreement.json).")
        ] = None,
    ) -> None:
        """Inter-annotator agreement: stance alpha/kappa per target, entity span F1, mention stance."""
        from newsstance.scheme import load_scheme
        from newsstance.studio.agree import run_agree

        run_agree(
            _default(annotations, "annotations/annotations.jsonl"),
            _default(out, "annotations/agreement.json"),
            load_scheme(),
        )

    @app.command("adjudicate")
    def adjudicate(
        annotations: Annotated[
            Path | None,
            typer.Option("--annotations", help="Annotation records (default annotations/annotations.jsonl)."),
        ] = None,
        policy: Annotated[
            str, typer.Option("--policy", help="How items are decided without ground truth: majority or unanimous.")
        ] = "majority",
        min_annotators: Annotated[
            int,
            typer.Option(
                "--min-annotators", help="Articles with fewer annotators (and no ground truth) go to conflicts."
            ),
        ] = 1,
        out: Annotated[
            Path | None, typer.Option("--out", help="Gold records (default annotations/gold.jsonl).")
        ] = None,
        conflicts: Annotated[
            Path | None,
            typer.Option(
                "--conflicts", help="Conflicts file shared with the pull (default annotations/conflicts.jsonl)."
            ),
        ] = None,
    ) -> None:
        """Gold per article: ground truth wins, else unanimous/majority decisions; the rest to conflicts."""
        from newsstance.scheme import load_scheme
        from newsstance.studio.adjudicate import POLICIES, run_adjudicate

        if policy not in POLICIES:
            raise UserError(f"--policy must be one of {', '.join(POLICIES)}, got {policy!r}")
        run_adjudicate(
            _default(annotations, "annotations/annotations.jsonl"),
            _default(out, "annotations/gold.jsonl"),
            _default(conflicts, "annotations/conflicts.jsonl"),
            load_scheme(),
            policy=policy,
            min_annotators=min_annotators,
        )
