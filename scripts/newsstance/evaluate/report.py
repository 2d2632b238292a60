"""Score a predictions file against a release split: results dict, JSON file and a rich table."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table
from tqdm import tqdm

from newsstance import __version__
from newsstance.errors import UserError
from newsstance.evaluate.bootstrap import paired_difference, percentile_interval, resampled_sums
from newsstance.evaluate.dataset import Release
from newsstance.evaluate.predictions import (
    TASK_TITLES,
    TASKS,
    PredictionsSummary,
    TextLengths,
    stream_predictions,
)
from newsstance.evaluate.scoring import NOT_MATCHED, SystemCounts, layout_for, metrics, raw_counts, system_matrix
from newsstance.records import write_json
from newsstance.scheme import Scheme, load_scheme

CONFIDENCE = 0.95
ALPHA = 0.05

# Figures shown in the comparison table (all figures are compared in the JSON).
HEADLINE = (
    "entities/strict/micro/f1",
    "entities/exact/micro/f1",
    "entities/partial/micro/f1",
    "entities/type/micro/f1",
    "entities/strict/macro/f1",
    "tokens/micro/f1",
    "document_stance/overall/accuracy",
    "document_stance/overall/macro_f1",
    "document_stance/overall/f_avg",
    "mention_stance/accuracy",
    "mention_stance/macro_f1",
)


def _number(value: float) -> float | None:
    return None if np.isnan(value) else float(value)


def nest(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"a/b/c": x} -> {"a": {"b": {"c": x}}} (keys are label names and ids: no slashes)."""
    root: dict[str, Any] = {}
    for key, value in flat.items():
        node = root
        *parents, leaf = key.split("/")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return root


