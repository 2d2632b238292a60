"""The per-record steps of the normalize pipeline, datatrove-style.

Each step is a callable taking an iterator of items and yielding items; it handles its own
item types, passes every other item (notably `Quarantine`) through unchanged, and counts
what it did in `self.stats`. Steps hold no global state and are picklable, so any executor
(the local process pool in `runner`, or a distributed one later) can run the same chain on
a shard of `FileTask`s:

    items = iter(tasks)
    for step in build_steps(config, cache_key):
        items = step(items)
"""

from __future__ import annotations

import os
import re
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from newsstance import ids
from newsstance.normalize import dates
from newsstance.normalize.config import PHRASE_MATCH_MAX_WORDS, ChromeConfig, NormalizeConfig
from newsstance.normalize.decode import DecodeError, clean_inline, decode_bytes, join_paragraphs, split_paragraphs
from newsstance.normalize.model import (
    PARSER_VERSION,
    SCHEMA_VERSION,
    Article,
    Cached,
    Draft,
    FileTask,
    Format,
    Quarantine,
    RawPage,
    Reason,
    TextPage,
    iso_utc,
)
from newsstance.normalize.truncation import is_truncated
from newsstance.records import validator

_MARKUP_TAGS = ("<html", "<!doctype html", "<head", "<body", "<article", "<div", "<p>", "<p ", "<main", "<meta")


class PipelineStep:
    """Base class: a named generator transform with its own counters."""

    name = "step"

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        raise NotImplementedError


def entry_key(cache_key: str, task: FileTask) -> str:
    """What a file's parse result depends on besides its bytes: code, config and crawl context."""
    return f"{cache_key}|{task.crawl.key()}"


class LoadFiles(PipelineStep):
    """FileTask -> RawPage (bytes + sha256), Cached (unchanged since the last run) or Quarantine
    (read_error, too_large, empty). Oversized files are hashed in chunks, never held in memory."""

    name = "load"

    def __init__(self, max_bytes: int, cache_key: str):
        super().__init__()
        self.max_bytes = max_bytes
        self.cache_key = cache_key
        self.read_sizes: dict[str, int] = {}  # rel -> bytes seen by the read that gave the sha256

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        from newsstance.normalize.readers.warc import is_warc_path

        for item in items:
            if isinstance(item, FileTask) and is_warc_path(item.rel):
                yield from self._load_warc(item)
            else:
                yield self._load(item) if isinstance(item, FileTask) else item

    def _cached(self, task: FileTask, sha256: str | None, detail: str | None = None) -> Cached | None:
        """The previous result, if the bytes (or, for unreadable files, the error) and the key are unchanged."""
        entry = task.cached
        if not entry or entry.get("key") != entry_key(self.cache_key, task):
            return None
        if sha256 is None:
            same = [q.get("detail") for q in entry.get("quarantine", [])] == [detail] and entry.get("sha256") is None
        else:
            same = entry.get("sha256") == sha256
        if not same:
            return None
        self.stats["cached"] += 1
        return Cached(task, sha256 or "", entry)

    def _load(self, task: FileTask) -> RawPage | Cached | Quarantine:
        from newsstance.normalize import sources

        read = sources.read_stable(task.path, sources.input_root(task.path, task.rel), self.max_bytes)
        if isinstance(read, sources.Unreadable):
            self.stats[str(read.reason)] += 1
            return self._cached(task, None, read.detail) or Quarantine(task.rel, read.sha256, read.reason, read.detail)
        self.read_sizes[task.rel] = read.size  # the manifest's size comes from the read that gave the hash
        if isinstance(read, sources.TooLarge):
            self.stats["too_large"] += 1
            return self._cached(task, read.sha256) or Quarantine(
                task.rel,
                read.sha256,
                Reason.TOO_LARGE,
                f"{read.size} bytes is over the limit of {self.max_bytes} (--max-bytes)",
            )
        data, sha256 = read.data, read.sha256
        cached = self._cached(task, sha256)
        if cached:
            return cached
        self.stats["read"] += 1
        if not data.strip():
            self.stats["empty"] += 1
            return Quarantine(
                task.rel, sha256, Reason.EMPTY, "the file is empty" if not data else "the file holds only whitespace"
            )
        return RawPage(task, data, sha256)

    def _load_warc(self, task: FileTask) -> Iterator[RawPage | Cached | Quarantine]:
        """A WARC file is hashed (cache check), then streamed record by record; limits are per record."""
        from newsstance.normalize import sources
        from newsstance.normalize.readers.warc import warc_items

        opened = sources.open_regular(task.path, sources.input_root(task.path, task.rel))
        if isinstance(opened, sources.Unreadable):
            self.stats[str(opened.reason)] += 1
            yield self._cached(task, None, opened.detail) or Quarantine(
                task.rel, opened.sha256, opened.reason, opened.detail
            )
            return
        with os.fdopen(opened[0], "rb") as handle:
            before = sources.snapshot(handle)
            sha256, size = sources.sha256_handle(handle)
            self.read_sizes[task.rel] = size
            cached = self._cached(task, sha256)
            if cached:
                yield cached
                return
            self.stats["read"] += 1
            yield from warc_items(task, handle, sha256, self.max_bytes, self.stats)
            if sources.snapshot(handle) != before or size != before[0]:
                self.stats[str(Reason.CHANGED_DURING_RUN)] += 1
                yield Quarantine(
                    task.rel,
                    sha256,
                    Reason.CHANGED_DURING_RUN,
                    "the WARC file changed while its records were read: re-run to read it again",
                )


