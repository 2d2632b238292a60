"""Score a predictions file against a release split: results dict, JSON file and a rich table."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from newsstance import __version__
from newsstance.evaluate.bootstrap import paired_difference, percentile_interval, resampled_sums
from newsstance.evaluate.dataset import Release
from newsstance.evaluate.predictions import PredictionsFile, read_predictions
from newsstance.evaluate.scoring import count_matrix, layout_for, metrics, raw_counts
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


def _scored(
    scheme: Scheme, release: Release, predictions: PredictionsFile, min_overlap: float, progress: bool
) -> np.ndarray:
    ordered = [predictions.by_id[article.id] for article in release.articles]
    return count_matrix(scheme, release.articles, ordered, min_overlap=min_overlap, progress=progress)


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
) -> dict[str, Any]:
    """Every figure with its 95% bootstrap CI (and, with `compare`, paired differences A - B)."""
    scheme = scheme or load_scheme()
    text_lengths = {article.id: len(article.text) for article in release.articles}
    loaded = read_predictions(predictions_path, scheme, text_lengths, allow_missing=allow_missing, split=release.split)
    other = (
        read_predictions(compare, scheme, text_lengths, allow_missing=allow_missing, split=release.split)
        if compare
        else None
    )
    counts = _scored(scheme, release, loaded, min_overlap, progress)
    width = layout_for(scheme).width
    if other is not None:
        counts = np.concatenate([counts, _scored(scheme, release, other, min_overlap, progress)], axis=1)
    totals = counts.sum(axis=0, keepdims=True)
    sums = resampled_sums(counts, resamples, seed, progress) if resamples > 0 else None
    point = metrics(scheme, totals[:, :width])
    resampled = metrics(scheme, sums[:, :width]) if sums is not None else None
    flat: dict[str, Any] = _figures(point, resampled)
    flat.update(raw_counts(scheme, totals[:, :width]))
    flat["mention_stance/attempted"] = loaded.has_mention_stance
    if not loaded.has_mention_stance:
        for key in flat:
            if key.startswith("mention_stance/") and isinstance(flat[key], dict):
                flat[key] = {"value": None, "ci_low": None, "ci_high": None}
    results: dict[str, Any] = {
        "tool": {"name": "newsstance", "version": __version__},
        "dataset": {
            "id": release.dataset_id,
            "config": release.config,
            "split": release.split,
            "version": release.version,
            "revision": release.revision,
            "articles": len(release.articles),
        },
        "predictions": _describe(loaded, allow_missing),
        "settings": {
            "resamples": resamples,
            "seed": seed,
            "confidence": CONFIDENCE,
            "bootstrap_unit": "article",
            "ci_method": "percentile",
            "min_overlap_percent": min_overlap,
            "scheme_version": scheme.scheme_version,
        },
        **nest(flat),
    }
    if other is not None:
        point_b = metrics(scheme, totals[:, width:])
        resampled_b = metrics(scheme, sums[:, width:]) if sums is not None else None
        differences = {}
        both_mention = loaded.has_mention_stance and other.has_mention_stance
        for key in point:
            if key.startswith("mention_stance/") and not both_mention:
                differences[key] = {
                    "a": None,
                    "b": None,
                    "difference": None,
                    "ci_low": None,
                    "ci_high": None,
                    "p_value": None,
                    "significant": False,
                }
                continue
            differences[key] = paired_difference(
                float(point[key][0]),
                float(point_b[key][0]),
                resampled[key] if resampled is not None else np.array([]),
                resampled_b[key] if resampled_b is not None else np.array([]),
                CONFIDENCE,
                ALPHA,
            ).as_dict()
        results["comparison"] = {
            "a": str(predictions_path),
            "b": _describe(other, allow_missing),
            "alpha": ALPHA,
            "test": "paired bootstrap over articles, two-sided",
            "figures": nest(differences),
        }
    return results


def _describe(predictions: PredictionsFile, allow_missing: bool) -> dict[str, Any]:
    return {
        "path": str(predictions.path),
        "sha256": predictions.sha256,
        "articles_predicted": len(predictions.by_id) - len(predictions.missing),
        "missing": len(predictions.missing),
        "allow_missing": allow_missing,
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
    """Print the headline tables (entities, per label, stance, comparison)."""
    console = console or Console(width=None if sys.stdout.isatty() else 120)
    dataset = results["dataset"]
    console.print(
        f"[bold]{results['predictions']['path']}[/] on {dataset['id']} "
        f"({dataset['config']}, split {dataset['split']}, version {dataset['version'] or '-'}, "
        f"{dataset['articles']} articles); 95% CI: bootstrap over articles, "
        f"{results['settings']['resamples']} resamples, seed {results['settings']['seed']}"
    )
    entities = results["entities"]
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
    tokens = results["tokens"]
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

    stance = Table(title="Stance")
    for column in ("target", "accuracy", "macro F1 [95% CI]", "F_avg [95% CI]", "n"):
        stance.add_column(column, justify="left" if column == "target" else "right")
    document = results["document_stance"]
    rows = [("overall", document["overall"]), *document["per_target"].items()]
    for name, figures in rows:
        stance.add_row(
            name,
            _fmt(figures["accuracy"], False),
            _fmt(figures["macro_f1"]),
            _fmt(figures["f_avg"]),
            str(figures["pairs"]),
        )
    mention = results["mention_stance"]
    stance.add_row(
        "mentions (exact spans)",
        _fmt(mention["accuracy"], False),
        _fmt(mention["macro_f1"]),
        "-",
        f"{mention['matched']}/{mention['gold_with_stance']}",
    )
    console.print(stance)

    if "comparison" in results:
        comparison = Table(
            title=f"Paired bootstrap: A = {results['predictions']['path']} vs B = {results['comparison']['b']['path']}"
        )
        for column in ("figure", "A", "B", "A - B [95% CI]", "p", "significant"):
            comparison.add_column(column, justify="left" if column == "figure" else "right")
        flat = flatten(results["comparison"]["figures"])
        for key in HEADLINE:
            diff = flat[key]
            if diff["difference"] is None:
                comparison.add_row(key, "-", "-", "-", "-", "-")
                continue
            ci = f" [{diff['ci_low']:+.3f}, {diff['ci_high']:+.3f}]" if diff["ci_low"] is not None else ""
            comparison.add_row(
                key,
                f"{diff['a']:.3f}",
                f"{diff['b']:.3f}",
                f"{diff['difference']:+.3f}{ci}",
                "-" if diff["p_value"] is None else f"{diff['p_value']:.3f}",
                "yes" if diff["significant"] else "no",
            )
        console.print(comparison)
