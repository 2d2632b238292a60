"""Every schema under schema/ is a valid draft 2020-12 schema, and the fast validator on the hot
path (`jsonschema_rs`) agrees with the reference implementation (`jsonschema`) on real records.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from newsstance.errors import UserError
from newsstance.normalize.model import Reason
from newsstance.records import Validator, validator
from newsstance.scheme import check_json_schema

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "schema"


def reference(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)


@pytest.mark.parametrize("path", sorted(SCHEMA_DIR.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_committed_schema_is_valid_draft_2020_12(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema.get("$schema") == "https://json-schema.org/draft/2020-12/schema"
    jsonschema.Draft202012Validator.check_schema(schema)


def test_check_json_schema_refuses_a_malformed_schema() -> None:
    with pytest.raises(UserError, match="not a valid draft 2020-12"):
        check_json_schema("bad.schema.json", {"type": "object", "properties": {"a": {"type": "strnig"}}})


def test_quarantine_schema_knows_every_reason_code() -> None:
    schema = json.loads((SCHEMA_DIR / "quarantine.schema.json").read_text(encoding="utf-8"))
    assert set(schema["properties"]["reason"]["enum"]) == {str(reason) for reason in Reason}


def _mutations(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Invalid variants of a valid article: formats, patterns, types, required and extra keys."""
    variants = []
    for key, value in [
        ("url", "not a url"),
        ("published_at", "yesterday"),
        ("crawled_at", "2031-02-30T10:00:00Z"),
        ("id", "XYZ"),
        ("text_sha256", 5),
        ("authors", "Staff Writer"),
        ("surprise", True),
    ]:
        variant = copy.deepcopy(record)
        variant[key] = value
        variants.append(variant)
    missing = copy.deepcopy(record)
    del missing["title"]
    variants.append(missing)
    return variants


def test_fast_validator_agrees_with_the_reference_on_normalised_records(tmp_path: Path, sample_raw_dir: Path) -> None:
    from newsstance.normalize.runner import run_normalize

    out = tmp_path / "out"
    run_normalize([sample_raw_dir], out, crawl_time="2031-03-05T10:00:00Z", progress=False)
    records = [orjson.loads(line) for part in sorted(out.glob("articles-*.jsonl")) for line in part.open("rb")]
    assert len(records) > 20
    schema = json.loads((SCHEMA_DIR / "article.schema.json").read_text(encoding="utf-8"))
    fast, ref = Validator(schema), reference(schema)
    checked = 0
    for record in records[:10]:
        for candidate in [record, *_mutations(record)]:
            assert fast.is_valid(candidate) == ref.is_valid(candidate), candidate
            checked += 1
    assert checked == 10 * 9
    quarantine_schema = json.loads((SCHEMA_DIR / "quarantine.schema.json").read_text(encoding="utf-8"))
    entries = [orjson.loads(line) for line in (out / "quarantine.jsonl").open("rb")]
    assert entries and all(reference(quarantine_schema).is_valid(entry) for entry in entries)
    assert all(validator("quarantine.schema.json").is_valid(entry) for entry in entries)


def test_validator_follows_the_project_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Two roots with different schemas of the same name: each gets its own."""
    roots = []
    for name, required in (("one", ["a"]), ("two", ["b"])):
        root = tmp_path / name
        (root / "schema").mkdir(parents=True)
        (root / "annotations").mkdir()
        (root / "annotations" / "scheme.yaml").write_text("{}\n")
        schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object", "required": required}
        (root / "schema" / "article.schema.json").write_text(json.dumps(schema))
        roots.append(root)
    monkeypatch.setenv("NEWSSTANCE_ROOT", str(roots[0]))
    assert validator("article.schema.json").is_valid({"a": 1})
    monkeypatch.setenv("NEWSSTANCE_ROOT", str(roots[1]))
    assert not validator("article.schema.json").is_valid({"a": 1})
    assert validator("article.schema.json").is_valid({"b": 1})


def test_validate_takes_several_files_and_knows_quarantine(tmp_path: Path, sample_raw_dir: Path) -> None:
    from newsstance.normalize.runner import run_normalize

    out = tmp_path / "out"
    run_normalize([sample_raw_dir], out, crawl_time="2031-03-05T10:00:00Z", progress=False)
    articles = sorted(out.glob("articles-*.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(orjson.dumps({"path": "x", "sha256": None, "reason": "nonsense", "detail": "d"}) + b"\n")
    args = [sys.executable, "-m", "newsstance.cli", "validate", str(out / "quarantine.jsonl"), *map(str, articles)]
    ok = subprocess.run(args, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ok.returncode == 0, ok.stderr
    assert "valid against the quarantine schema" in ok.stdout
    assert "valid against the article schema" in ok.stdout
    failing = subprocess.run(
        [*args[:4], str(out / "quarantine.jsonl"), str(bad), "--schema", "quarantine"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert failing.returncode == 1
    assert f"{bad}:1: /reason" in failing.stdout
