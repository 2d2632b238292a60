"""Commands of the normalize stage: `newsstance normalize` and `newsstance validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsstance.normalize.config import DEFAULT_MAX_BYTES

SCHEMA_KINDS = ("article", "annotation", "gold", "predictions", "quarantine")


def normalize(
    paths: Annotated[list[Path] | None, typer.Argument(help="Raw files or folders (default corpus/raw).")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Output folder (default corpus/normalized).")] = None,
    crawl_time: Annotated[
        str | None,
        typer.Option(
            "--crawl-time",
            help="Crawl time for every file (ISO 8601); default: sidecar, crawl manifest, record, file mtime.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Worker processes.")] = 1,
    max_bytes: Annotated[
        int, typer.Option("--max-bytes", help="Files larger than this are quarantined.")
    ] = DEFAULT_MAX_BYTES,
    config: Annotated[Path | None, typer.Option("--config", help="Chrome phrase config (YAML).")] = None,
    corpus_root: Annotated[
        Path | None,
        typer.Option(
            "--corpus-root",
            help="Folder provenance paths and ids are relative to (default: corpus/raw when the "
            "inputs are inside it, else their common folder).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Turn raw news pages into schema-valid, deduplicated article records (idempotent)."""
    from newsstance.normalize.runner import run_normalize

    summary = run_normalize(
        paths or None,
        out,
        crawl_time=crawl_time,
        workers=workers,
        max_bytes=max_bytes,
        config=config,
        progress=not quiet,
        corpus_root=corpus_root,
    )
    for line in summary.render():
        typer.echo(line)


def validate(
    files: Annotated[list[Path], typer.Argument(help="JSON Lines files.")],
    schema: Annotated[
        str | None,
        typer.Option(
            "--schema",
            help=f"One of: {', '.join(SCHEMA_KINDS)} (default: by file name: quarantine.jsonl, gold.jsonl, "
            "annotations.jsonl, predictions*, else article).",
        ),
    ] = None,
    max_errors: Annotated[int, typer.Option("--max-errors", help="Stop printing after this many errors.")] = 200,
) -> None:
    """Check every line of JSONL files against a schema; print FILE:LINE: /path: message (exit 1 if invalid)."""
    from newsstance.normalize.validate import kind_for, validate_jsonl

    printed = 0
    invalid_files = 0
    for file in files:
        kind = schema or kind_for(file)
        report = validate_jsonl(file, kind)
        for line in report.lines[: max(0, max_errors - printed)]:
            typer.echo(line)
        printed += len(report.lines)
        if report.invalid:
            invalid_files += 1
            typer.echo(
                f"{file}: {report.invalid} of {report.records} record(s) invalid against the {kind} schema", err=True
            )
        else:
            typer.echo(f"{file}: {report.records} record(s) valid against the {kind} schema")
    if printed > max_errors:
        typer.echo(f"... {printed - max_errors} more error(s)")
    if invalid_files:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("normalize")(normalize)
    app.command("validate")(validate)