class DecodeText(PipelineStep):
    """RawPage -> TextPage (encoding detected, repairs recorded) or Quarantine (binary, undecodable, empty)."""

    name = "decode"

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            if not isinstance(item, RawPage):
                yield item
                continue
            try:
                decoded = decode_bytes(item.data, item.task.crawl.charset)
            except DecodeError as exc:
                self.stats[str(exc.reason)] += 1
                yield Quarantine(item.task.rel, item.sha256, exc.reason, exc.detail)
                continue
            if not decoded.text.strip():
                self.stats["empty"] += 1
                yield Quarantine(item.task.rel, item.sha256, Reason.EMPTY, "no text after decoding")
                continue
            for repair in decoded.repairs:
                self.stats[f"repair:{repair}"] += 1
            yield TextPage(
                item.task,
                item.sha256,
                decoded.text,
                decoded.encoding,
                decoded.repairs,
                len(item.data),
                decoded.invalid_bytes,
            )


def sniff_format(text: str, suffix: str) -> str:
    """'json', 'jsonl', 'html' or 'text', from the content (the extension only breaks ties)."""
    from newsstance.normalize.readers.newsplease import sniff_json_kind

    kind = sniff_json_kind(text, suffix)
    if kind:
        return kind
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"  # claims to be JSON but is not: reported as malformed JSON
    head = text[:4096].lstrip().lower()
    if head.startswith("<") and any(tag in head for tag in _MARKUP_TAGS):
        return "html"
    return "text"


