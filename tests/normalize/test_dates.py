"""Publication times (relative and absolute) and where the crawl time comes from."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import orjson
import pytest

from newsstance.normalize import dates

CRAWL = datetime(2026, 3, 14, 9, 30, 15, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "published_at", "precision"),
    [
        ("18 minutes ago", "2026-03-14T09:12:15Z", "minute"),
        ("a minute ago", "2026-03-14T09:29:15Z", "minute"),
        ("30 seconds ago", "2026-03-14T09:29:45Z", "minute"),
        ("just now", "2026-03-14T09:30:15Z", "minute"),
        ("an hour ago", "2026-03-14T08:30:15Z", "hour"),
        ("5 hours ago", "2026-03-14T04:30:15Z", "hour"),
        ("yesterday", "2026-03-13T09:30:15Z", "day"),
        ("3 days ago", "2026-03-11T09:30:15Z", "day"),
        ("a week ago", "2026-03-07T09:30:15Z", "week"),
        ("2 weeks ago", "2026-02-28T09:30:15Z", "week"),
        ("a month ago", "2026-02-14T09:30:15Z", "month"),
        ("a year ago", "2025-03-14T09:30:15Z", "year"),
        ("An  Hour Ago", "2026-03-14T08:30:15Z", "hour"),
    ],
)
def test_relative_times_resolve_against_the_crawl_time(raw, published_at, precision):
    assert dates.resolve(raw, CRAWL) == (published_at, precision)


@pytest.mark.parametrize(
    "raw",
    [
        "18 minutes ago",
        "an hour ago",
        "yesterday",
        "3 days ago",
        "a week ago",
        "2 weeks ago",
        "a month ago",
        "3 months ago",
        "a year ago",
        "today",
        "last week",
        "1 hour ago",
        "2 hrs ago",
        "5 mins ago",
    ],
)
def test_fast_path_agrees_with_dateparser(raw):
    assert dates.relative_fast(raw, CRAWL) == dates.parse_with_dateparser(raw, CRAWL)


@pytest.mark.parametrize(
    ("raw", "published_at", "precision"),
    [
        ("2026-03-12T14:05:00+01:00", "2026-03-12T13:05:00Z", "minute"),
        ("2026-03-12T14:05:00+0100", "2026-03-12T13:05:00Z", "minute"),
        ("2026-03-12T06:00:00Z", "2026-03-12T06:00:00Z", "minute"),
        ("2026-03-09 11:20:00", "2026-03-09T11:20:00Z", "minute"),
        ("2026-03-10", "2026-03-10T00:00:00Z", "day"),
        ("12 March 2026", "2026-03-12T00:00:00Z", "day"),
        ("Mar 3, 2026 at 5:40 pm", "2026-03-03T17:40:00Z", "minute"),
        ("March 2026", "2026-03-01T00:00:00Z", "month"),
        ("2025", "2025-01-01T00:00:00Z", "year"),
    ],
)
def test_absolute_dates_become_utc_with_z(raw, published_at, precision):
    assert dates.resolve(raw, CRAWL) == (published_at, precision)


@pytest.mark.parametrize("raw", ["", "   ", "soon", "Updated by the desk"])
def test_unreadable_dates_give_none(raw):
    assert dates.resolve(raw, CRAWL) == (None, None)


def test_the_same_relative_string_depends_on_the_crawl_time():
    other = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    assert dates.resolve("an hour ago", CRAWL)[0] != dates.resolve("an hour ago", other)[0]


# ---- crawl time sources ------------------------------------------------------------------------------------------

PAGE = "Quay lights switched on\nThe new lights on the quay were switched on last night.\n"


def _sources(result) -> dict[str, tuple[str, str]]:
    return {r["provenance"]["path"]: (r["provenance"]["crawl_time_source"], r["crawled_at"]) for r in result.records}


def test_crawl_time_precedence(normalize, pages, tmp_path):
    manifest = "\n".join(
        orjson.dumps(line).decode()
        for line in [
            {"path": "a/in_manifest.txt", "crawled_at": "2026-03-02T08:00:00Z"},
            {"path": "a/with_sidecar.txt", "crawled_at": "2026-03-02T08:00:00Z"},
        ]
    )
    files = {
        "crawl_manifest.jsonl": manifest,  # in a parent folder of the files it lists
        "a/in_manifest.txt": PAGE,
        "a/with_sidecar.txt": PAGE,
        "a/with_sidecar.txt.meta.json": orjson.dumps({"crawled_at": "2026-03-03T10:00:00+01:00"}),
        "a/plain_mtime.txt": PAGE,
        "a/record.json": orjson.dumps(pages.newsplease),
    }
    result = normalize(files, crawl_time=None)
    mtime = os.stat(tmp_path / "raw" / "a" / "plain_mtime.txt").st_mtime
    assert _sources(result) == {
        "a/in_manifest.txt": ("manifest", "2026-03-02T08:00:00Z"),
        "a/with_sidecar.txt": ("sidecar", "2026-03-03T09:00:00Z"),
        "a/plain_mtime.txt": ("mtime", datetime.fromtimestamp(int(mtime), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
        "a/record.json": ("record", "2026-03-13T21:05:00Z"),
    }
    assert result.summary.files == 4  # sidecar and manifest are not articles


def test_cli_crawl_time_wins_over_everything(normalize, pages):
    files = {
        "s.txt": PAGE,
        "s.txt.meta.json": orjson.dumps({"crawled_at": "2026-03-03T10:00:00Z"}),
        "r.json": orjson.dumps(pages.newsplease),
    }
    result = normalize(files, crawl_time="2026-03-20T07:00:00+02:00")
    assert set(_sources(result).values()) == {("cli", "2026-03-20T05:00:00Z")}


def test_relative_time_uses_the_file_crawl_time(normalize, pages):
    files = {
        "x/page.txt": pages.aggregator,
        "x/page.txt.meta.json": orjson.dumps({"crawled_at": "2026-01-05T12:00:00Z"}),
    }
    result = normalize(files, crawl_time=None)
    school = result.records[1]
    assert (school["published_at_raw"], school["published_at"]) == ("18 minutes ago", "2026-01-05T11:42:00Z")
