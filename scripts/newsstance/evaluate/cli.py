"""Commands of the evaluate stage: `evaluate`, `baseline`, `leaderboard`."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from newsstance.errors import UserError
from newsstance.ner import DEFAULT_MODEL

DatasetOption = Annotated[
    str | None,
    typer.Option(
        "--dataset", help="Release folder or Hub repo id owner/name (default: the newest version under dist/)."
    ),
]
ConfigOption = Annotated[str, typer.Option("--config", help="Dataset config.")]
RevisionOption = Annotated[str | None, typer.Option("--revision", help="Hub revision or tag, e.g. v1.0.0.")]
SplitOption = Annotated[str, typer.Option("--split", help="Split to score.")]
ResamplesOption = Annotated[int, typer.Option("--resamples", min=0, help="Bootstrap resamples (0: no CIs).")]
SeedOption = Annotated[int, typer.Option("--seed", help="Bootstrap seed.")]
ModelOption = Annotated[str, typer.Option("--model", help="Installed spaCy pipeline for the spacy baseline.")]
LabelMapOption = Annotated[
    Path | None,
    typer.Option(
        "--label-map", help="spaCy type -> scheme label YAML for the spacy baseline (default: the shipped one)."
    ),
]
TasksOption = Annotated[
    str | None,
    typer.Option(
        "--tasks",
        help="Comma-separated tasks to score: ner, stance, mention-stance (default: every task the file predicts).",
    ),
]


def evaluate(
    predictions: Annotated[Path, typer.Argument(help="Predictions file (JSON Lines, schema/predictions.schema.json).")],
    dataset: DatasetOption = None,
    config: ConfigOption = "default",
    revision: RevisionOption = None,
    split: SplitOption = "test",
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write every figure as JSON here.")] = None,
    allow_missing: Annotated[bool, typer.Option("--allow-missing", help="Score missing articles as empty.")] = False,
    compare: Annotated[Path | None, typer.Option("--compare", help="Second predictions file: paired test.")] = None,
    resamples: ResamplesOption = 1000,
    seed: SeedOption = 0,
    tasks: TasksOption = None,
) -> None:
    """Score predictions against a release split: entities, tokens, stance, with 95% bootstrap CIs.

    A task the file does not predict (no `entities`, or no `stances`) is reported as not predicted."""
    from newsstance.evaluate.dataset import load_release
    from newsstance.evaluate.report import evaluate_predictions, parse_tasks, render, write_results

    selected = parse_tasks(tasks)
    for path in (predictions, compare):
        if path is not None and not path.is_file():
            raise UserError(f"predictions file not found: {path}")
    release = load_release(dataset, config=config, split=split, revision=revision)
    _say_gold(release.local_path)
    results = evaluate_predictions(
        predictions,
        release,
        allow_missing=allow_missing,
        resamples=resamples,
        seed=seed,
        compare=compare,
        tasks=selected,
    )
    render(results)
    if output:
        write_results(output, results)
        typer.echo(f"wrote {output}", err=True)


def baseline(
    name: Annotated[str, typer.Argument(help="majority | gazetteer | spacy | stance")],
    output: Annotated[Path, typer.Option("--output", "-o", help="Predictions file to write.")],
    dataset: DatasetOption = None,
    config: ConfigOption = "default",
    revision: RevisionOption = None,
    split: SplitOption = "test",
    model: ModelOption = DEFAULT_MODEL,
    label_map: LabelMapOption = None,
) -> None:
    """Write a baseline's predictions for a split (trained on the train split)."""
    from newsstance.evaluate.baselines import BASELINES, baseline_predictions
    from newsstance.evaluate.dataset import load_release
    from newsstance.records import write_jsonl
    from newsstance.scheme import load_scheme

    if name not in BASELINES:
        raise UserError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
    scheme = load_scheme()
    release = load_release(
        dataset,
        config=config,
        split=split,
        revision=revision,
        extra_splits=("train",) if split != "train" else (),
        scheme=scheme,
    )
    _say_gold(release.local_path)
    train = release.other_splits.get("train", release.articles)
    count = write_jsonl(output, baseline_predictions(name, train, release.articles, scheme, model, label_map=label_map))
    typer.echo(f"wrote {count} predictions to {output}")


def leaderboard(
    dataset: DatasetOption = None,
    config: ConfigOption = "default",
    revision: RevisionOption = None,
    split: SplitOption = "test",
    model: ModelOption = DEFAULT_MODEL,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Results JSON (default benchmarks/results/leaderboard-<version>.json)."),
    ] = None,
    predictions_dir: Annotated[
        Path | None, typer.Option("--predictions-dir", help="Keep each baseline's predictions file here.")
    ] = None,
    resamples: ResamplesOption = 1000,
    seed: SeedOption = 0,
    label_map: LabelMapOption = None,
) -> None:
    """Run every baseline on a split; write the results JSON and print the card's Markdown table."""
    from newsstance.evaluate.leaderboard import leaderboard_markdown, run_leaderboard, write_leaderboard
    from newsstance.paths import project_root

    results = run_leaderboard(
        dataset,
        split=split,
        config=config,
        revision=revision,
        spacy_model=model,
        predictions_dir=predictions_dir,
        resamples=resamples,
        seed=seed,
        label_map=label_map,
    )
    version = (results.get("dataset") or {}).get("version") or "unversioned"
    output = output or project_root() / "benchmarks" / "results" / f"leaderboard-{version}.json"
    write_leaderboard(output, results)
    typer.echo(leaderboard_markdown(results), nl=False)
    typer.echo(f"wrote {output}", err=True)


def _say_gold(local_path: Path | None) -> None:
    """Name the gold the scored release was built from (the default of `run` and `build`)."""
    from newsstance.release.load import release_gold

    gold = release_gold(local_path)
    if gold:
        typer.echo(f"gold: {gold}, via release {local_path}", err=True)


def register(app: typer.Typer) -> None:
    """Add this stage's commands to the root app."""
    app.command("evaluate")(evaluate)
    app.command("baseline")(baseline)
    app.command("leaderboard")(leaderboard)
