"""The items that flow through the normalize pipeline.

A run starts from `FileTask`s (one raw file each). Steps turn them into `RawPage` (bytes),
`TextPage` (decoded text), `Draft` (one extracted article) and finally `Article` (a
schema-valid record). Anything unusable becomes a `Quarantine` item, which every later
step passes through untouched, so each file ends as articles and/or quarantine entries.
`Item` is the union of them all; every item names its raw file the same way, `item.rel`
(posix path relative to the corpus root).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeAlias

import numpy as np

PARSER_VERSION = "1.2.1"
SCHEMA_VERSION = "1.0.0"


# A value read from JSON, kept with its type so that the schema (not a reader) reports a wrong one.
JsonValue: TypeAlias = str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None


class Reason(StrEnum):
    """Quarantine reason codes (stable: other tools count by them)."""

    EMPTY = "empty"
    BINARY = "binary"
    UNDECODABLE = "undecodable"
    TOO_LARGE = "too_large"
    MALFORMED_JSON = "malformed_json"
    SCHEMA_INVALID = "schema_invalid"
    NO_ARTICLE = "no_article"
    NO_TITLE = "no_title"
    READ_ERROR = "read_error"
    NOT_A_FILE = "not_a_file"  # FIFO, socket, device: never opened
    OUTSIDE_ROOT = "outside_root"  # a symlink leading out of the input root
    CHANGED_DURING_RUN = "changed_during_run"  # changed while read, twice
    NOT_HTML = "not_html"  # WARC response whose body is not HTML
    HTTP_REDIRECT = "http_redirect"  # WARC response with a 3xx status
    HTTP_ERROR = "http_error"  # WARC response with a 1xx/4xx/5xx status
    WARC_TRUNCATED = "warc_truncated"  # WARC-Truncated, short payload or incomplete header
    WARC_UNREADABLE = "warc_unreadable"  # the WARC stream cannot be parsed further


class Format(StrEnum):
    AGGREGATOR = "aggregator"
    HTML = "html"
    NEWSPLEASE_JSON = "newsplease-json"
    NEWSPLEASE_JSONL = "newsplease-jsonl"
    PLAINTEXT = "plaintext"


@functools.lru_cache(maxsize=4096)  # a run's crawl times repeat: one --crawl-time, a folder's sidecars
def iso_utc(moment: datetime) -> str:
    """`2025-03-12T10:15:30Z`: UTC, whole seconds (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).replace(microsecond=0, tzinfo=None).isoformat() + "Z"


@dataclass(frozen=True, slots=True)
class CrawlContext:
    """When (and per what evidence) a file was crawled, plus sidecar metadata for its article.

    `crawled_at` is None when no file-level source exists: the record's own
    `date_download` is used if present, else `mtime`.
    """

    crawled_at: datetime | None
    source: str | None  # cli | sidecar | manifest | http_date | warc_date
    mtime: datetime
    url: str | None = None
    outlet: str | None = None
    language: str | None = None
    # one record of an archive file (readers/warc.py): not part of the file's cache key
    record_id: str | None = None
    record_offset: int | None = None
    record_index: int | None = None
    charset: str | None = None  # declared by the transport (HTTP Content-Type)

    def key(self) -> str:
        """What the parse result depends on (part of the cache key)."""
        when = iso_utc(self.crawled_at) if self.crawled_at else f"mtime={iso_utc(self.mtime)}"
        return f"{self.source}|{when}|{self.url}|{self.outlet}|{self.language}"

    def resolve(self, record_time: datetime | None = None) -> tuple[datetime, str]:
        """The crawl time for one record and its `crawl_time_source`."""
        if self.crawled_at is not None and self.source:
            return self.crawled_at, self.source
        if record_time is not None:
            return record_time, "record"
        return self.mtime, "mtime"


@dataclass(frozen=True, slots=True)
class FileTask:
    """One raw file to normalise."""

    path: str  # absolute local path or fsspec URL
    rel: str  # posix, relative to the corpus root
    size: int
    crawl: CrawlContext
    # (size, mtime_ns, ctime_ns, inode, device) seen when planning, or None when the file was
    # modified too recently to trust it (see storage.trusted_stat); for a remote object (size,
    # version field, version) when its store gives one: lets the next run skip hashing
    stat: tuple[int | str, ...] | None = None


@dataclass(slots=True)
class Quarantine:
    """Bad input, with a reason code and a human-readable detail."""

    rel: str
    sha256: str | None
    reason: Reason
    detail: str
    errors: list[dict[str, str]] | None = None
    line: int | None = None
    record_index: int | None = None
    file_size: int | None = None  # bytes of the raw file as read (sources.read_stable), not in as_dict

    def as_dict(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "path": self.rel,
            "sha256": self.sha256,
            "reason": str(self.reason),
            "detail": self.detail,
        }
        if self.errors is not None:
            entry["errors"] = self.errors
        if self.line is not None:
            entry["line"] = self.line
        if self.record_index is not None:
            entry["record_index"] = self.record_index
        return entry


@dataclass(slots=True)
class RawPage:
    task: FileTask
    data: bytes
    sha256: str

    @property
    def rel(self) -> str:
        return self.task.rel


@dataclass(slots=True)
class TextPage:
    task: FileTask
    sha256: str
    text: str
    encoding: str
    repairs: tuple[str, ...]
    size: int
    invalid_bytes: int = 0  # invalid UTF-8 sequences replaced by U+FFFD (decode.py)

    @property
    def rel(self) -> str:
        return self.task.rel


@dataclass(slots=True)
class Draft:
    """One extracted article before ids, dates and validation.

    Fields read from JSON keep their raw type (a title may be a number) so that the schema,
    not the reader, reports what is wrong with them.
    """

    page: TextPage
    format: Format
    title: JsonValue
    text: JsonValue
    role: str = "standalone"
    source: JsonValue = None
    url: JsonValue = None
    authors: JsonValue = field(default_factory=list)
    language: JsonValue = None
    published_raw: str | None = None
    date_candidates: list[str] = field(default_factory=list)  # more date strings, tried after published_raw
    repairs: list[str] = field(
        default_factory=list
    )  # what the reader repaired in this article (title_bidi_controls, ...)
    extractor: str | None = None  # HTML body extractor that won
    record_time: datetime | None = None  # news-please date_download
    position: int = 0  # order of the article inside its file
    main_position: int | None = None  # position of the page's main article, for related ones
    line_start: int | None = None
    line_end: int | None = None
    byte_start: int | None = None
    byte_end: int | None = None
    record_index: int | None = None
    # filled by later steps
    crawled_at: datetime | None = None
    crawl_source: str | None = None
    published_at: str | None = None
    precision: str | None = None
    date_rejected: str | None = None
    language_source: str | None = None
    truncated: bool = False
    identity: str = ""
    id: str = ""
    related_to: str | None = None

    @property
    def rel(self) -> str:
        return self.page.task.rel


@dataclass(slots=True)
class Article:
    """A schema-valid record plus what the dedup stage needs to know about it."""

    rel: str
    record: dict[str, Any]
    identity: str
    signature: np.ndarray | None = None
    shingles: int = 0
    file_size: int | None = None  # bytes of the raw file as read: the manifest's size comes with the hash


Item: TypeAlias = FileTask | RawPage | TextPage | Draft | Article | Quarantine
"""Everything a step may receive or yield."""
