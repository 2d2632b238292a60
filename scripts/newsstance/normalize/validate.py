"""`newsstance validate`: check any JSONL file against one of the project's schemas, with
errors a person can act on (`FILE:LINE: /json/path: message`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import orjson

from newsstance import ids
from newsstance.errors import UserError
from newsstance.records import Validator, validator

SCHEMA_FILES = {
    "article": "article.schema.json",
    "annotation": "annotation.schema.json",
    "gold": "gold.schema.json",
    "predictions": "predictions.schema.json",
    "quarantine": "quarantine.schema.json",
}

# What `validate` assumes for a file given without --schema, by its name.
KIND_BY_FILE_NAME = {
    "quarantine.jsonl": "quarantine",
    "gold.jsonl": "gold",
    "annotations.jsonl": "annotation",
}


def kind_for(path: Path) -> str:
    """The schema a file is checked against when none is named: by its name, else `article`."""
    if path.name in KIND_BY_FILE_NAME:
        return KIND_BY_FILE_NAME[path.name]
    if path.name.startswith("predictions"):
        return "predictions"
    return "article"


@dataclass
class ValidationReport:
    records: int = 0
    invalid: int = 0
    lines: list[str] = field(default_factory=list)


def schema_validator(kind: str) -> Validator:
    if kind not in SCHEMA_FILES:
        raise UserError(f"unknown schema {kind!r}; use one of: {', '.join(SCHEMA_FILES)}")
    return validator(SCHEMA_FILES[kind])


def _article_checks(record: object) -> list[str]:
    """What a schema cannot say: the text hash must match the text."""
    if not isinstance(record, dict):
        return []
    text, digest = record.get("text"), record.get("text_sha256")
    if isinstance(text, str) and isinstance(digest, str) and ids.text_sha256(text) != digest:
        return ["/text_sha256: does not match the sha256 of /text"]
    return []


def validate_jsonl(path: Path, kind: str = "article") -> ValidationReport:
    """Validate every non-blank line; malformed JSON is reported per line too."""
    check = schema_validator(kind)
    if not path.is_file():
        raise UserError(f"file not found: {path}")
    report = ValidationReport()
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            report.records += 1
            try:
                record = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                report.invalid += 1
                report.lines.append(f"{path}:{number}: not valid JSON ({exc})")
                continue
            problems = [str(error) for error in check.errors(record)]
            if kind == "article":
                problems += _article_checks(record)
            if problems:
                report.invalid += 1
                report.lines.extend(f"{path}:{number}: {problem}" for problem in problems)
    return report
