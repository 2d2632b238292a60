"""The `newsstance normalize` and `newsstance validate` commands, run as a user would."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import orjson


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsstance.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_normalize_then_rerun_then_validate(tmp_path, pages):
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "agg.txt").write_text(pages.aggregator)
    (raw / "empty.txt").write_bytes(b"")
    first = run_cli("normalize", str(raw), "--out", "out", "--crawl-time", pages.crawl, "--workers", "2", cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "articles            3  (main 1, related 2, standalone 0)" in first.stdout
    assert "quarantined         1  (empty 1)" in first.stdout
    second = run_cli("normalize", str(raw), "--out", "out", "--crawl-time", pages.crawl, "-q", cwd=tmp_path)
    assert second.returncode == 0 and "0 changed" in second.stdout
    valid = run_cli("validate", "out/articles-00000.jsonl", cwd=tmp_path)
    assert valid.returncode == 0 and "3 record(s) valid" in valid.stdout


def test_validate_reports_file_line_path_and_exits_1(tmp_path, pages):
    good = {"id": "0123456789abcdef"}
    bad_text = tmp_path / "records.jsonl"
    bad_text.write_bytes(orjson.dumps(good) + b"\n\n{not json\n")
    result = run_cli("validate", str(bad_text), cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f'{bad_text}:1: /: "title" is a required property' in lines
    assert any(line.startswith(f"{bad_text}:3: not valid JSON") for line in lines)
    assert "2 record(s) invalid" in result.stderr


def test_user_errors_are_one_line_with_exit_code_2(tmp_path):
    for args in (
        ["normalize", str(tmp_path / "missing")],
        ["validate", str(tmp_path / "missing.jsonl")],
        ["validate", str(tmp_path), "--schema", "nonsense"],
        ["normalize", str(tmp_path), "--out", str(tmp_path / "o"), "--crawl-time", "someday"],
    ):
        result = run_cli(*args, cwd=tmp_path)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1, result.stderr
        assert "Traceback" not in result.stderr


def test_validate_checks_the_text_hash_and_other_schemas(tmp_path, pages):
    from newsstance.normalize.runner import run_normalize
    from newsstance.normalize.validate import validate_jsonl

    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "a.txt").write_text(pages.plain)
    run_normalize([raw], tmp_path / "out", crawl_time=pages.crawl)
    record = orjson.loads((tmp_path / "out" / "articles-00000.jsonl").read_bytes())
    assert validate_jsonl(tmp_path / "out" / "articles-00000.jsonl").invalid == 0
    tampered = tmp_path / "tampered.jsonl"
    tampered.write_bytes(orjson.dumps({**record, "text": record["text"] + " Edited."}) + b"\n")
    report = validate_jsonl(tampered)
    assert report.lines == [f"{tampered}:1: /text_sha256: does not match the sha256 of /text"]
    gold = validate_jsonl(tampered, "gold")
    assert gold.invalid == 1 and all(line.startswith(f"{tampered}:1: ") for line in gold.lines)
