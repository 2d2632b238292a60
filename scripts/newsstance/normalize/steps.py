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

import hashlib
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from newsstance import ids
from newsstance.errors import EnvironmentProblem
from newsstance.normalize import dates, language, titles
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

_HASH_CHUNK = 1 << 20


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


def file_sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


class LoadFiles(PipelineStep):
    """FileTask -> RawPage (bytes + sha256), Cached (unchanged since the last run) or Quarantine
    (read_error, too_large, empty). Oversized files are hashed in chunks, never held in memory."""

    name = "load"

    def __init__(self, max_bytes: int, cache_key: str):
        super().__init__()
        self.max_bytes = max_bytes
        self.cache_key = cache_key

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
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
        try:
            size = os.stat(task.path).st_size
            if size > self.max_bytes:
                sha256 = file_sha256(task.path)
                self.stats["too_large"] += 1
                return self._cached(task, sha256) or Quarantine(
                    task.rel,
                    sha256,
                    Reason.TOO_LARGE,
                    f"{size} bytes is over the limit of {self.max_bytes} (--max-bytes)",
                )
            with open(task.path, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            detail = f"{type(exc).__name__}: {exc.strerror or exc}"
            self.stats["read_error"] += 1
            return self._cached(task, None, detail) or Quarantine(task.rel, None, Reason.READ_ERROR, detail)
        sha256 = hashlib.sha256(data).hexdigest()
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


class DecodeText(PipelineStep):
    """RawPage -> TextPage (encoding detected, repairs recorded) or Quarantine (binary, undecodable, empty)."""

    name = "decode"

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if not isinstance(item, RawPage):
                yield item
                continue
            try:
                decoded = decode_bytes(item.data)
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
            yield TextPage(item.task, item.sha256, decoded.text, decoded.encoding, decoded.repairs, len(item.data))


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
            kind = sniff_format(item.text, PurePosixPath(item.rel).suffix.lower())
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
                raws = [item.published_raw, *item.date_candidates] if item.published_raw else item.date_candidates
                choice = dates.choose(raws, item.crawled_at)
                item.published_raw, item.published_at, item.precision = (
                    choice.raw,
                    choice.published_at,
                    choice.precision,
                )
                item.date_rejected = choice.rejected
                if choice.rejected:
                    self.stats["rejected_date"] += 1
                if item.published_raw and item.published_at is None:
                    self.stats["unusable_date"] += 1
                elif item.precision:
                    self.stats[f"precision:{item.precision}"] += 1
            yield item


class CheckTitles(PipelineStep):
    """Titles a person can see: bidi controls removed (recorded in `repairs`), a site-name segment
    matching the outlet dropped, an invisible title quarantined as `no_title` (see `titles`)."""

    name = "titles"

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Draft) and isinstance(item.title, str) and item.title.strip():
                title, had_bidi = titles.remove_bidi(item.title)
                if titles.is_invisible(title):
                    self.stats["no_title"] += 1
                    yield Quarantine(
                        item.rel,
                        item.page.sha256,
                        Reason.NO_TITLE,
                        f"the title {item.title!r} has no visible character",
                        line=item.line_start,
                        record_index=item.record_index,
                    )
                    continue
                url = item.url if isinstance(item.url, str) else None
                source = item.source if isinstance(item.source, str) else None
                title, named_site = titles.strip_site_name(title, titles.outlet_keys([source], [url]))
                for repair, done in (("title_bidi_controls", had_bidi), ("title_site_name", named_site)):
                    if done and repair not in item.repairs:
                        item.repairs.append(repair)
                        self.stats[repair] += 1
                item.title = title
            yield item


class IdentifyLanguage(PipelineStep):
    """`language` from the article text; the declared tag (markup, record, sidecar) breaks ties for
    short texts (see `language`)."""

    name = "language"

    def __init__(self, default_language: str | None = None):
        super().__init__()
        self.default_language = default_language  # for texts too short to identify that declare nothing

    def __call__(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Draft) and isinstance(item.text, str):
                declared = item.language if isinstance(item.language, str) else None
                decision = language.decide(item.text, declared or self.default_language)
                item.language, item.language_source = decision.language, decision.source
                self.stats[f"language:{decision.source}"] += 1
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
    for key in ("line_start", "line_end", "byte_start", "byte_end", "record_index"):
        value = getattr(draft, key)
        if value is not None:
            provenance[key] = value
    provenance.update(
        {
            "parser_version": PARSER_VERSION,
            "encoding": page.encoding,
            "repairs": [*page.repairs, *draft.repairs],
            "crawl_time_source": draft.crawl_source,
            "near_duplicate_jaccard": None,
            "language_source": draft.language_source,
        }
    )
    if draft.date_rejected:
        provenance["published_at_rejected"] = draft.date_rejected
    if draft.extractor:
        provenance["extractor"] = draft.extractor
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
        CheckTitles(),
        IdentifyLanguage(config.default_language),
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
