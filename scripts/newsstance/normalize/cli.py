"""Commands of the normalize stage: `newsstance normalize` and `newsstance validate`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsstance.normalize.config import DEFAULT_MAX_BYTES

SCHEMA_KINDS = ("article", "annotation", "gold", "predictions", "quarantine")


def normalize(
    paths: Annotated[
        list[str] | None,
        typer.Argument(help="Raw files or folders, or fsspec URLs such as s3://bucket/crawl (default corpus/raw)."),
    ] = None,
    out: Annotated[
        str | None,
        typer.Option(
            "--out",
            help="Output folder, or an fsspec URL such as s3://bucket/normalized (default corpus/normalized).",
        ),
    ] = None,
    crawl_time: Annotated[
        str | None,
        typer.Option(
            "--crawl-time",
            help="Crawl time for every file (ISO 8601); default: sidecar, crawl manifest, record, file mtime.",
        ),
    ] = None,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Tasks run at once (processes, or Ray CPUs).")] = 1,
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
    remote_cache: Annotated[
        Path | None,
        typer.Option(
            "--remote-cache",
            help="Where the local mirrors of URL outputs live (default $NEWSSTANCE_REMOTE_CACHE, "
            "else ~/.cache/newsstance/remote).",
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
    executor: Annotated[
        str,
        typer.Option(
            "--executor",
            help="Where the stages run: local (processes here), slurm (job arrays) or ray (needs newsstance[ray]).",
        ),
    ] = "local",
    slurm_partition: Annotated[str, typer.Option("--slurm-partition", help="Slurm partition.")] = "normal",
    slurm_time: Annotated[str, typer.Option("--slurm-time", help="Slurm time limit per task.")] = "04:00:00",
    slurm_dry_run: Annotated[
        bool, typer.Option("--slurm-dry-run", help="Write the sbatch scripts without submitting them.")
    ] = False,
    ray_address: Annotated[
        str | None, typer.Option("--ray-address", help="An existing Ray cluster (default: start a local one).")
    ] = None,
) -> None:
    """Turn raw news pages into schema-valid, deduplicated article records (idempotent)."""
    from newsstance.normalize.engine import EngineOptions
    from newsstance.normalize.runner import run_normalize

    options = EngineOptions(
        slurm_partition=slurm_partition, slurm_time=slurm_time, slurm_dry_run=slurm_dry_run, ray_address=ray_address
    )
    summary = run_normalize(
        paths or None,
        out,
        crawl_time=crawl_time,
        workers=workers,
        max_bytes=max_bytes,
        config=config,
        progress=not quiet,
        corpus_root=corpus_root,
        executor=executor,
        engine_options=options,
        remote_cache=remote_cache,
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


def silver(
    articles: Annotated[Path, typer.Argument(help="Folder of article shards.")] = Path("corpus/normalized"),
    out: Annotated[Path, typer.Option("--out", help="Predictions JSONL to write.")] = Path(
        "corpus/normalized/silver/predictions.jsonl"
    ),
    model: Annotated[str | None, typer.Option("--model", help="spaCy pipeline (default: the project's).")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Texts per nlp.pipe batch.")] = 64,
    workers: Annotated[int, typer.Option("--workers", "-j", help="Tasks (processes) run at once.")] = 1,
    executor: Annotated[str, typer.Option("--executor", help="local or ray.")] = "local",
) -> None:
    """Silver pre-annotation of every canonical article (spaCy NER), for `build --silver-predictions`."""
    from newsstance.ner import DEFAULT_MODEL
    from newsstance.normalize.silver import run_silver

    count = run_silver(
        articles, out, model=model or DEFAULT_MODEL, batch_size=batch_size, workers=workers, executor=executor
    )
    typer.echo(f"silver: {count} article(s) pre-annotated -> {out}")


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("normalize")(normalize)
    app.command("silver")(silver)
    app.command("validate")(validate)
