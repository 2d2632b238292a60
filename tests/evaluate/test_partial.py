"""Partial predictions (NER-only, stance-only), `--tasks`, the stance baseline and offline `--dataset`,
through the real `newsstance` command."""

from __future__ import annotations

import http.server
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from sklearn.metrics import accuracy_score, f1_score

from newsstance.evaluate.baselines import baseline_predictions
from newsstance.evaluate.dataset import hub_repo_id, load_release
from newsstance.evaluate.report import evaluate_predictions, flatten
from newsstance.records import write_jsonl
from newsstance.scheme import Scheme

NEWSSTANCE = str(Path(sys.executable).parent / "newsstance")


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [NEWSSTANCE, *args], capture_output=True, text=True, env=env or os.environ.copy(), timeout=180
    )


def full_predictions(rows: list[dict], scheme: Scheme) -> list[dict]:
    """Gold copied, with every third entity dropped and every other stance changed (so no figure is 1 or 0)."""
    out = []
    for number, row in enumerate(rows):
        entities = [
            {
                "start": e["start"],
                "end": e["end"],
                "label": scheme.entity_names[e["label"]],
                "stance": scheme.stance_names[(e["stance"] + number) % len(scheme.stance_names)]
                if e["stance"] is not None
                else None,
            }
            for index, e in enumerate(row["entities"])
            if index % 3 != 2
        ]
        stances = {
            t: scheme.document_stance_names[(v + number % 2) % len(scheme.document_stance_names)]
            for t, v in row["stances"].items()
        }
        out.append({"id": row["id"], "entities": entities, "stances": stances})
    return out


@pytest.fixture()
def files(tmp_path: Path, fixture_rows: dict, scheme: Scheme) -> dict[str, Path]:
    full = full_predictions(fixture_rows["test"], scheme)
    made = {
        "full": full,
        "ner": [
            {"id": r["id"], "entities": [{k: v for k, v in e.items() if k != "stance"} for e in r["entities"]]}
            for r in full
        ],
        "stance": [{"id": r["id"], "stances": r["stances"]} for r in full],
        "empty_stances": [{"id": r["id"], "stances": {}} for r in full],
    }
    paths = {}
    for name, records in made.items():
        paths[name] = tmp_path / f"{name}.jsonl"
        write_jsonl(paths[name], records)
    return paths


def test_ner_only_and_stance_only_score_their_task_and_report_the_others_not_predicted(
    tmp_path: Path, release_dir: Path, files: dict[str, Path]
) -> None:
    outputs = {}
    for name in ("full", "ner", "stance"):
        outputs[name] = tmp_path / f"{name}.results.json"
        done = run(
            "evaluate", str(files[name]), "--dataset", str(release_dir), "--resamples", "50", "-o", str(outputs[name])
        )
        assert done.returncode == 0, done.stderr
        if name != "full":
            assert "not predicted" in done.stdout
    full, ner, stance = (orjson.loads(outputs[n].read_bytes()) for n in ("full", "ner", "stance"))
    assert full["tasks"] == {"ner": "scored", "stance": "scored", "mention-stance": "scored"}
    assert ner["tasks"] == {"ner": "scored", "stance": "not predicted", "mention-stance": "not predicted"}
    assert ner["document_stance"] == ner["mention_stance"] == "not predicted"
    assert stance["tasks"] == {"ner": "not predicted", "stance": "scored", "mention-stance": "not predicted"}
    assert stance["entities"] == stance["tokens"] == "not predicted"
    # A task scored alone gives the same figures as in the full file.
    assert flatten(ner)["entities/strict/micro/f1"] == flatten(full)["entities/strict/micro/f1"]
    assert flatten(stance)["document_stance/overall/macro_f1"] == flatten(full)["document_stance/overall/macro_f1"]
    assert 0 < flatten(full)["entities/strict/micro/f1"]["value"] < 1


def test_empty_stances_are_not_a_zero_score(release_dir: Path, files: dict[str, Path], scheme: Scheme) -> None:
    release = load_release(str(release_dir), scheme=scheme)
    with pytest.raises(Exception, match="no document stance predictions"):
        evaluate_predictions(
            files["empty_stances"], release, scheme=scheme, resamples=0, progress=False, tasks=("stance",)
        )
    one_target = files["empty_stances"].with_name("one_target.jsonl")
    target = scheme.target_ids[0]
    write_jsonl(
        one_target, [{"id": a.id, "stances": {target: scheme.document_stance_names[0]}} for a in release.articles]
    )
    results = evaluate_predictions(one_target, release, scheme=scheme, resamples=0, progress=False)
    per_target = results["document_stance"]["per_target"]
    assert isinstance(per_target[target], dict)
    assert all(per_target[t] == "not predicted" for t in scheme.target_ids[1:])
    # The pooled figure covers the predicted target only.
    assert results["document_stance"]["overall"]["pairs"] == per_target[target]["pairs"]


