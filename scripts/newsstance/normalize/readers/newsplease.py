"""news-please records: a JSON object, a JSON array of objects, or JSON Lines.

Fields used: title, maintext, url, date_publish ("YYYY-MM-DD HH:MM:SS", offset usually
lost: read as UTC), source_domain, authors, language, date_download (crawl time of last
resort). Values keep their JSON type: a wrong type is reported by the article schema
(quarantine `schema_invalid` with the JSON path), not silently coerced.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from newsstance.normalize import dates
from newsstance.normalize.config import NormalizeConfig
from newsstance.normalize.decode import clean_inline, join_paragraphs, split_paragraphs
from newsstance.normalize.model import Draft, Format, JsonValue, Quarantine, Reason, TextPage, iso_utc

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


def iter_lines(text: str) -> Iterator[str]:
    """`text.split("\n")` one line at a time: no list of every line of a big file at once."""
    start = 0
    while start <= len(text):
        end = text.find("\n", start)
        if end < 0:
            end = len(text)
        yield text[start:end]
        start = end + 1


def read_jsonl(text: str) -> Iterator[JsonItem]:
    """One item per non-blank line, read line by line; a malformed line becomes an item with
    reason `malformed_json`."""
    index = 0
    for number, line in enumerate(iter_lines(text), start=1):
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


def read_json_page(page: TextPage, config: NormalizeConfig, stats: Counter[str]) -> Iterator[Draft | Quarantine]:
    """A whole-file JSON document: one draft per news-please object; malformed JSON or an empty
    array is quarantined, as is each element that is not a news-please object."""
    try:
        items, _ = read_json(page.text)
    except orjson.JSONDecodeError as exc:
        yield Quarantine(page.rel, page.sha256, Reason.MALFORMED_JSON, f"not valid JSON: {exc}")
        return
    if not items:
        yield Quarantine(page.rel, page.sha256, Reason.NO_ARTICLE, "the JSON array is empty")
        return
    yield from _drafts(page, config, Format.NEWSPLEASE_JSON, items)


def read_jsonl_page(page: TextPage, config: NormalizeConfig, stats: Counter[str]) -> Iterator[Draft | Quarantine]:
    """JSON Lines: one draft per good line; a malformed or foreign line is quarantined, the others kept."""
    yield from _drafts(page, config, Format.NEWSPLEASE_JSONL, read_jsonl(page.text))


def _drafts(
    page: TextPage, config: NormalizeConfig, fmt: Format, items: Iterable[JsonItem]
) -> Iterator[Draft | Quarantine]:
    position = 0
    for item in items:
        if item.record is None:
            yield Quarantine(
                page.rel,
                page.sha256,
                Reason(item.reason or "no_article"),
                item.error or "",
                line=item.line,
                record_index=item.record_index,
            )
            continue
        yield _draft(page, config, fmt, item, item.record, position)
        position += 1


def _text_or_raw(value: Any) -> JsonValue:
    return clean_inline(value) if isinstance(value, str) else value


def _draft(
    page: TextPage, config: NormalizeConfig, fmt: Format, item: JsonItem, record: dict[str, Any], position: int
) -> Draft:
    crawl = page.task.crawl
    maintext = record.get("maintext")
    if isinstance(maintext, str) and _MARKUP.search(maintext):
        maintext = html_to_lines(maintext)  # some exporters keep the article's HTML in maintext
    text = join_paragraphs(split_paragraphs(maintext)) if isinstance(maintext, str) else maintext
    authors = record.get("authors")
    if isinstance(authors, list):
        authors = [clean_inline(a) if isinstance(a, str) else a for a in authors]
    elif authors is None:
        authors = []
    language = normalise_language(record.get("language") or crawl.language)
    source = _text_or_raw(record.get("source_domain")) or None
    url = _text_or_raw(record.get("url")) or None
    return Draft(
        page=page,
        format=fmt,
        title=_title(record),
        text=text if text is not None else "",
        source=source if source is not None else crawl.outlet,
        url=url if url is not None else crawl.url,
        authors=authors,
        language=_text_or_raw(language),
        published_raw=_date(record.get("date_publish")),
        record_time=dates.parse_timestamp(record.get("date_download")),
        position=position,
        line_start=item.line,
        line_end=item.line,
        record_index=item.record_index,
    )


_MARKUP = re.compile(r"</?(?:p|br|div|span|a|b|i|em|strong|h[1-6]|li|ul|ol|blockquote|figure)\b[^>]*>", re.IGNORECASE)
_BLOCK_END = re.compile(r"<br\s*/?>|</(?:p|div|h[1-6]|li|blockquote|figure)\s*>", re.IGNORECASE)


def html_to_lines(markup: str) -> str:
    """Text of an HTML fragment, one line per block element (tags dropped, entities decoded)."""
    from lxml import html

    root = html.fragment_fromstring(_BLOCK_END.sub(lambda m: m.group(0) + "\n", markup), create_parent="div")
    for junk in root.xpath("//script | //style"):
        junk.drop_tree()
    return str(root.text_content())


EPOCH_MILLIS_ABOVE = 10**11  # larger epoch numbers are milliseconds (10**11 s is the year 5138)


def _date(value: Any) -> str | None:
    """The publication date string; a Unix epoch number (seconds or milliseconds, as some exporters
    write it) becomes its ISO form rather than being dropped."""
    if isinstance(value, str):
        return clean_inline(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and value > 0:
        seconds = value / 1000 if value > EPOCH_MILLIS_ABOVE else value
        try:
            return iso_utc(datetime.fromtimestamp(seconds, tz=UTC))
        except (OverflowError, OSError, ValueError):
            return None
    return None


def _title(record: dict[str, Any]) -> JsonValue:
    """`title`, else news-please's other title fields (`title_rss`, `title_page`): a record whose
    extractor missed the headline still has it there. Non-string values pass through for the schema."""
    title = record.get("title")
    if isinstance(title, str) and title.strip():
        return clean_inline(title)
    for key in ("title_rss", "title_page"):
        fallback = record.get(key)
        if isinstance(fallback, str) and fallback.strip():
            return clean_inline(fallback)
    return title if title is not None else ""


_LANGUAGE_TAG = re.compile(r"([A-Za-z]{2,3})((?:[-_][A-Za-z0-9]{2,8})*)")


def normalise_language(value: Any) -> JsonValue:
    """ "EN" -> "en", "en_gb" -> "en-GB"; anything not shaped like a tag ("English") is left for the schema to reject."""
    if not isinstance(value, str) or not (match := _LANGUAGE_TAG.fullmatch(value.strip())):
        return value
    subtags = [part for part in match.group(2).replace("_", "-").split("-") if part]
    region = [tag.upper() if len(tag) == 2 and tag.isalpha() else tag for tag in subtags]
    return "-".join([match.group(1).lower(), *region])