def flatten(nested: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Inverse of `nest` down to figures ({"value", ...} or {"difference", ...}) and plain numbers."""
    out: dict[str, Any] = {}
    for key, value in nested.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and "value" not in value and "difference" not in value:
            out.update(flatten(value, path + "/"))
        else:
            out[path] = value
    return out


def _figures(point: dict[str, np.ndarray], resampled: dict[str, np.ndarray] | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    for key, values in point.items():
        low, high = percentile_interval(resampled[key], CONFIDENCE) if resampled is not None else (None, None)
        figures[key] = {"value": _number(values[0]), "ci_low": low, "ci_high": high}
    return figures


# The result sections of each task.
SECTIONS = {"ner": ("entities", "tokens"), "stance": ("document_stance",), "mention-stance": ("mention_stance",)}
SCORED, NOT_PREDICTED, NOT_SELECTED = "scored", "not predicted", "not selected"


def _score_file(
    path: Path,
    release: Release,
    scheme: Scheme,
    *,
    allow_missing: bool,
    min_overlap: float,
    progress: bool,
) -> tuple[SystemCounts, PredictionsSummary]:
    """Stream one predictions file through the counters (memory independent of the file's size)."""
    summary = PredictionsSummary(path)
    system = SystemCounts(scheme, release.gold, min_overlap)
    lengths = TextLengths(release.gold.ids, release.gold.text_lengths)
    stream = stream_predictions(path, scheme, lengths, summary, allow_missing=allow_missing, split=release.split)
    bar = tqdm(
        stream,
        total=len(release.gold),
        desc=f"scoring {path.name}",
        unit="article",
        disable=None if progress else True,
        leave=False,
    )
    for prediction in bar:
        system.add(lengths.row[prediction.id], prediction)
    return system.finish(), summary


def parse_tasks(text: str | None) -> tuple[str, ...] | None:
    """`--tasks ner,stance` -> ("ner", "stance"); None = every task the file predicts."""
    if text is None:
        return None
    tasks = tuple(dict.fromkeys(part.strip() for part in text.split(",") if part.strip()))
    unknown = [task for task in tasks if task not in TASKS]
    if unknown or not tasks:
        raise UserError(f"--tasks: unknown task {', '.join(unknown) or '(none)'} (known: {', '.join(TASKS)})")
    return tasks


def task_status(summary: PredictionsSummary, selected: Sequence[str] | None) -> dict[str, str]:
    """scored / not predicted / not selected per task; a selected task the file does not predict is an error."""
    predicted = summary.tasks
    for task in selected or ():
        if task not in predicted:
            raise UserError(f"--tasks {task}: {summary.path} has no {TASK_TITLES[task]} predictions")
    return {
        task: (SCORED if selected is None or task in selected else NOT_SELECTED) if task in predicted else NOT_PREDICTED
        for task in TASKS
    }


def _mark_unscored(nested: dict[str, Any], status: Mapping[str, str], targets: set[str], scheme: Scheme) -> None:
    """Replace the sections of tasks not scored (and targets not predicted) by their status, in place."""
    for task, sections in SECTIONS.items():
        if status[task] != SCORED:
            for section in sections:
                nested[section] = status[task]
    document = nested.get("document_stance")
    if isinstance(document, dict):
        for target in scheme.target_ids:
            if target not in targets:
                document["per_target"][target] = NOT_PREDICTED


def _only_scored(flat: dict[str, Any], status: Mapping[str, str]) -> dict[str, Any]:
    dropped = tuple(
        f"{section}/" for task, sections in SECTIONS.items() if status[task] != SCORED for section in sections
    )
    return {key: value for key, value in flat.items() if not key.startswith(dropped)} if dropped else flat


@dataclass
class _Scored:
    """Per-file facts the report needs once the per-article counts are summed (the systems are dropped)."""

    summary_a: PredictionsSummary
    status: dict[str, str]
    summary_b: PredictionsSummary | None = None
    status_b: dict[str, str] | None = None
    shared_mentions: int = 0


def evaluate_predictions(
    predictions_path: Path,
    release: Release,
    *,
    scheme: Scheme | None = None,
    allow_missing: bool = False,
    resamples: int = 1000,
    seed: int = 0,
    compare: Path | None = None,
    min_overlap: float = 1.0,
    progress: bool = True,
    tasks: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Every figure with its 95% bootstrap CI (and, with `compare`, paired differences A - B).

    Tasks a file does not predict are reported as "not predicted" (never as a score);
    `tasks` selects explicitly. Predictions are streamed: memory does not grow with the files.
    """
    scheme = scheme or load_scheme()
    counts, scored = _count_matrix(
        predictions_path,
        release,
        scheme,
        compare,
        tasks,
        allow_missing=allow_missing,
        min_overlap=min_overlap,
        progress=progress,
    )
    totals = counts.sum(axis=0, keepdims=True)
    sums = resampled_sums(counts, resamples, seed, progress) if resamples > 0 else None
    del counts
    width = layout_for(scheme).width
    results = _system_results(
        release,
        scheme,
        scored,
        totals[:, :width],
        sums[:, :width] if sums is not None else None,
        allow_missing=allow_missing,
        resamples=resamples,
        seed=seed,
        min_overlap=min_overlap,
    )
    if compare is not None:
        results["comparison"] = _comparison(predictions_path, scheme, scored, totals, sums, width, allow_missing)
    return results


def _count_matrix(
    predictions_path: Path,
    release: Release,
    scheme: Scheme,
    compare: Path | None,
    tasks: Sequence[str] | None,
    *,
    allow_missing: bool,
    min_overlap: float,
    progress: bool,
) -> tuple[np.ndarray, _Scored]:
    """Score each file into one (articles x columns) matrix, A's block first, so that a single
    bootstrap resamples both systems over the same articles (the paired comparison needs that)."""

    def score(path: Path) -> tuple[SystemCounts, PredictionsSummary]:
        return _score_file(
            path, release, scheme, allow_missing=allow_missing, min_overlap=min_overlap, progress=progress
        )

    system_a, summary_a = score(predictions_path)
    scored = _Scored(summary_a, task_status(summary_a, tasks))
    blocks = [system_matrix(system_a)]
    if compare is not None:
        system_b, summary_b = score(compare)
        scored.summary_b = summary_b
        scored.status_b = task_status(summary_b, tasks)
        # Mention stance of both systems on the gold mentions both matched: the same items for A and B.
        blocks.append(system_matrix(system_a, matched=system_b.mention != NOT_MATCHED))
        blocks.append(system_matrix(system_b, matched=system_a.mention != NOT_MATCHED))
        scored.shared_mentions = int(
            np.count_nonzero(
                (release.gold.entity_stances >= 0)
                & (system_a.mention != NOT_MATCHED)
                & (system_b.mention != NOT_MATCHED)
            )
        )
        del system_b
    del system_a
    return np.concatenate(blocks, axis=1), scored


def _system_results(
    release: Release,
    scheme: Scheme,
    scored: _Scored,
    totals: np.ndarray,
    sums: np.ndarray | None,
    *,
    allow_missing: bool,
    resamples: int,
    seed: int,
    min_overlap: float,
) -> dict[str, Any]:
    """The results of file A alone, with what is needed to reproduce them (dataset, file, settings);
    `totals`/`sums` are A's block only."""
    status = scored.status
    targets_a = sorted(scored.summary_a.targets)
    point = metrics(scheme, totals, targets_a)
    resampled = metrics(scheme, sums, targets_a) if sums is not None else None
    flat: dict[str, Any] = _figures(point, resampled)
    flat.update(raw_counts(scheme, totals, targets_a))
    nested = nest(_only_scored(flat, status))
    _mark_unscored(nested, status, scored.summary_a.targets, scheme)
    return {
        "tool": {"name": "newsstance", "version": __version__},
        "dataset": {
            "id": release.dataset_id,
            "config": release.config,
            "split": release.split,
            "version": release.version,
            "revision": release.revision,
            "articles": len(release.gold),
        },
        "predictions": _describe(scored.summary_a, allow_missing),
        "tasks": status,
        "settings": {
            "resamples": resamples,
            "seed": seed,
            "confidence": CONFIDENCE,
            "bootstrap_unit": "article",
            "ci_method": "percentile",
            "min_overlap_percent": min_overlap,
            "scheme_version": scheme.scheme_version,
            "f_avg_classes": scheme.polar_stance_names,
        },
        **nested,
    }


def _comparison(
    predictions_path: Path,
    scheme: Scheme,
    scored: _Scored,
    totals: np.ndarray,
    sums: np.ndarray | None,
    width: int,
    allow_missing: bool,
) -> dict[str, Any]:
    """Paired differences A - B on the paired blocks, pooled over the targets both files predict,
    for the tasks both score (a task either leaves out is reported with who left it out)."""
    assert scored.summary_b is not None and scored.status_b is not None
    status, status_b = scored.status, scored.status_b
    shared_targets = sorted(scored.summary_a.targets & scored.summary_b.targets)
    point_a = metrics(scheme, totals[:, width : 2 * width], shared_targets)
    point_b = metrics(scheme, totals[:, 2 * width :], shared_targets)
    resampled_a = metrics(scheme, sums[:, width : 2 * width], shared_targets) if sums is not None else None
    resampled_b = metrics(scheme, sums[:, 2 * width :], shared_targets) if sums is not None else None
    compared = {
        task: SCORED
        if status[task] == SCORED and status_b[task] == SCORED
        else " and ".join(
            f"{status_x} by {name}"
            for name, status_x in (("A", status[task]), ("B", status_b[task]))
            if status_x != SCORED
        )
        for task in TASKS
    }
    differences = {
        key: paired_difference(
            float(point_a[key][0]),
            float(point_b[key][0]),
            resampled_a[key] if resampled_a is not None else np.array([]),
            resampled_b[key] if resampled_b is not None else np.array([]),
            CONFIDENCE,
            ALPHA,
        ).as_dict()
        for key in _only_scored(dict(point_a), compared)
    }
    figures = nest(differences)
    _mark_unscored(figures, compared, set(shared_targets), scheme)
    return {
        "a": str(predictions_path),
        "b": _describe(scored.summary_b, allow_missing),
        "tasks": compared,
        "mention_stance_shared_gold_mentions": scored.shared_mentions,
        "alpha": ALPHA,
        "test": "paired bootstrap over articles, two-sided",
        "figures": figures,
    }


def _describe(summary: PredictionsSummary, allow_missing: bool) -> dict[str, Any]:
    return {
        "path": str(summary.path),
        "sha256": summary.sha256,
        "articles_predicted": summary.lines,
        "missing": len(summary.missing),
        "allow_missing": allow_missing,
        "tasks": sorted(summary.tasks, key=TASKS.index),
        "targets": sorted(summary.targets),
    }


def write_results(path: Path, results: dict[str, Any]) -> None:
    write_json(path, results)


# --- printing ----------------------------------------------------------------------------------


def _fmt(figure: Mapping[str, Any] | None, with_ci: bool = True) -> str:
    if not figure or figure.get("value") is None:
        return "-"
    text = f"{figure['value']:.3f}"
    if with_ci and figure.get("ci_low") is not None:
        text += f" [{figure['ci_low']:.3f}, {figure['ci_high']:.3f}]"
    return text


def render(results: Mapping[str, Any], console: Console | None = None) -> None:
    """Print the headline tables (entities, per label, stance, comparison); unscored tasks say why."""
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    dataset = results["dataset"]
    console.print(
        f"[bold]{results['predictions']['path']}[/] on {dataset['id']} "
        f"({dataset['config']}, split {dataset['split']}, version {dataset['version'] or '-'}, "
        f"{dataset['articles']} articles); 95% CI: bootstrap over articles, "
        f"{results['settings']['resamples']} resamples, seed {results['settings']['seed']}"
    )
    tasks = results.get("tasks", {})
    unscored = [f"{TASK_TITLES[task]}: {status}" for task, status in tasks.items() if status != SCORED]
    if unscored:
        console.print("Not scored - " + "; ".join(unscored))
    entities = results["entities"]
    if isinstance(entities, Mapping):
        _render_entities(console, entities, results["tokens"])
    document, mention = results["document_stance"], results["mention_stance"]
    if isinstance(document, Mapping) or isinstance(mention, Mapping):
        polar = " / ".join(results["settings"].get("f_avg_classes") or [])
        stance = Table(title="Stance")
        for column in ("target", "accuracy", "macro F1 [95% CI]", f"F_avg ({polar}) [95% CI]", "n"):
            stance.add_column(column, justify="left" if column == "target" else "right")
        if isinstance(document, Mapping):
            for name, figures in [("overall", document["overall"]), *document["per_target"].items()]:
                if not isinstance(figures, Mapping):
                    stance.add_row(name, figures, "", "", "")
                    continue
                stance.add_row(
                    name,
                    _fmt(figures["accuracy"], False),
                    _fmt(figures["macro_f1"]),
                    _fmt(figures["f_avg"]),
                    str(figures["pairs"]),
                )
        else:
            stance.add_row("documents", document, "", "", "")
        if isinstance(mention, Mapping):
            stance.add_row(
                "mentions (exact spans)",
                _fmt(mention["accuracy"], False),
                _fmt(mention["macro_f1"]),
                "-",
                f"{mention['matched']}/{mention['gold_with_stance']}",
            )
        else:
            stance.add_row("mentions", mention, "", "", "")
        console.print(stance)
    if "comparison" in results:
        _render_comparison(console, results)


def _render_entities(console: Console, entities: Mapping[str, Any], tokens: Mapping[str, Any]) -> None:
    table = Table(title="Entities (nervaluate schemes) and tokens (seqeval)")
    for column in ("scheme", "precision", "recall", "F1 [95% CI]", "macro F1"):
        table.add_column(column, justify="left" if column == "scheme" else "right")
    for scheme_name, label in (
        ("strict", "strict"),
        ("exact", "exact boundary"),
        ("partial", "partial"),
        ("type", "type only"),
    ):
        micro = entities[scheme_name]["micro"]
        table.add_row(
            label,
            _fmt(micro["precision"], False),
            _fmt(micro["recall"], False),
            _fmt(micro["f1"]),
            _fmt(entities[scheme_name]["macro"]["f1"], False),
        )
    table.add_row(
        "tokens (seqeval)",
        _fmt(tokens["micro"]["precision"], False),
        _fmt(tokens["micro"]["recall"], False),
        _fmt(tokens["micro"]["f1"]),
        _fmt(tokens["macro"]["f1"], False),
    )
    console.print(table)

    labels = Table(title="Per label (strict)")
    for column in ("label", "precision", "recall", "F1", "partial F1", "gold"):
        labels.add_column(column, justify="left" if column == "label" else "right")
    for label, figures in entities["strict"]["per_label"].items():
        gold = figures["correct"] + figures["incorrect"] + figures["missed"]
        labels.add_row(
            label,
            _fmt(figures["precision"], False),
            _fmt(figures["recall"], False),
            _fmt(figures["f1"], False),
            _fmt(entities["partial"]["per_label"][label]["f1"], False),
            str(gold),
        )
    console.print(labels)


def _render_comparison(console: Console, results: Mapping[str, Any]) -> None:
    comparison = results["comparison"]
    table = Table(title=f"Paired bootstrap: A = {results['predictions']['path']} vs B = {comparison['b']['path']}")
    for column in ("figure", "A", "B", "A - B [95% CI]", "p", "significant"):
        table.add_column(column, justify="left" if column == "figure" else "right")
    flat = flatten(comparison["figures"])
    for key in HEADLINE:
        section = key.split("/")[0]
        diff = flat.get(key)
        if diff is None:  # the whole section was not compared
            status = flat.get(section, "not compared")
            table.add_row(key, status, "", "", "", "")
            continue
        if diff["difference"] is None:
            table.add_row(key, "-", "-", "-", "-", "-")
            continue
        ci = f" [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]" if diff["ci_low"] is not None else ""
        table.add_row(
            key,
            f"{diff['a']:.3f}",
            f"{diff['b']:.3f}",
            f"{diff['difference']:+.3f}{ci}",
            "-" if diff["p_value"] is None else f"{diff['p_value']:.3f}",
            "yes" if diff["significant"] else "no",
        )
    console.print(table)
    shared = comparison.get("mention_stance_shared_gold_mentions")
    if comparison["tasks"].get("mention-stance") == SCORED:
        console.print(f"Mention stance compared on the {shared} gold mentions both systems matched.")