def test_tasks_option_selects_and_refuses_tasks_without_predictions(
    tmp_path: Path, release_dir: Path, files: dict[str, Path]
) -> None:
    output = tmp_path / "selected.json"
    done = run(
        "evaluate",
        str(files["full"]),
        "--dataset",
        str(release_dir),
        "--resamples",
        "0",
        "--tasks",
        "ner",
        "-o",
        str(output),
    )
    assert done.returncode == 0, done.stderr
    results = orjson.loads(output.read_bytes())
    assert results["tasks"] == {"ner": "scored", "stance": "not selected", "mention-stance": "not selected"}
    done = run("evaluate", str(files["ner"]), "--dataset", str(release_dir), "--tasks", "ner,stance")
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines[-1] == f"error: --tasks stance: {files['ner']} has no document stance predictions"
    assert "Traceback" not in done.stderr
    done = run("evaluate", str(files["ner"]), "--dataset", str(release_dir), "--tasks", "ner,sentiment")
    assert done.returncode == 2 and "unknown task sentiment" in done.stderr


def test_compare_reports_tasks_one_side_lacks_and_prints_no_zero(
    tmp_path: Path, release_dir: Path, files: dict[str, Path]
) -> None:
    output = tmp_path / "compare.json"
    done = run(
        "evaluate",
        str(files["full"]),
        "--compare",
        str(files["ner"]),
        "--dataset",
        str(release_dir),
        "--resamples",
        "100",
        "-o",
        str(output),
    )
    assert done.returncode == 0, done.stderr
    comparison = orjson.loads(output.read_bytes())["comparison"]
    assert comparison["tasks"] == {
        "ner": "scored",
        "stance": "not predicted by B",
        "mention-stance": "not predicted by B",
    }
    assert comparison["figures"]["document_stance"] == "not predicted by B"
    strict = comparison["figures"]["entities"]["strict"]["micro"]["f1"]
    assert strict["difference"] == 0 and strict["significant"] is False
    stance_rows = [line for line in done.stdout.splitlines() if "document_stance/overall" in line]
    assert stance_rows and all("not predicted by B" in line and "0.000" not in line for line in stance_rows)


def test_stance_baseline_learns_from_train_and_beats_majority(
    tmp_path: Path, release_dir: Path, scheme: Scheme
) -> None:
    release = load_release(str(release_dir), extra_splits=("train",), scheme=scheme)
    train = release.other_splits["train"]
    records = list(baseline_predictions("stance", train, release.articles, scheme))
    assert all(set(r) == {"id", "stances"} for r in records)  # no NER predicted
    scores = {}
    for name in ("stance", "majority"):
        path = tmp_path / f"{name}.jsonl"
        write_jsonl(path, list(baseline_predictions(name, train, release.articles, scheme)))
        scores[name] = evaluate_predictions(path, release, scheme=scheme, resamples=0, progress=False)
    overall = scores["stance"]["document_stance"]["overall"]
    assert overall["macro_f1"]["value"] > scores["majority"]["document_stance"]["overall"]["macro_f1"]["value"]
    # Cross-check the pooled figures with scikit-learn on the written predictions.
    y_true, y_pred = [], []
    for article, record in zip(release.articles, records, strict=True):
        for target in scheme.target_ids:
            if article.stances[target] is not None:
                y_true.append(article.stances[target])
                y_pred.append(record["stances"].get(target, "<none>"))
    assert overall["accuracy"]["value"] == pytest.approx(accuracy_score(y_true, y_pred))
    present = [n for n in scheme.document_stance_names if n in y_true or n in y_pred]
    assert overall["macro_f1"]["value"] == pytest.approx(
        f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
    )
    assert overall["accuracy"]["value"] > 0.8  # the fictional stance sentences are learnable


def test_dataset_that_looks_like_a_path_is_never_tried_on_the_hub(
    tmp_path: Path, files: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "dist").mkdir()
    monkeypatch.chdir(tmp_path)
    assert hub_repo_id("my-org/newsstance") == "my-org/newsstance"
    for path_like in ("dist/1.0.1", "./dist", "/abs/release", "conll2003", "a/b/c", "~/x", "my-org/1.0.0", "..\\x"):
        assert hub_repo_id(path_like) is None, path_like
    done = run("evaluate", str(files["full"]), "--dataset", "dist/1.0.1")
    assert done.returncode == 2
    assert [line for line in done.stderr.splitlines() if line.strip()] == [
        "error: dataset folder not found: dist/1.0.1 (a Hub dataset is named owner/name)"
    ]


@pytest.fixture()
def fake_hub() -> Iterator[tuple[str, list[str]]]:
    """A local HTTP server standing in for the Hub: answers 503 to everything and counts requests."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_response(503)
            self.end_headers()

        do_HEAD = do_GET

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", seen
    server.shutdown()
    server.server_close()


def test_hub_id_is_tried_once_and_fails_in_one_line(fake_hub: tuple[str, list[str]], files: dict[str, Path]) -> None:
    endpoint, seen = fake_hub
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE")}
    env["HF_ENDPOINT"] = endpoint
    done = run("evaluate", str(files["full"]), "--dataset", "fictional-org/no-such-release", env=env)
    assert done.returncode == 2
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: dataset 'fictional-org/no-such-release'"), done.stderr
    assert [path for path in seen if "no-such-release" in path] == ["/api/datasets/fictional-org/no-such-release"]
