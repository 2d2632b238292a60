"""WARC input: small archives built here (warcio writes, fastwarc reads) from fictional pages."""

from __future__ import annotations

import gzip
import io
import random
from collections import Counter
from pathlib import Path

import pytest

warcio = pytest.importorskip("warcio")
from warcio.statusandheaders import StatusAndHeaders  # noqa: E402
from warcio.warcwriter import WARCWriter  # noqa: E402

from newsstance.normalize.readers.warc import WarcPage, WarcSkipped, iter_warc  # noqa: E402

HTTP_DATE = "Tue, 10 Mar 2026 08:00:00 GMT"
WARC_DATE = "2026-03-11T07:30:00Z"


def article_html(title: str, town: str) -> bytes:
    paragraphs = "".join(
        f"<p>{sentence}</p>"
        for sentence in (
            f"The {town} council agreed on Monday to reopen the old ferry landing after a long winter of repairs.",
            f"Harbour master Ilse Varrow said the first boats would call at {town} before the spring markets begin.",
            "Residents had asked for the landing to reopen since the storms damaged the pier two years ago.",
        )
    )
    return (
        f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title></head>"
        f"<body><article><h1>{title}</h1>{paragraphs}</article></body></html>"
    ).encode()


def _response(writer: WARCWriter, uri: str, status: str, headers: list[tuple[str, str]], body: bytes, **warc: str):
    http = StatusAndHeaders(status, headers, protocol="HTTP/1.1")
    warc_headers = {"WARC-Date": WARC_DATE, **warc}
    record = writer.create_warc_record(
        uri, "response", payload=io.BytesIO(body), http_headers=http, warc_headers_dict=warc_headers
    )
    writer.write_record(record)


def build_warc(path: Path, compress: bool, big_body: bytes | None = None) -> dict[str, str]:
    """An archive with one record of every kind; returns uri -> what should become of it."""
    with path.open("wb") as handle:
        writer = WARCWriter(handle, gzip=compress)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "newsstance tests"}))
        request = StatusAndHeaders("GET /harbour HTTP/1.1", [("Host", "quaytimes.example")], is_http_request=True)
        writer.write_record(
            writer.create_warc_record("https://quaytimes.example/harbour", "request", http_headers=request)
        )
        html_type = [("Content-Type", "text/html; charset=utf-8")]
        _response(
            writer,
            "https://quaytimes.example/harbour",
            "200 OK",
            [*html_type, ("Date", HTTP_DATE)],
            article_html("Ferry landing reopens at Velmora", "Velmora"),
        )
        _response(
            writer,
            "https://quaytimes.example/no-date",
            "200 OK",
            html_type,
            article_html("Spring market returns to Ostreva", "Ostreva"),
        )
        _response(
            writer,
            "https://quaytimes.example/zipped",
            "200 OK",
            [*html_type, ("Content-Encoding", "gzip"), ("Date", HTTP_DATE)],
            gzip.compress(article_html("Lighthouse keeper retires in Penhallow", "Penhallow")),
        )
        _response(writer, "https://quaytimes.example/old", "301 Moved Permanently", [("Location", "/new")], b"")
        _response(writer, "https://quaytimes.example/gone", "404 Not Found", html_type, b"<html>gone</html>")
        _response(writer, "https://quaytimes.example/logo.png", "200 OK", [("Content-Type", "image/png")], b"\x89PNG")
        _response(
            writer,
            "https://quaytimes.example/cut",
            "200 OK",
            html_type,
            article_html("Half a page", "Dunmere"),
            **{"WARC-Truncated": "length"},
        )
        if big_body is not None:
            _response(writer, "https://quaytimes.example/huge", "200 OK", html_type, big_body)
        writer.write_record(
            writer.create_warc_record(
                "https://quaytimes.example/harbour", "metadata", payload=io.BytesIO(b"fetchTimeMs: 12\r\n")
            )
        )
    expected = {
        "https://quaytimes.example/harbour": "article",
        "https://quaytimes.example/no-date": "article",
        "https://quaytimes.example/zipped": "article",
        "https://quaytimes.example/old": "http_redirect",
        "https://quaytimes.example/gone": "http_error",
        "https://quaytimes.example/logo.png": "not_html",
        "https://quaytimes.example/cut": "warc_truncated",
    }
    if big_body is not None:
        expected["https://quaytimes.example/huge"] = "too_large"
    return expected


