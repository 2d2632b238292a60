"""news-please records: a JSON object, a JSON array of objects, or JSON Lines.

Fields used: title, maintext, url, date_publish ("YYYY-MM-DD HH:MM:SS", offset usually
lost: read as UTC), source_domain, authors, language, date_download (crawl time of last
resort). Values keep their JSON type: a wrong type is reported by the article schema
(quarantine `schema_invalid` with the JSON path), not silently coerced.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

NEWSPLEASE_FIELDS = frozenset(
    {
        "title",
        "maintext",
        "url",
        "date_publish",
        "source_domain",
        "authors",
        "language",
        "date_download",
        "description",
        "title_page",
        "title_rss",
        "filename",
        "localpath",
        "image_url",
        "date_modify",
    }
)
_CORE_FIELDS = frozenset({"title", "maintext", "url"})


@dataclass(slots=True)
class JsonItem:
    """One element of a news-please file: a record, or why it is unusable (`error` + `reason`)."""

    record: dict[str, Any] | None
    record_index: int | None
    line: int | None = None
    reason: str | None = None
    error: str | None = None


def looks_like_newsplease(record: dict[str, Any]) -> bool:
    return bool(_CORE_FIELDS & record.keys())


def _item(value: Any, index: int, line: int | None) -> JsonItem:
    if not isinstance(value, dict):
        return JsonItem(None, index, line, "no_article", f"expected a news-please object, found {type(value).__name__}")
    if not looks_like_newsplease(value):
        keys = ", ".join(sorted(value)[:6]) or "none"
        return JsonItem(None, index, line, "no_article", f"no news-please fields (title, maintext, url); keys: {keys}")
    return JsonItem(value, index, line)


def _wrapped_records(data: dict[str, Any]) -> list[Any] | None:
    """The record list of an export that wraps it in an object ({"articles": [...], "count": 2}): the one
    list-valued key whose elements include news-please objects."""
    if looks_like_newsplease(data):
        return None
    lists = [
        value
        for value in data.values()
        if isinstance(value, list) and any(isinstance(v, dict) and looks_like_newsplease(v) for v in value)
    ]
    return lists[0] if len(lists) == 1 else None


def read_json(text: str) -> tuple[list[JsonItem], bool]:
    """Items of a whole-file JSON document and whether it is an array (raises orjson.JSONDecodeError
    when malformed). A single object's item has no record index; an object wrapping one list of
    records counts as that array."""
    data = orjson.loads(text)
    if isinstance(data, dict):
        data = _wrapped_records(data) or data
    if not isinstance(data, list):
        item = _item(data, 0, None)
        item.record_index = None
        return [item], False
    return [_item(value, index, None) for index, value in enumerate(data)], True


def read_jsonl(text: str) -> Iterator[JsonItem]:
    """One item per non-blank line; a malformed line becomes an item with reason `malformed_json`."""
    index = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            yield JsonItem(None, index, number, "malformed_json", f"line {number}: {exc}")
        else:
            yield _item(value, index, number)
        index += 1


def _is_pretty_printed_json(stripped: str) -> bool:
    """A .jsonl file that holds one indented JSON document (an array or object spread over lines):
    its first line is not JSON on its own, but the whole text is."""
    first = stripped.split("\n", 1)[0]
    try:
        orjson.loads(first)
        return False
    except orjson.JSONDecodeError:
        pass
    try:
        orjson.loads(stripped)
        return True
    except orjson.JSONDecodeError:
        return False


def sniff_json_kind(text: str, suffix: str) -> str | None:
    """'json' or 'jsonl' for JSON-looking text (None otherwise). A parseable whole document is
    JSON unless the extension says JSON Lines; otherwise a first line holding an object means JSONL."""
    stripped = text.lstrip()
    if not stripped or stripped[0] not in "{[":
        return None
    if suffix in (".jsonl", ".ndjson"):
        return "json" if _is_pretty_printed_json(stripped) else "jsonl"
    try:
        orjson.loads(text)
        return "json"
    except orjson.JSONDecodeError:
        pass
    first = stripped.split("\n", 1)[0]
    try:
        if isinstance(orjson.loads(first), dict) and "\n" in stripped.strip():
            return "jsonl"
    except orjson.JSONDecodeError:
        pass
    return "json"
