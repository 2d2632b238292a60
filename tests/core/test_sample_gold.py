"""The committed hand-written gold still fits the sample corpus as the normaliser outputs it today.

If the text cleaner changes a sample text, the gold offsets (and the frozen splits) would silently
point at the wrong characters; this test fails first. Rebuild with annotations/sample/build_gold.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsstance.normalize import run_normalize
from newsstance.records import read_jsonl
from newsstance.scheme import record_validator


@pytest.fixture(scope="module")
def sample_articles(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    out = tmp_path_factory.mktemp("sample-normalized")
    run_normalize([repo_root / "corpus" / "raw"], out)
    return {a["id"]: a for path in sorted(out.glob("articles-*.jsonl")) for a in read_jsonl(path)}


def test_sample_gold_matches_the_normalised_sample(repo_root: Path, sample_articles: dict[str, dict]) -> None:
    gold = list(read_jsonl(repo_root / "annotations" / "sample" / "gold.jsonl"))
    assert len(gold) >= 20
    validator = record_validator("gold")
    for record in gold:
        assert validator.errors(record) == []
        article = sample_articles.get(record["article_id"])
        assert article is not None, f"gold for unknown article {record['article_id']}"
        assert article["duplicate_of"] is None, f"gold on a duplicate row {record['article_id']}"
        assert record["text_sha256"] == article["text_sha256"], f"text of {record['article_id']} changed"
        for entity in record["entities"]:
            assert article["text"][entity["start"] : entity["end"]] == entity["text"]


def test_frozen_splits_cover_the_sample(repo_root: Path, sample_articles: dict[str, dict]) -> None:
    frozen = {row["id"]: row["split"] for row in read_jsonl(repo_root / "corpus" / "splits.jsonl")}
    canonical = {aid for aid, a in sample_articles.items() if a["duplicate_of"] is None}
    assert canonical <= set(frozen)
    assert set(frozen.values()) <= {"train", "validation", "test"}
