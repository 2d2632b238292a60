"""The embedded sample corpus against its independently written expectations
(tests/normalize/sample_expectations.yaml, written from what the pages are)."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from newsstance import ids
from newsstance.normalize.runner import run_normalize

EXPECTATIONS_PATH = Path(__file__).with_name("sample_expectations.yaml")
SAMPLE_DIR = Path(__file__).resolve().parents[2] / "corpus" / "raw" / "sample"


def _load_expectations() -> dict[str, Any]:
    if not EXPECTATIONS_PATH.is_file() or not any(SAMPLE_DIR.glob("*.*")):
        return {}
    return yaml.safe_load(EXPECTATIONS_PATH.read_text(encoding="utf-8"))


EXPECTED = _load_expectations()
FILES = sorted(EXPECTED.get("files", {}))
pytestmark = pytest.mark.skipif(not EXPECTED, reason="sample corpus or its expectations not present")


@pytest.fixture(scope="module")
def normalized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("sample-out")
    summary = run_normalize([SAMPLE_DIR], out)
    by_file: dict[str, list[dict[str, Any]]] = defaultdict(list)
    records = []
    for shard in sorted(out.glob("articles-*.jsonl")):
        for line in shard.read_bytes().splitlines():
            record = orjson.loads(line)
            records.append(record)
            by_file[_sample_name(record["provenance"]["path"])].append(record)
    quarantine = [orjson.loads(line) for line in (out / "quarantine.jsonl").read_bytes().splitlines()]
    return {"summary": summary, "records": records, "by_file": by_file, "quarantine": quarantine}


def _sample_name(path: str) -> str:
    """Provenance paths are relative to corpus/raw ("sample/<file>"); expectations name the file."""
    return path.removeprefix("sample/")


def _flat(text: str) -> str:
    return " ".join(text.split())


def _check_record(record: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    for key in (
        "title",
        "source",
        "role",
        "authors",
        "truncated",
        "published_at_raw",
        "published_at",
        "published_at_precision",
        "crawled_at",
    ):
        if key in expected:
            assert record[key] == expected[key], f"{where}: {key}"
    if "url" in expected:
        assert ids.canonical_url(record["url"]) == ids.canonical_url(expected["url"]), f"{where}: url"
    if "published_on" in expected:
        assert (record["published_at"] or "")[:10] == expected["published_on"], f"{where}: published_on"
    text = _flat(record["text"])
    if "text_starts_with" in expected:
        assert text.startswith(_flat(expected["text_starts_with"])), f"{where}: text start {text[:80]!r}"
    if "text_ends_with" in expected:
        assert text.endswith(_flat(expected["text_ends_with"])), f"{where}: text end {text[-80:]!r}"


@pytest.mark.parametrize("name", FILES)
def test_file_matches_expectations(normalized: dict[str, Any], name: str) -> None:
    expected = EXPECTED["files"][name]
    records = normalized["by_file"].get(f"{name}", [])
    quarantined = [q for q in normalized["quarantine"] if _sample_name(q["path"]) == name]
    if "quarantine" in expected:
        assert quarantined, f"{name} should be quarantined"
        assert {q["reason"] for q in quarantined} == {expected["quarantine"]}
        if "quarantine_lines" in expected:
            assert sorted(q["line"] for q in quarantined) == expected["quarantine_lines"]
        for field in expected.get("schema_error_fields", []):
            paths = {e["path"] for q in quarantined for e in q.get("errors", [])}
            assert f"/{field}" in paths, f"{name}: no schema error for {field}"
    else:
        assert not quarantined, f"{name} unexpectedly quarantined: {quarantined}"
    wanted = expected.get("records", [])
    assert [r["title"] for r in records] == [w["title"] for w in wanted]
    for index, (record, want) in enumerate(zip(records, wanted, strict=True)):
        where = f"{name}#{index}"
        assert record["provenance"]["format"] == expected["format"], where
        if "crawl_time_source" in expected:
            assert record["provenance"]["crawl_time_source"] == expected["crawl_time_source"], where
        if "crawled_at" in expected:
            assert record["crawled_at"] == expected["crawled_at"], where
        _check_record(record, want, where)
        if "encoding_in" in expected:
            assert record["provenance"]["encoding"].lower() in [e.lower() for e in expected["encoding_in"]], where
        for repair in expected.get("repairs_include", []):
            assert repair in record["provenance"]["repairs"], where
        for chrome in expected.get("must_not_contain", []) + expected.get("text_must_not_contain", []):
            assert chrome not in record["text"], f"{where}: {chrome!r} in text"
        for piece in expected.get("title_must_not_contain", []):
            assert piece not in record["title"], where
    if "record_lines" in expected:
        assert [r["provenance"]["line_start"] for r in records] == expected["record_lines"]
    for piece in expected.get("text_must_contain", []):
        assert any(piece in r["text"] for r in records), f"{name}: {piece!r} missing"


def test_duplicate_groups(normalized: dict[str, Any]) -> None:
    by_file = normalized["by_file"]

    def member(ref: str) -> dict[str, Any]:
        name, index = ref.split("#")
        return by_file[name][int(index)]

    grouped_ids = set()
    canonical_refs = set(EXPECTED.get("canonical", []))
    one_of = [set(group) for group in EXPECTED.get("canonical_one_of", [])]
    for group in EXPECTED["duplicate_groups"]:
        members = {ref: member(ref) for ref in group}
        grouped_ids.update(r["id"] for r in members.values())
        canonicals = [ref for ref, r in members.items() if r["duplicate_of"] is None]
        assert len(canonicals) == 1, f"{group}: canonicals {canonicals}"
        canonical_id = members[canonicals[0]]["id"]
        for ref, record in members.items():
            if ref != canonicals[0]:
                assert record["duplicate_of"] == canonical_id, ref
        required = canonical_refs & set(group)
        if required:
            assert canonicals[0] in required
        for choices in one_of:
            if choices & set(group):
                assert canonicals[0] in choices
    for record in normalized["records"]:
        if record["id"] not in grouped_ids:
            assert record["duplicate_of"] is None, record["title"]
            assert record["duplicate_of"] not in grouped_ids or record["duplicate_of"] is None


def test_totals(normalized: dict[str, Any]) -> None:
    totals = EXPECTED.get("expected_totals", {})
    summary = normalized["summary"]
    assert summary.files == totals["files"]
    assert summary.articles == totals["articles"] == len(normalized["records"])
    assert summary.quarantined_total == totals["quarantined"] == len(normalized["quarantine"])
    assert summary.duplicates == totals["duplicates"]
    assert summary.truncated == totals["truncated"]
