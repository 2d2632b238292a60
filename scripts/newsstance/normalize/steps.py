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
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from newsstance import ids
from newsstance.errors import EnvironmentProblem
from newsstance.normalize import dates
from newsstance.normalize.config import NormalizeConfig
from newsstance.normalize.decode import DecodeError, decode_bytes
from newsstance.normalize.model import (
    PARSER_VERSION,
    SCHEMA_VERSION,
    Article,
    Cached,
    Draft,
    FileTask,
    Item,
    Quarantine,
    RawPage,
    Reason,
    TextPage,
    iso_utc,
)
from newsstance.normalize.readers import READERS, sniff_format
from newsstance.normalize.truncation import is_truncated
from newsstance.records import validator


class PipelineStep:
    """Base class: a named generator transform with its own counters."""

    name = "step"

    def __init__(self) -> None:
        self.stats: Counter[str] = Counter()

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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
        if not data or data.isspace():  # no strip(): it would copy a big file
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

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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
            if not decoded.text or decoded.text.isspace():  # no strip(): it would copy a big text
                self.stats["empty"] += 1
                yield Quarantine(item.task.rel, item.sha256, Reason.EMPTY, "no text after decoding")
                continue
            for repair in decoded.repairs:
                self.stats[f"repair:{repair}"] += 1
            page = TextPage(
                item.task,
                item.sha256,
                decoded.text,
                decoded.encoding,
                decoded.repairs,
                len(item.data),
                decoded.invalid_bytes,
            )
            del item, decoded  # bounded memory: the raw bytes are freed before the page is processed
            yield page


class ExtractArticles(PipelineStep):
    """TextPage -> one Draft per article or Quarantine, by the reader of the page's format
    (sniffed from the content; see `readers`)."""

    name = "extract"

    def __init__(self, config: NormalizeConfig):
        super().__init__()
        self.config = config

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if not isinstance(item, TextPage):
                yield item
                continue
            is_record = item.task.crawl.record_id is not None  # an archive's HTML response (readers/warc.py)
            kind = "html" if is_record else sniff_format(item.text, PurePosixPath(item.rel).suffix.lower())
            self.stats[f"format:{kind}"] += 1
            outputs: list[Draft | Quarantine]
            try:
                # a reader bug on one odd page must not stop the run: that page is quarantined instead
                outputs = list(READERS[kind](item, self.config, self.stats))
            except EnvironmentProblem:
                raise  # a missing module or model fails every page alike: stop the run with one line
            except Exception as exc:
                self.stats["reader_error"] += 1
                detail = f"the {kind} reader failed: {type(exc).__name__}: {exc}"
                outputs = [Quarantine(item.rel, item.sha256, Reason.NO_ARTICLE, detail)]
            else:
                for out in outputs:
                    if isinstance(out, Quarantine):
                        self.stats[str(out.reason)] += 1
            item.text = ""  # bounded memory: drafts keep the page for provenance only, not its text
            for out in outputs:
                if isinstance(out, Draft):
                    self.stats[f"role:{out.role}"] += 1
                    self.stats["articles"] += 1
                yield out


class ResolveDates(PipelineStep):
    """Crawl time per record (cli > sidecar > manifest > record > mtime); published time against it."""

    name = "dates"

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Draft) and isinstance(item.text, str):
                item.truncated = is_truncated(item.text.split("\n\n"))
                self.stats["truncated"] += item.truncated
            yield item


class AssignIds(PipelineStep):
    """Stable ids from identity (canonical URL, else outlet + title), raw path and occurrence;
    related articles point at their page's main article."""

    name = "ids"

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
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


def run_steps(items: Iterable[Item], steps: list[PipelineStep]) -> Iterator[Item]:
    stream: Iterator[Item] = iter(items)
    for step in steps:
        stream = step(stream)
    return stream
