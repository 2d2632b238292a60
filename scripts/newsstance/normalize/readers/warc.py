"""WARC archives (`*.warc`, `*.warc.gz`) through fastwarc: HTTP responses with HTML bodies become
pages for the HTML reader, everything else is counted or quarantined by reason.

- A `response` record with an HTTP 2xx status and an HTML body (`text/html`,
  `application/xhtml+xml`, or no content type and markup at the start) is a page: its URL is
  the record's `WARC-Target-URI`, its crawl time the HTTP `Date` header, else `WARC-Date`
  (`crawl_time_source` `http_date` / `warc_date`; a record's own time wins over `--crawl-time`,
  sidecars and manifests, which describe whole files), its provenance the WARC record id and the
  record's byte offset in the file.
- Quarantined, one entry per record: 3xx `http_redirect`, 4xx/5xx `http_error`, other bodies
  `not_html`, records over `--max-bytes` `too_large` (the limit applies per record: a 1 GB
  archive of small pages is fine), `WARC-Truncated` or short records `warc_truncated`, and
  a stream fastwarc cannot parse further `warc_unreadable` (the rest of that file is lost and
  reported once).
- `request`, `warcinfo`, `metadata`, `revisit`, `resource`, `conversion` and `continuation`
  records are counted (`warc:<type>` step counters), never articles.

Records are streamed: one record body (at most `--max-bytes`) is in memory at a time.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePosixPath
from typing import IO, TYPE_CHECKING

from newsstance.normalize.model import CrawlContext, FileTask, Quarantine, RawPage, Reason

if TYPE_CHECKING:
    from fastwarc.warc import WarcRecord

WARC_SUFFIXES = (".warc", ".warc.gz")
HTML_TYPES = frozenset({"text/html", "application/xhtml+xml"})
_MARKUP_START = (b"<!doctype html", b"<html", b"<head", b"<body")
_SNIFF = 1024


def is_warc_path(name: str) -> bool:
    lowered = PurePosixPath(name).name.lower()
    return lowered.endswith(WARC_SUFFIXES)


@dataclass(frozen=True, slots=True)
class WarcPage:
    """An HTML response record, ready for decoding and the HTML reader."""

    index: int  # position among the file's records, from 0
    offset: int  # byte offset of the record in the (possibly compressed) file
    record_id: str
    target_uri: str | None
    crawled_at: datetime | None
    time_source: str | None  # http_date | warc_date
    charset: str | None  # from the HTTP Content-Type
    body: bytes


@dataclass(frozen=True, slots=True)
class WarcSkipped:
    """A record that is not a page: counted as `kind`; quarantined when `reason` is set."""

    index: int
    offset: int
    record_id: str | None
    kind: str
    reason: Reason | None = None
    detail: str = ""


def _looks_like_html(body: bytes) -> bool:
    head = body[:_SNIFF].lstrip().lower()
    return head.startswith(_MARKUP_START) or (head.startswith(b"<") and b"<html" in head)


def _crawl_time(record: WarcRecord) -> tuple[datetime | None, str | None]:
    http_date = record.http_date
    if isinstance(http_date, datetime):
        return http_date, "http_date"
    warc_date = record.record_date
    if isinstance(warc_date, datetime):
        return warc_date, "warc_date"
    return None, None


def iter_warc(source: IO[bytes] | str, max_record_bytes: int) -> Iterator[WarcPage | WarcSkipped]:
    """Every record of a WARC stream as a page or a skip, in file order (bounded memory)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    counted = {  # record types are not hashable: keyed by their bit value
        int(kind): str(kind)
        for kind in (
            WarcRecordType.request,
            WarcRecordType.warcinfo,
            WarcRecordType.metadata,
            WarcRecordType.revisit,
            WarcRecordType.resource,
            WarcRecordType.conversion,
            WarcRecordType.continuation,
        )
    }
    records = iter(ArchiveIterator(source, parse_http=True, auto_decode="all"))
    index = 0
    offset = 0
    while True:
        try:
            record = next(records)
        except StopIteration:
            return
        except OSError as exc:  # a damaged stream cannot be resynchronised reliably: report and stop
            yield WarcSkipped(
                index,
                offset,
                None,
                "unreadable",
                Reason.WARC_UNREADABLE,
                f"stream unreadable after record {index}: {exc}",
            )
            return
        offset = record.stream_pos
        record_id = record.record_id
        try:
            yield _classify(record, index, record_id, counted, max_record_bytes)
        except OSError as exc:
            yield WarcSkipped(
                index, offset, record_id, "unreadable", Reason.WARC_UNREADABLE, f"record unreadable: {exc}"
            )
            return
        index += 1


