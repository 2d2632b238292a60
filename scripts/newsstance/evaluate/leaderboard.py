"""Run every baseline on a split and make the leaderboard (results JSON + the card's Markdown table).

`run_leaderboard(...)` works on any release folder - including a staging folder the
release builder has not published yet - so the builder can render the table into the card
(`leaderboard_markdown(results)`) before it writes the manifest.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from newsstance import __version__
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
    models = []
    with tempfile.TemporaryDirectory(prefix="newsstance-baselines-") as tmp:
        folder = predictions_dir or Path(tmp)
        for name in baselines:
            path = folder / f"{name}.predictions.jsonl"
            write_jsonl(path, baseline_predictions(name, train, release.articles, scheme, spacy_model))
            results = evaluate_predictions(
                path, release, scheme=scheme, resamples=resamples, seed=seed, progress=progress
            )
            flat = flatten(results)
            models.append(
                {
                    "name": name if name != "spacy" else f"spacy ({spacy_model})",
                    "baseline": name,
                    "description": DESCRIPTIONS[name].format(model=spacy_model),
                    "predictions_sha256": results["predictions"]["sha256"],
                    "figures": {key: flat[key] for key in COLUMNS.values()},
                    "results": results,
                }
            )
    first = models[0]["results"] if models else {}
    return {
        "tool": {"name": "newsstance", "version": __version__},
        "dataset": first.get("dataset"),
        "settings": first.get("settings"),
        "columns": COLUMNS,
        "models": models,
    }


def _cell(figure: Mapping[str, Any] | None) -> str:
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
        cells = [_cell(model["figures"].get(key)) for key in columns.values()]
        lines.append(f"| {model['name']} | " + " | ".join(cells) + " |")
    dataset = results.get("dataset") or {}
    settings = results.get("settings") or {}
    lines.append("")
    lines.append(
        f"Split `{dataset.get('split', 'test')}` ({dataset.get('articles', '?')} articles). Strict and partial F1: "
        "entity mentions under the SemEval-2013 schemes (as in nervaluate), micro-averaged; token F1: seqeval on the "
        "BIO tags; stance: document stance per target pooled over targets, F_avg = mean F1 of favor and against "
        f"(SemEval-2016). In brackets: 95% bootstrap CI over articles ({settings.get('resamples', '?')} resamples, "
        f"seed {settings.get('seed', '?')}). Reproduce with `newsstance leaderboard`; score your model with "
        "`newsstance evaluate predictions.jsonl`."
    )
    return "\n".join(lines) + "\n"


def write_leaderboard(path: Path, results: Mapping[str, Any]) -> None:
    write_json(path, results)