@pytest.mark.parametrize("compress", [True, False], ids=["warc.gz", "warc"])
def test_warc_records_become_articles_or_quarantine_by_reason(normalize, tmp_path, compress):
    name = "crawl/quay.warc.gz" if compress else "crawl/quay.warc"
    raw = tmp_path / "raw"
    (raw / "crawl").mkdir(parents=True)
    noise = random.Random(7).randbytes(40_000).hex().encode()  # does not compress away in .warc.gz
    big = article_html("Big page", "Orrin") + b"<!-- " + noise + b" -->"
    expected = build_warc(raw / name, compress, big_body=big)
    max_bytes = 20_000  # per record: the whole archive is larger than this and must not be refused
    assert (raw / name).stat().st_size > max_bytes
    result = normalize({}, max_bytes=max_bytes, crawl_time="2026-01-01T00:00:00Z")

    by_url = {r["url"]: r for r in result.records}
    assert set(by_url) == {uri for uri, fate in expected.items() if fate == "article"}
    harbour = by_url["https://quaytimes.example/harbour"]
    assert harbour["title"] == "Ferry landing reopens at Velmora"
    assert harbour["crawled_at"] == "2026-03-10T08:00:00Z"  # the HTTP Date, over --crawl-time
    assert harbour["provenance"]["crawl_time_source"] == "http_date"
    assert harbour["provenance"]["path"] == name and harbour["provenance"]["format"] == "html"
    assert harbour["provenance"]["warc_record_id"].startswith("<urn:uuid:")
    assert isinstance(harbour["provenance"]["warc_record_offset"], int)
    no_date = by_url["https://quaytimes.example/no-date"]
    assert no_date["crawled_at"] == WARC_DATE and no_date["provenance"]["crawl_time_source"] == "warc_date"
    assert "Penhallow" in by_url["https://quaytimes.example/zipped"]["text"]  # Content-Encoding undone
    assert len({r["id"] for r in result.records}) == 3
    assert len({r["provenance"]["warc_record_id"] for r in result.records}) == 3

    reasons = sorted(q["reason"] for q in result.quarantine)
    assert reasons == sorted(fate for fate in expected.values() if fate != "article")
    assert all(q["path"] == name and isinstance(q["record_index"], int) for q in result.quarantine)
    redirect = next(q for q in result.quarantine if q["reason"] == "http_redirect")
    assert "301" in redirect["detail"] and "/new" in redirect["detail"]
    with (raw / name).open("rb") as handle:
        kinds = Counter(item.kind if isinstance(item, WarcSkipped) else "page" for item in iter_warc(handle, max_bytes))
    assert kinds["warcinfo"] == kinds["request"] == kinds["metadata"] == 1 and kinds["page"] == 3  # counted
    counters = next(c for c in result.summary.step_stats.values() if "warc:page" in c)  # the run reports them
    assert (counters["warc:page"], counters["warc:request"], counters["warc:metadata"]) == (3, 1, 1)

    again = normalize({}, max_bytes=max_bytes, crawl_time="2026-01-01T00:00:00Z")
    assert again.summary.up_to_date and again.records == result.records


def test_a_warc_cut_mid_record_keeps_the_records_before_the_cut(tmp_path):
    path = tmp_path / "a.warc"
    build_warc(path, compress=False)
    data = path.read_bytes()
    cut = data.index(b"Spring market returns") + 40  # inside the second response's payload
    items = list(iter_warc(io.BytesIO(data[:cut]), 1_000_000))
    pages = [i for i in items if isinstance(i, WarcPage)]
    assert [p.target_uri for p in pages] == ["https://quaytimes.example/harbour"]
    last = items[-1]
    assert isinstance(last, WarcSkipped) and last.reason is not None
    assert str(last.reason) == "warc_truncated"


def test_garbage_inside_a_warc_is_reported_once_as_unreadable(tmp_path):
    path = tmp_path / "a.warc"
    build_warc(path, compress=False)
    data = path.read_bytes()
    at = data.index(b"WARC/1", data.index(b"Spring market returns"))  # start of the record after it
    items = list(iter_warc(io.BytesIO(data[:at] + b"this is not a WARC header\r\n\r\n" + data[at:]), 1_000_000))
    unreadable = [i for i in items if isinstance(i, WarcSkipped) and str(i.reason) == "warc_unreadable"]
    assert len(unreadable) == 1 and items[-1] is unreadable[0]
    assert sum(isinstance(i, WarcPage) for i in items) == 2


def test_a_warc_on_a_remote_file_system_gives_the_records_of_the_local_one(tmp_path):
    import fsspec
    import orjson

    from newsstance.normalize.runner import run_normalize

    local = tmp_path / "raw"
    local.mkdir()
    build_warc(local / "quay.warc.gz", compress=True)
    memory = fsspec.filesystem("memory")
    memory.pipe("/newsstance-warc-test/raw/quay.warc.gz", (local / "quay.warc.gz").read_bytes())
    try:
        remote = run_normalize(["memory:///newsstance-warc-test/raw"], tmp_path / "mem", crawl_time=WARC_DATE)
    finally:
        memory.rm("/newsstance-warc-test", recursive=True)
    run_normalize([local], tmp_path / "disk", crawl_time=WARC_DATE)
    assert remote.articles == 3

    def outputs(out: Path) -> list[bytes]:
        return [path.read_bytes() for path in sorted(out.glob("*.jsonl"))]

    assert outputs(tmp_path / "mem") == outputs(tmp_path / "disk")
    manifest = orjson.loads((tmp_path / "mem" / "manifest.json").read_bytes())
    assert manifest["files"]["quay.warc.gz"]["size"] == (local / "quay.warc.gz").stat().st_size
