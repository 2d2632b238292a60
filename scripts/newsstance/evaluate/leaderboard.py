"""Run every baseline on a split and make the leaderboard (results JSON + the card's Markdown table).

`run_leaderboard(...)` works on any release folder - including a staging folder the
release builder has not published yet - so the builder can render the table into the card
(`leaderboard_markdown(results)`) before it writes the manifest.
"""

from __future__ import annotations

import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from newsstance import __version__
from newsstance.errors import UserError
from newsstance.evaluate.baselines import BASELINES, baseline_predictions
from newsstance.evaluate.dataset import Release, load_release
from newsstance.evaluate.report import evaluate_predictions, flatten
from newsstance.ner import DEFAULT_MODEL
from newsstance.records import write_json, write_jsonl
from newsstance.scheme import Scheme, load_scheme

DESCRIPTIONS = {
    "majority": "Most frequent stance per target in train; no entities.",
    "gazetteer": "Entity strings and labels seen in train, leftmost-longest match at word boundaries; majority stance.",
    "spacy": "spaCy {model} NER mapped to the scheme's labels; majority stance.",
    "stance": "Document stance only: TF-IDF word 1-2-grams + logistic regression per target, trained on train.",
}

# Leaderboard columns: title -> figure key in the results.
COLUMNS = {
    "Strict F1": "entities/strict/micro/f1",
    "Partial F1": "entities/partial/micro/f1",
    "Token F1 (seqeval)": "tokens/micro/f1",
    "Stance macro-F1": "document_stance/overall/macro_f1",
    "F_avg": "document_stance/overall/f_avg",
}


def run_leaderboard(
    dataset: str | Path | None = None,
    *,
    split: str = "test",
    config: str = "default",
    revision: str | None = None,
    baselines: Sequence[str] = BASELINES,
    spacy_model: str = DEFAULT_MODEL,
    predictions_dir: Path | None = None,
    resamples: int = 1000,
    seed: int = 0,
    scheme: Scheme | None = None,
    release: Release | None = None,
    progress: bool = True,
    label_map: Path | None = None,
) -> dict[str, Any]:
    """Train (where needed) and score each baseline on `split`; returns the leaderboard results."""
    scheme = scheme or load_scheme()
    if release is None:
        release = load_release(
            str(dataset) if dataset else None,
            config=config,
            split=split,
            revision=revision,
            extra_splits=("train",) if split != "train" else (),
            scheme=scheme,
        )
    train = release.other_splits.get("train", release.articles)
    models: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="newsstance-baselines-") as tmp:
        folder = predictions_dir or Path(tmp)
        for name in baselines:
            title = name if name != "spacy" else f"spacy ({spacy_model})"
            description = DESCRIPTIONS[name].format(model=spacy_model)
            path = folder / f"{name}.predictions.jsonl"
            try:
                write_jsonl(
                    path, baseline_predictions(name, train, release.articles, scheme, spacy_model, label_map=label_map)
                )
            except UserError as exc:  # e.g. no spaCy model, or a label map that does not fit the scheme
                print(f"warning: baseline {name} skipped: {exc}", file=sys.stderr)
                models.append({"name": title, "baseline": name, "description": description, "skipped": str(exc)})
                continue
            results = evaluate_predictions(
                path, release, scheme=scheme, resamples=resamples, seed=seed, progress=progress
            )
            flat = flatten(results)
            models.append(
                {
                    "name": title,
                    "baseline": name,
                    "description": description,
                    "predictions_sha256": results["predictions"]["sha256"],
                    "tasks": results["tasks"],
                    "figures": {key: _figure_or_status(flat, key) for key in COLUMNS.values()},
                    "results": results,
                }
            )
    first: dict[str, Any] = next((model["results"] for model in models if "results" in model), {})
    return {
        "tool": {"name": "newsstance", "version": __version__},
        "dataset": first.get("dataset"),
        "settings": first.get("settings"),
        "columns": COLUMNS,
        "models": models,
    }


def _figure_or_status(flat: Mapping[str, Any], key: str) -> Any:
    """The figure at `key`, or the status ("not predicted") of the section or target that replaced it."""
    parts = key.split("/")
    for depth in range(len(parts), 0, -1):
        value = flat.get("/".join(parts[:depth]))
        if value is not None:
            return value
    return None


def _cell(figure: Mapping[str, Any] | str | None) -> str:
    if isinstance(figure, str):
        return figure
    if not figure or figure.get("value") is None:
        return "-"
    text = f"{figure['value']:.3f}"
    if figure.get("ci_low") is not None:
        text += f" ({figure['ci_low']:.3f}-{figure['ci_high']:.3f})"
    return text


def leaderboard_markdown(results: Mapping[str, Any]) -> str:
    """The card's benchmark table: one row per model, each figure with its 95% CI in brackets."""
    columns = results.get("columns") or COLUMNS
    lines = [
        "| Model | " + " | ".join(columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for model in results["models"]:
        if "skipped" in model:
            cells = [f"skipped: {model['skipped']}".replace("|", "/")] + [""] * (len(columns) - 1)
        else:
            cells = [_cell(model["figures"].get(key)) for key in columns.values()]
        lines.append(f"| {model['name']} | " + " | ".join(cells) + " |")
    dataset = results.get("dataset") or {}
    settings = results.get("settings") or {}
    polar = " and ".join(settings.get("f_avg_classes") or ["the polar stances"])
    lines.append("")
    lines.append(
        f"Split `{dataset.get('split', 'test')}` ({dataset.get('articles', '?')} articles). Strict and partial F1: "
        "entity mentions under the SemEval-2013 schemes (as in nervaluate), micro-averaged; token F1: seqeval on the "
        f"BIO tags; stance: document stance per target pooled over targets, F_avg = mean F1 of {polar} "
        f'(SemEval-2016); "not predicted": the model does not do that task. In brackets: 95% bootstrap CI over articles ({settings.get("resamples", "?")} resamples, '
        f"seed {settings.get('seed', '?')}). Reproduce with `newsstance leaderboard`; score your model with "
        "`newsstance evaluate predictions.jsonl`."
    )
    return "\n".join(lines) + "\n"


def write_leaderboard(path: Path, results: Mapping[str, Any]) -> None:
    write_json(path, results)
