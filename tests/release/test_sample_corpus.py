"""The build on the project's own fictional sample corpus: normalised articles + the hand-written sample gold.

Uses `corpus/normalized/` and `annotations/sample/gold.jsonl` when they are there; otherwise makes them in
tmp_path with `newsstance normalize` and `annotations/sample/build_gold.py` (the same commands the main job runs).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import pytest

from newsstance.records import read_jsonl
from newsstance.release.build import build_release


def _sample_inputs(repo_root: Path, tmp_path: Path) -> tuple[list[Path], Path]:
    articles = sorted((repo_root / "corpus" / "normalized").glob("articles*.jsonl"))
    gold = repo_root / "annotations" / "sample" / "gold.jsonl"
    if articles and gold.is_file():
        return articles, gold
    script = repo_root / "annotations" / "sample" / "build_gold.py"
    if not script.is_file() or not (repo_root / "corpus" / "raw" / "sample").is_dir():
        pytest.skip("no sample gold and no annotations/sample/build_gold.py to make it")
    normalized, gold = tmp_path / "normalized", tmp_path / "gold.jsonl"
    for command in (
        [
            sys.executable,
            "-m",
            "newsstance.cli",
            "normalize",
            str(repo_root / "corpus" / "raw" / "sample"),
            "--out",
            str(normalized),
            "-q",
        ],
        [sys.executable, str(script), "--articles", str(normalized), "--out", str(gold)],
    ):
        done = subprocess.run(command, cwd=repo_root, capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    return sorted(normalized.glob("articles*.jsonl")), gold


@pytest.mark.slow
def test_sample_corpus_builds_loads_and_keeps_frozen_splits(repo_root: Path, tmp_path: Path) -> None:
    articles, gold = _sample_inputs(repo_root, tmp_path)
    splits = tmp_path / "splits.jsonl"
    frozen = repo_root / "corpus" / "splits.jsonl"
    if frozen.is_file():
        shutil.copy(frozen, splits)
    result = build_release(
        version="1.0.0",
        out=tmp_path / "dist",
        articles=articles,
        gold=gold,
        splits=splits,
        license_id="cc-by-4.0",
        progress=False,
    )
    loaded = datasets.load_dataset(str(result.path))
    rows = [row for split in loaded for row in loaded[split]]
    assert sorted(r["id"] for r in rows) == sorted(g["article_id"] for g in read_jsonl(gold))
    assert all(r["text"][e["start"] : e["end"]] == e["text"] for r in rows for e in r["entities"])
    canonical = [a for path in articles for a in read_jsonl(path) if a["duplicate_of"] is None]
    assert sum(result.rows["articles"].values()) == len(canonical)
    if frozen.is_file():
        before = {r["id"]: r["split"] for r in read_jsonl(frozen)}
        after = {r["id"]: r["split"] for r in read_jsonl(splits)}
        assert all(after[i] == s for i, s in before.items())
