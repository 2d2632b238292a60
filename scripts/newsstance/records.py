"""JSON Lines I/O, atomic writes and JSON Schema validation shared by every stage.

Validation uses `jsonschema_rs` (draft 2020-12, formats checked, every error with its
JSON path) - about 80x faster than `jsonschema` - so validating every record costs
little.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Protocol

import jsonschema_rs
import orjson
import yaml

from newsstance.errors import UserError
from newsstance.paths import article_paths, schema_path

Record = dict[str, Any]


class Progress(Protocol):
    """What long operations report to: a tqdm bar, a rich task wrapper, or a test's counter."""

    def update(self, n: int = 1) -> Any: ...


@dataclass(frozen=True)
class SchemaError:
    """One validation failure: where (JSON path like `/provenance/sha256`) and what."""

    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"path": self.path, "message": self.message}

    def __str__(self) -> str:
        return f"{self.path or '/'}: {self.message}"


def _json_path(parts: Iterable[Any]) -> str:
    return "".join(f"/{p}" for p in parts)


class Validator:
    """A compiled JSON Schema; `errors(record)` lists every failure, not only the first."""

    def __init__(self, schema: dict[str, Any]):
        self.schema = schema
        self._validator = jsonschema_rs.validator_for(schema, validate_formats=True)

    @classmethod
    def from_file(cls, path: Path) -> Validator:
        try:
            return cls(orjson.loads(path.read_bytes()))
        except FileNotFoundError:
            raise UserError(f"schema not found: {path}") from None

    def is_valid(self, record: Any) -> bool:
        return self._validator.is_valid(record)

    def errors(self, record: Any) -> list[SchemaError]:
        if self._validator.is_valid(record):
            return []
        return [SchemaError(_json_path(e.instance_path), e.message) for e in self._validator.iter_errors(record)]


def validator(schema_name: str) -> Validator:
    """Validator for a schema file in `schema/`, e.g. `article.schema.json`.

    Cached by the schema's resolved path, not its name: which file a name means depends on
    the project root, and a process may work on several roots.
    """
    return _validator_for(schema_path(schema_name).resolve())


@cache
def _validator_for(path: Path) -> Validator:
    return Validator.from_file(path)


def dumps(record: Any) -> bytes:
    """One JSON line (no trailing newline): UTF-8, keys in the order given."""
    return orjson.dumps(record)


def loads(line: bytes | str) -> Any:
    return orjson.loads(line)


def read_jsonl(path: Path) -> Iterator[Record]:
    """Yield records of a JSON Lines file; a malformed line raises UserError naming it."""
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        raise UserError(f"file not found: {path}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield orjson.loads(line)
            except orjson.JSONDecodeError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc})") from None


def read_yaml_mapping(path: Path, what: str, *, empty_ok: bool = False) -> dict[str, Any]:
    """A YAML file that must hold a mapping; missing or malformed files are one-line UserErrors."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{what} not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if data is None and empty_ok:
        return {}
    if not isinstance(data, dict):
        raise UserError(f"{path}: the {what} must be a YAML mapping")
    return data


@contextlib.contextmanager
def atomic_write(path: Path, mode: str = "wb") -> Iterator[Any]:
    """Write to a temp file in the same folder, fsync, then rename over `path`.

    An exception (or a crash) leaves the previous file untouched.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_jsonl(path: Path, records: Iterable[Any]) -> int:
    """Atomically write records as JSON Lines; returns the count."""
    count = 0
    with atomic_write(path) as handle:
        for record in records:
            handle.write(orjson.dumps(record))
            handle.write(b"\n")
            count += 1
    return count


def write_json(path: Path, data: Any) -> None:
    """Atomically write pretty JSON (sorted keys off: keep the caller's order)."""
    with atomic_write(path) as handle:
        handle.write(orjson.dumps(data, option=orjson.OPT_INDENT_2))
        handle.write(b"\n")


def corpus_hashes(articles_glob: str | None = None) -> dict[str, str] | None:
    """article id -> text_sha256 of the normalised corpus, or None when there is no corpus here
    (pull and adjudicate use it to refuse annotations of articles that changed or vanished)."""
    paths = article_paths(articles_glob)
    if not paths:
        return None
    return {
        rec["id"]: rec["text_sha256"]
        for path in paths
        for rec in read_jsonl(path)
        if isinstance(rec.get("id"), str) and isinstance(rec.get("text_sha256"), str)
    }