def _classify(
    record: WarcRecord, index: int, record_id: str | None, counted: dict[int, str], max_record_bytes: int
) -> WarcPage | WarcSkipped:
    from fastwarc.warc import WarcRecordType

    offset = record.stream_pos
    kind = counted.get(int(record.record_type))
    if kind is not None:
        return WarcSkipped(index, offset, record_id, kind)
    headers = record.headers
    if int(record.record_type) != int(WarcRecordType.response):
        return WarcSkipped(index, offset, record_id, "unknown")
    if headers.get("Content-Length") is None or record_id is None:
        return WarcSkipped(index, offset, record_id, "truncated", Reason.WARC_TRUNCATED, "record header is incomplete")
    uri = headers.get("WARC-Target-URI")
    where = f"{uri or 'no target URI'}"
    truncated = headers.get("WARC-Truncated")
    if truncated:
        return WarcSkipped(
            index, offset, record_id, "truncated", Reason.WARC_TRUNCATED, f"{where}: WARC-Truncated: {truncated}"
        )
    http = record.http_headers
    if http is None or http.status_code is None:
        return WarcSkipped(index, offset, record_id, "not_http", Reason.NOT_HTML, f"{where}: not an HTTP response")
    status = http.status_code
    if 300 <= status < 400:
        location = http.get("Location") or "no Location"
        return WarcSkipped(
            index, offset, record_id, "redirect", Reason.HTTP_REDIRECT, f"{where}: HTTP {status} -> {location}"
        )
    if status >= 400 or status < 200:
        return WarcSkipped(index, offset, record_id, "http_error", Reason.HTTP_ERROR, f"{where}: HTTP {status}")
    expected = record.content_length
    if expected > max_record_bytes:
        return WarcSkipped(
            index,
            offset,
            record_id,
            "too_large",
            Reason.TOO_LARGE,
            f"{where}: {expected} bytes is over the per-record limit of {max_record_bytes} (--max-bytes)",
        )
    content_type = (record.http_content_type or "").strip().lower()
    if content_type and content_type not in HTML_TYPES:
        return WarcSkipped(index, offset, record_id, "not_html", Reason.NOT_HTML, f"{where}: {content_type}")
    reader = record.reader
    body = reader.read(max_record_bytes + 1) if reader is not None else b""
    if len(body) < expected:
        return WarcSkipped(
            index,
            offset,
            record_id,
            "truncated",
            Reason.WARC_TRUNCATED,
            f"{where}: {len(body)} of {expected} payload bytes",
        )
    if len(body) > max_record_bytes:  # decoded (gzip/chunked) body larger than its transfer length
        return WarcSkipped(
            index,
            offset,
            record_id,
            "too_large",
            Reason.TOO_LARGE,
            f"{where}: decoded body over the per-record limit of {max_record_bytes} (--max-bytes)",
        )
    if not content_type and not _looks_like_html(body):
        return WarcSkipped(index, offset, record_id, "not_html", Reason.NOT_HTML, f"{where}: no content type, not HTML")
    crawled_at, time_source = _crawl_time(record)
    return WarcPage(index, offset, record_id, uri, crawled_at, time_source, record.http_charset, body)


# ---------------------------------------------------------------- pipeline items


def warc_items(
    task: FileTask,
    handle: IO[bytes],
    sha256: str,
    max_record_bytes: int,
    stats: Counter[str],
) -> Iterator[RawPage | Quarantine]:
    """The pipeline items of one WARC file: a RawPage per HTML response (its own crawl context:
    target URI, record time, record id and offset), a Quarantine per rejected record."""
    for item in iter_warc(handle, max_record_bytes):
        stats[f"warc:{item.kind if isinstance(item, WarcSkipped) else 'page'}"] += 1
        if isinstance(item, WarcSkipped):
            if item.reason is not None:
                where = f"record {item.index} at byte {item.offset}" + (
                    f" ({item.record_id})" if item.record_id else ""
                )
                yield Quarantine(task.rel, sha256, item.reason, f"{where}: {item.detail}", record_index=item.index)
            continue
        base = task.crawl
        crawled_at, source = (
            (item.crawled_at, item.time_source) if item.crawled_at is not None else (base.crawled_at, base.source)
        )
        crawl = CrawlContext(
            crawled_at,
            source,
            base.mtime,
            url=item.target_uri or base.url,
            outlet=base.outlet,
            language=base.language,
            record_id=item.record_id,
            record_offset=item.offset,
            record_index=item.index,
            charset=item.charset,
        )
        yield RawPage(dataclasses.replace(task, crawl=crawl), item.body, sha256)
