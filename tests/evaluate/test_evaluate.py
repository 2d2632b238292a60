"""`newsstance evaluate` end to end on a fictional release loaded with the real `datasets.load_dataset`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import orjson
import pytest

from newsstance.cli import main
from newsstance.errors import UserError
from newsstance.evaluate.bootstrap import paired_difference, resampled_sums
from newsstance.evaluate.dataset import load_release, newest_release_dir
from newsstance.evaluate.report import HEADLINE, evaluate_predictions, flatten
from newsstance.records import write_jsonl
from newsstance.scheme import Scheme


def gold_predictions(rows: list[dict], scheme: Scheme, keep_entities: float = 1.0, seed: int = 0) -> list[dict]:
    """Predictions copied from gold rows; `keep_entities` < 1 drops a share of mentions and flips stances."""
    rng = np.random.default_rng(seed)
    out = []
    for row in rows:
        entities = [
            {"start": e["start"], "end": e["end"], "label": scheme.entity_names[e["label"]]}
            for e in row["entities"]
            if rng.random() < keep_entities
        ]
        stances = {
            t: scheme.document_stance_names[v] if rng.random() < keep_entities else "not_about"
            for t, v in row["stances"].items()
        }
        out.append({"id": row["id"], "entities": entities, "stances": stances})
    return out


def test_perfect_predictions_score_one_and_results_describe_the_run(
    tmp_path: Path, release_dir: Path, fixture_rows: dict, scheme: Scheme
) -> None:
    path = tmp_path / "perfect.jsonl"
    write_jsonl(path, gold_predictions(fixture_rows["test"], scheme))
    release = load_release(str(release_dir), split="test", scheme=scheme)
    assert [a.id for a in release.articles] == [row["id"] for row in fixture_rows["test"]]
    results = evaluate_predictions(path, release, scheme=scheme, resamples=200, progress=False)
    flat = flatten(results)
    for key in (
        "entities/strict/micro/f1",
        "entities/partial/macro/f1",
        "tokens/micro/f1",
        "document_stance/overall/accuracy",
        "document_stance/overall/f_avg",
    ):
        assert flat[key]["value"] == pytest.approx(1.0), key
    assert flat["entities/strict/micro/correct"] == sum(len(r["entities"]) for r in fixture_rows["test"])
    # No entity carries a predicted stance: mention stance is "not predicted", not a score.
    assert results["mention_stance"] == "not predicted"
    assert results["tasks"] == {"ner": "scored", "stance": "scored", "mention-stance": "not predicted"}
    assert results["dataset"] == {
        "id": str(release_dir.resolve()),
        "config": "default",
        "split": "test",
        "version": "0.1.0",
        "revision": None,
        "articles": len(fixture_rows["test"]),
    }
    assert results["predictions"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert results["tool"]["name"] == "newsstance" and results["settings"]["resamples"] == 200


def test_bootstrap_intervals_hold_the_estimate_and_follow_the_seed(
    tmp_path: Path, release_dir: Path, fixture_rows: dict, scheme: Scheme
) -> None:
    path = tmp_path / "noisy.jsonl"
    write_jsonl(path, gold_predictions(fixture_rows["test"], scheme, keep_entities=0.6, seed=1))
    release = load_release(str(release_dir), split="test", scheme=scheme)
    first = flatten(evaluate_predictions(path, release, scheme=scheme, resamples=300, seed=4, progress=False))
    again = flatten(evaluate_predictions(path, release, scheme=scheme, resamples=300, seed=4, progress=False))
    other = flatten(evaluate_predictions(path, release, scheme=scheme, resamples=300, seed=5, progress=False))
    assert first == again
    assert first["entities/strict/micro/f1"] != other["entities/strict/micro/f1"]
    assert first["entities/strict/micro/f1"]["value"] == other["entities/strict/micro/f1"]["value"]
    for key in HEADLINE[:-2]:
        figure = first[key]
        assert figure["ci_low"] <= figure["value"] <= figure["ci_high"], key
        assert figure["ci_low"] < figure["ci_high"], key


def test_resampled_sums_are_sums_over_drawn_articles() -> None:
    counts = np.arange(12, dtype=np.int64).reshape(4, 3)
    sums = resampled_sums(counts, resamples=7, seed=9, progress=False)
    rng = np.random.default_rng(9)
    index = rng.integers(0, 4, size=(7, 4), dtype=np.int64)
    assert np.array_equal(sums, counts[index].sum(axis=1))


def test_paired_comparison_detects_a_clearly_better_model_only(
    tmp_path: Path, release_dir: Path, fixture_rows: dict, scheme: Scheme
) -> None:
    better, worse, twin = tmp_path / "better.jsonl", tmp_path / "worse.jsonl", tmp_path / "twin.jsonl"
    write_jsonl(better, gold_predictions(fixture_rows["test"], scheme, keep_entities=0.95, seed=2))
    write_jsonl(worse, gold_predictions(fixture_rows["test"], scheme, keep_entities=0.3, seed=3))
    twin.write_bytes(better.read_bytes())
    release = load_release(str(release_dir), split="test", scheme=scheme)
    compared = evaluate_predictions(better, release, scheme=scheme, compare=worse, resamples=500, progress=False)
    strict = compared["comparison"]["figures"]["entities"]["strict"]["micro"]["f1"]
    assert strict["difference"] > 0.3 and strict["significant"] and strict["p_value"] < 0.01
    assert strict["ci_low"] > 0
    same = evaluate_predictions(better, release, scheme=scheme, compare=twin, resamples=500, progress=False)
    for key, diff in flatten(same["comparison"]["figures"]).items():
        if key == "mention_stance":
            assert diff == "not predicted by A and not predicted by B"
            continue
        assert diff["significant"] is False, key
        assert diff["difference"] in (0.0, None), key
    assert flatten(same["comparison"]["figures"])["entities/strict/micro/f1"]["p_value"] == 1.0


def test_small_difference_is_not_significant() -> None:
    rng = np.random.default_rng(0)
    a = rng.normal(0.5, 0.05, 1000)
    b = a + rng.normal(0.0, 0.05, 1000)
    assert not paired_difference(0.5, 0.499, a, b, 0.95, 0.05).significant


def test_rebuilt_release_is_never_scored_from_a_stale_cache(
    tmp_path: Path, make_release, fixture_rows: dict, scheme: Scheme
) -> None:
    folder = make_release({"train": fixture_rows["train"], "test": fixture_rows["test"]})
    preds = tmp_path / "preds.jsonl"
    write_jsonl(preds, gold_predictions(fixture_rows["test"], scheme))
    before = evaluate_predictions(
        preds, load_release(str(folder), scheme=scheme), scheme=scheme, resamples=0, progress=False
    )
    assert before["entities"]["strict"]["micro"]["f1"]["value"] == 1.0
    changed = [{**row, "entities": row["entities"][:1]} for row in fixture_rows["test"]]
    changed = [
        {
            **row,
            "ner_tags": [
                t if i < row["token_ends"].index(row["entities"][0]["end"]) + 1 else 0
                for i, t in enumerate(row["ner_tags"])
            ],
        }
        for row in changed
    ]
    make_release({"train": fixture_rows["train"], "test": changed})
    after = evaluate_predictions(
        preds, load_release(str(folder), scheme=scheme), scheme=scheme, resamples=0, progress=False
    )
    assert after["entities"]["strict"]["micro"]["f1"]["value"] < 1.0
    assert after["entities"]["strict"]["micro"]["missed"] == 0
    assert after["entities"]["strict"]["micro"]["spurious"] > 0


def test_release_without_token_offsets_recovers_them(
    tmp_path: Path, make_release, fixture_rows: dict, scheme: Scheme
) -> None:
    folder = make_release({"test": fixture_rows["test"]}, with_offsets=False)
    release = load_release(str(folder), scheme=scheme)
    assert list(release.articles[0].token_starts) == fixture_rows["test"][0]["token_starts"]
    assert list(release.articles[0].token_ends) == fixture_rows["test"][0]["token_ends"]


def test_default_dataset_is_the_newest_version(tmp_path: Path) -> None:
    for name in ("0.9.0", "0.10.0", "0.2.1", "notes"):
        (tmp_path / "dist" / name).mkdir(parents=True)
    assert newest_release_dir(tmp_path / "dist").name == "0.10.0"
    with pytest.raises(UserError, match="no release found"):
        newest_release_dir(tmp_path / "empty")


def test_unknown_split_and_missing_folder(release_dir: Path, scheme: Scheme) -> None:
    with pytest.raises(UserError, match="has no split 'dev'"):
        load_release(str(release_dir), split="dev", scheme=scheme)
    with pytest.raises(UserError, match="dataset folder not found"):
        load_release("./no/such/release", scheme=scheme)


def test_cli_writes_results_and_exits_2_on_bad_predictions(
    tmp_path: Path,
    release_dir: Path,
    fixture_rows: dict,
    scheme: Scheme,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    preds = tmp_path / "preds.jsonl"
    records = gold_predictions(fixture_rows["test"], scheme, keep_entities=0.8)
    write_jsonl(preds, records)
    output = tmp_path / "out" / "results.json"
    command = [
        str(Path(sys.executable).parent / "newsstance"),
        "evaluate",
        str(preds),
        "--dataset",
        str(release_dir),
        "--output",
        str(output),
        "--resamples",
        "100",
    ]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ.copy(), timeout=120)
    assert done.returncode == 0, done.stderr
    assert "strict" in done.stdout and "F_avg" in done.stdout
    results = orjson.loads(output.read_bytes())
    assert results["dataset"]["version"] == "0.1.0" and results["settings"]["resamples"] == 100

    bad = tmp_path / "bad.jsonl"
    write_jsonl(bad, [*records[:3], {**records[3], "entities": [{"start": 0, "end": 10**6, "label": "ORG"}]}])
    monkeypatch.setattr(sys, "argv", ["newsstance", "evaluate", str(bad), "--dataset", str(release_dir)])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: {bad}:4: entity 0: offsets [0, 1000000) out of range: the text has "
        f"{len(fixture_rows['test'][3]['text'])} characters"
    ]
    assert "Traceback" not in stderr