class ExtractArticles(PipelineStep):
    """TextPage -> one Draft per article (format sniffed from content) or Quarantine."""

    name = "extract"

    def __init__(self, config: NormalizeConfig):
        super().__init__()
        self.config = config

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            if not isinstance(item, TextPage):
                yield item
                continue
            is_record = item.task.crawl.record_id is not None  # an archive's HTML response (readers/warc.py)
            kind = "html" if is_record else sniff_format(item.text, PurePosixPath(item.task.rel).suffix.lower())
            self.stats[f"format:{kind}"] += 1
            try:
                # a reader bug on one odd page must not stop the run: that page is quarantined instead
                outputs = list(self._extract(item, kind))
            except Exception as exc:
                self.stats["reader_error"] += 1
                outputs = [
                    Quarantine(
                        item.task.rel,
                        item.sha256,
                        Reason.NO_ARTICLE,
                        f"the {kind} reader failed: {type(exc).__name__}: {exc}",
                    )
                ]
            for out in outputs:
                if isinstance(out, Draft):
                    self.stats[f"role:{out.role}"] += 1
                    self.stats["articles"] += 1
                yield out

    def _extract(self, page: TextPage, kind: str) -> Iterator[Draft | Quarantine]:
        if kind in ("json", "jsonl"):
            yield from self._newsplease(page, kind)
        elif kind == "html":
            yield from self._html(page)
        else:
            yield from self._text(page)

    def _no_article(self, page: TextPage, detail: str) -> Quarantine:
        self.stats["no_article"] += 1
        return Quarantine(page.task.rel, page.sha256, Reason.NO_ARTICLE, detail)

    def _text(self, page: TextPage) -> Iterator[Draft | Quarantine]:
        from newsstance.normalize.readers.textpage import parse_text_page

        result = parse_text_page(page.text, self.config.chrome)
        for note in result.notes:
            self.stats[f"skipped: {note}"] += 1
        if not result.articles:
            yield self._no_article(page, "; ".join(result.notes) or "no title line followed by a body")
            return
        crawl = page.task.crawl
        main_position = next((i for i, a in enumerate(result.articles) if a.role == "main"), None)
        for position, article in enumerate(result.articles):
            own = article.role != "related"
            yield Draft(
                page=page,
                format=result.format,
                title=article.title,
                text=join_paragraphs(article.paragraphs),
                role=article.role,
                source=article.source or (crawl.outlet if own else None),
                url=crawl.url if own else None,
                authors=article.authors,
                language=crawl.language or self.config.default_language,
                published_raw=article.published_raw,
                position=position,
                main_position=main_position if article.role == "related" else None,
                line_start=article.line_start,
                line_end=article.line_end,
            )

    def _html(self, page: TextPage) -> Iterator[Draft | Quarantine]:
        from newsstance.normalize.readers.html import parse_html

        article = parse_html(page.text)
        if article is None:
            yield self._no_article(page, "no main text found in the HTML")
            return
        paragraphs = strip_html_chrome(article.paragraphs, self.config.chrome)
        if not paragraphs:
            yield self._no_article(page, "the HTML main text is only share/related/promo lines")
            return
        crawl = page.task.crawl
        yield Draft(
            page=page,
            format=Format.HTML,
            title=article.title,
            text=join_paragraphs(paragraphs),
            source=article.source or crawl.outlet,
            url=article.url or crawl.url,
            authors=article.authors,
            language=article.language or crawl.language or self.config.default_language,
            published_raw=article.published_raw,
            byte_start=0,
            byte_end=page.size,
        )

    def _newsplease(self, page: TextPage, kind: str) -> Iterator[Draft | Quarantine]:
        import orjson

        from newsstance.normalize.readers import newsplease

        if kind == "json":
            try:
                items, _ = newsplease.read_json(page.text)
            except orjson.JSONDecodeError as exc:
                self.stats["malformed_json"] += 1
                yield Quarantine(page.task.rel, page.sha256, Reason.MALFORMED_JSON, f"not valid JSON: {exc}")
                return
            if not items:
                yield self._no_article(page, "the JSON array is empty")
                return
            fmt = Format.NEWSPLEASE_JSON
        else:
            items = newsplease.read_jsonl(page.text)
            fmt = Format.NEWSPLEASE_JSONL
        position = 0
        for item in items:
            if item.record is None:
                self.stats[item.reason or "no_article"] += 1
                yield Quarantine(
                    page.task.rel,
                    page.sha256,
                    Reason(item.reason or "no_article"),
                    item.error or "",
                    line=item.line,
                    record_index=item.record_index,
                )
                continue
            yield self._newsplease_draft(page, fmt, item, position)
            position += 1

    def _newsplease_draft(self, page: TextPage, fmt: Format, item: Any, position: int) -> Draft:
        record = item.record
        crawl = page.task.crawl

        def text_or_raw(value: Any) -> Any:
            return clean_inline(value) if isinstance(value, str) else value

        maintext = record.get("maintext")
        if isinstance(maintext, str) and _MARKUP.search(maintext):
            maintext = html_to_lines(maintext)  # some exporters keep the article's HTML in maintext
        text = join_paragraphs(split_paragraphs(maintext)) if isinstance(maintext, str) else maintext
        authors = record.get("authors")
        if isinstance(authors, list):
            authors = [clean_inline(a) if isinstance(a, str) else a for a in authors]
        elif authors is None:
            authors = []
        published = record.get("date_publish")
        language = normalise_language(record.get("language") or crawl.language or self.config.default_language)
        source = text_or_raw(record.get("source_domain")) or None
        url = text_or_raw(record.get("url")) or None
        return Draft(
            page=page,
            format=fmt,
            title=_newsplease_title(record),
            text=text if text is not None else "",
            source=source if source is not None else crawl.outlet,
            url=url if url is not None else crawl.url,
            authors=authors,
            language=text_or_raw(language),
            published_raw=_newsplease_date(published),
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
    return root.text_content()


def strip_html_chrome(paragraphs: list[str], chrome: ChromeConfig) -> list[str]:
    """Chrome that the extractor kept: inline phrases ("Advertisement") anywhere, and trailing
    end-of-article lines such as "Read more: <headline>" or "Related"."""
    kept = [
        p
        for p in paragraphs
        if not (len(p.split()) <= PHRASE_MATCH_MAX_WORDS and chrome.is_phrase(p) and not chrome.is_end(p))
    ]
    while kept and _is_trailing_chrome(kept[-1], chrome):
        kept.pop()
    return kept


def _is_trailing_chrome(paragraph: str, chrome: ChromeConfig) -> bool:
    if len(paragraph.split()) > PHRASE_MATCH_MAX_WORDS:
        return False
    lead = paragraph.split(":", 1)[0] if ":" in paragraph else paragraph
    return chrome.is_phrase(paragraph) or chrome.is_end(lead)


EPOCH_MILLIS_ABOVE = 10**11  # larger epoch numbers are milliseconds (10**11 s is the year 5138)


def _newsplease_date(value: Any) -> str | None:
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


def _newsplease_title(record: dict[str, Any]) -> Any:
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


def normalise_language(value: Any) -> Any:
    """ "EN" -> "en", "en_gb" -> "en-GB"; anything not shaped like a tag ("English") is left for the schema to reject."""
    if not isinstance(value, str) or not (match := _LANGUAGE_TAG.fullmatch(value.strip())):
        return value
    subtags = [part for part in match.group(2).replace("_", "-").split("-") if part]
    region = [tag.upper() if len(tag) == 2 and tag.isalpha() else tag for tag in subtags]
    return "-".join([match.group(1).lower(), *region])


class ResolveDates(PipelineStep):
    """Crawl time per record (cli > sidecar > manifest > record > mtime); published time against it."""

    name = "dates"

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            if isinstance(item, Draft):
                item.crawled_at, item.crawl_source = item.page.task.crawl.resolve(item.record_time)
                self.stats[f"crawl:{item.crawl_source}"] += 1
                item.published_at, item.precision = dates.resolve(item.published_raw, item.crawled_at)
                if item.published_raw and item.published_at is None:
                    self.stats["unparsed_date"] += 1
                elif item.precision:
                    self.stats[f"precision:{item.precision}"] += 1
            yield item


class FlagTruncation(PipelineStep):
    """`truncated` when the body is cut or spliced mid-sentence (see `truncation`)."""

    name = "truncation"

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        for item in items:
            if isinstance(item, Draft) and isinstance(item.text, str):
                item.truncated = is_truncated(item.text.split("\n\n"))
                self.stats["truncated"] += item.truncated
            yield item


class AssignIds(PipelineStep):
    """Stable ids from identity (canonical URL, else outlet + title), raw path and occurrence;
    related articles point at their page's main article."""

    name = "ids"

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        current_rel = None
        occurrences: Counter[str] = Counter()
        ids_by_position: dict[int, str] = {}
        for item in items:
            if isinstance(item, Draft):
                rel = item.page.task.rel
                if rel != current_rel:
                    current_rel, occurrences, ids_by_position = rel, Counter(), {}
                url = item.url if isinstance(item.url, str) else None
                source = item.source if isinstance(item.source, str) else None
                title = item.title if isinstance(item.title, str) else ""
                item.identity = ids.identity_key(url, source, title)
                item.id = ids.article_id(item.identity, rel, occurrences[item.identity])
                occurrences[item.identity] += 1
                ids_by_position[item.position] = item.id
                if item.main_position is not None:
                    item.related_to = ids_by_position.get(item.main_position)
                self.stats["ids"] += 1
            yield item


def build_record(draft: Draft) -> dict[str, Any]:
    """The article record in schema field order (`id` first: the merge reads it from the line prefix)."""
    page = draft.page
    text = draft.text
    provenance: dict[str, Any] = {"path": page.task.rel, "sha256": page.sha256, "format": str(draft.format)}
    crawl = page.task.crawl
    for key in ("line_start", "line_end", "byte_start", "byte_end", "record_index"):
        value = getattr(draft, key)
        if value is not None and crawl.record_id is None:
            provenance[key] = value
    if crawl.record_id is not None:  # a WARC record: path is the archive, these say where in it
        provenance.update(
            record_index=crawl.record_index, warc_record_id=crawl.record_id, warc_record_offset=crawl.record_offset
        )
    provenance.update(
        {
            "parser_version": PARSER_VERSION,
            "encoding": page.encoding,
            "repairs": list(page.repairs),
            **({"invalid_bytes": page.invalid_bytes} if page.invalid_bytes else {}),
            "crawl_time_source": draft.crawl_source,
            "near_duplicate_jaccard": None,
        }
    )
    return {
        "id": draft.id,
        "title": draft.title,
        "text": text,
        "text_sha256": ids.text_sha256(text) if isinstance(text, str) else "",
        "source": draft.source,
        "url": draft.url,
        "authors": draft.authors,
        "published_at": draft.published_at,
        "published_at_raw": draft.published_raw,
        "published_at_precision": draft.precision,
        "crawled_at": iso_utc(draft.crawled_at) if draft.crawled_at else None,
        "language": draft.language,
        "role": draft.role,
        "related_to": draft.related_to,
        "duplicate_of": None,
        "truncated": draft.truncated,
        "provenance": provenance,
        "schema_version": SCHEMA_VERSION,
    }


class BuildRecords(PipelineStep):
    """Draft -> Article (validated against schema/article.schema.json) or Quarantine(schema_invalid)."""

    name = "validate"

    def __init__(self) -> None:
        super().__init__()
        self._validator: Any = None

    def __getstate__(self) -> dict[str, Any]:
        return {"stats": self.stats, "_validator": None}  # the compiled validator is rebuilt where the step runs

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        if self._validator is None:
            self._validator = validator("article.schema.json")
        for item in items:
            if not isinstance(item, Draft):
                yield item
                continue
            record = build_record(item)
            errors = self._validator.errors(record)
            if errors:
                self.stats["schema_invalid"] += 1
                yield Quarantine(
                    item.page.task.rel,
                    item.page.sha256,
                    Reason.SCHEMA_INVALID,
                    "; ".join(str(e) for e in errors[:3]) + (" ..." if len(errors) > 3 else ""),
                    errors=[e.as_dict() for e in errors],
                    line=item.line_start,
                    record_index=item.record_index,
                )
                continue
            self.stats["valid"] += 1
            yield Article(item.page.task.rel, record, item.identity)


class AddSignatures(PipelineStep):
    """Near-duplicate signatures (from the dedup module), computed in the workers; identical texts
    (the same related article on many pages) are signed once."""

    name = "signature"

    def __init__(self, signature: Callable[[str], np.ndarray] | None = None, cache_size: int = 4096):
        super().__init__()
        self._signature = signature
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()
        self._cache_size = cache_size

    def __call__(self, items: Iterable[Any]) -> Iterator[Any]:
        signature = self._signature
        if signature is None:
            from newsstance.normalize import dedup

            signature = dedup.signature
        for item in items:
            if isinstance(item, Article):
                key = item.record["text_sha256"]
                cached = self._cache.get(key)
                if cached is None:
                    cached = signature(item.record["text"])
                    self._cache[key] = cached
                    if len(self._cache) > self._cache_size:
                        self._cache.popitem(last=False)
                    self.stats["computed"] += 1
                else:
                    self._cache.move_to_end(key)
                    self.stats["reused"] += 1
                item.signature = cached
            yield item


def build_steps(config: NormalizeConfig, cache_key: str) -> list[PipelineStep]:
    """The full per-record chain, from FileTask to signed Article."""
    return [
        LoadFiles(config.max_bytes, cache_key),
        DecodeText(),
        ExtractArticles(config),
        ResolveDates(),
        FlagTruncation(),
        AssignIds(),
        BuildRecords(),
        AddSignatures(),
    ]


def run_steps(items: Iterable[Any], steps: list[PipelineStep]) -> Iterator[Any]:
    stream: Iterator[Any] = iter(items)
    for step in steps:
        stream = step(stream)
    return stream
