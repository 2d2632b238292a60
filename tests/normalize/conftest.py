"""Fixtures for the normalize tests: small fictional raw pages, and a helper that writes them,
normalises them and reads the outputs back (tests cannot import this module under
`--import-mode=importlib`, so everything is offered as a fixture)."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from newsstance.normalize.runner import Summary, run_normalize

CRAWL = "2026-03-14T09:30:00Z"


@dataclass
class Normalized:
    summary: Summary
    records: list[dict[str, Any]]
    quarantine: list[dict[str, Any]]
    out: Path

    def by_path(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.records if r["provenance"]["path"] == path]

    def reasons(self, path: str) -> list[str]:
        return [q["reason"] for q in self.quarantine if q["path"] == path]


def read_outputs(out: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    records = [
        orjson.loads(line) for shard in sorted(out.glob("articles-*.jsonl")) for line in shard.read_bytes().splitlines()
    ]
    quarantine_path = out / "quarantine.jsonl"
    quarantine = (
        [orjson.loads(line) for line in quarantine_path.read_bytes().splitlines()] if quarantine_path.exists() else []
    )
    return records, quarantine


def write_files(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return root


def normalize_files(tmp_path: Path, files: dict[str, str | bytes], **options: Any) -> Normalized:
    """Write `files` under tmp_path/raw, normalise into tmp_path/out, return what came out."""
    raw = write_files(tmp_path / "raw", files)
    out = tmp_path / "out"
    options.setdefault("crawl_time", CRAWL)
    summary = run_normalize([raw], out, **options)
    records, quarantine = read_outputs(out)
    return Normalized(summary, records, quarantine, out)


@pytest.fixture
def normalize(tmp_path: Path):
    def run(files: dict[str, str | bytes], **options: Any) -> Normalized:
        return normalize_files(tmp_path, files, **options)

    return run


# ---- fictional fixture pages (no third-party text) -------------------------------------------------------------

AGGREGATOR_PAGE = """
Harbour board approves new ferry pier at Quillon Bay
The Quillon Bay harbour board voted on Thursday to build a second ferry pier, ending a two-year dispute over the \
crowded waterfront.
Board chair Oda Fenwright said the pier would open next spring and cut waiting times for island residents by half.
Critics from the Bay Traders' Circle warned that construction would close the fish market for six weeks.
Hashtags
#QuillonBay #Ferries

Try Our AI Features
Explore what PulseWire AI can do for you:
Comments
No comments yet...
Related Articles


Marrow Coast Herald
18 minutes ago
- Marrow Coast Herald
Island school gets solar roof
Pupils at the Ostreva island school switched on a solar roof this week that will cover most of the building's \
power needs during the summer term, the head teacher said. The roof was paid for by a parents' raffle and a grant \
from the coastal council, which hopes other schools will follow the same model before the end of the


Quillon Evening Post
an hour ago
- Quillon Evening Post
Fishermen seek compensation for pier works
Fishermen in Quillon Bay have asked the harbour board for compensation during the pier works, saying the closure of \
the fish market will cost each crew about a month of income.
"""

HTML_PAGE = """<!DOCTYPE html>
<html lang="en-GB"><head><meta charset="utf-8">
<title>Lantern festival returns to Orrin Quay | The Orrin Lamp</title>
<link rel="canonical" href="https://www.orrinlamp.example/culture/lantern-festival-returns?utm_source=feed">
<meta property="og:site_name" content="The Orrin Lamp">
<meta property="og:title" content="Lantern festival returns to Orrin Quay">
<meta property="article:published_time" content="2026-03-12T19:15:00+01:00">
<meta name="author" content="Maren Slate">
</head><body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to give you the best experience on our site.</p>
<button>Accept all cookies</button></div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/culture">Culture</a></li>
<li><a href="/sport">Sport</a></li></ul></nav></header>
<main><article>
<h1>Lantern festival returns to Orrin Quay</h1>
<p class="byline">By Maren Slate</p>
<p>The Orrin Quay lantern festival will return this summer after a three-year break, the town council confirmed on
Wednesday, with more than two hundred paper boats expected on the river.</p>
<p>Organiser Tobin Ashgrove said volunteers had rebuilt the floating stage that was damaged in the winter floods
and that tickets would go on sale in April. 🏮 Families are asked to bring their own lanterns.</p>
<p>The council will close the quay road to traffic on both evenings of the festival.</p>
</article>
<aside class="most-read"><h2>Most read</h2><ol><li><a href="/a">Bridge repairs delayed again</a></li>
<li><a href="/b">Orrin market stall rents to rise</a></li></ol></aside>
</main>
<footer><p>© 2026 The Orrin Lamp. All rights reserved.</p><a href="/privacy">Privacy policy</a></footer>
</body></html>
"""

NEWSPLEASE_RECORD = {
    "title": "Glassworks in Penhallow to add forty jobs",
    "maintext": "The Penhallow glassworks will hire forty people this year after winning a contract for "
    "lighthouse lenses.\nManager Ivo Brandt said the new furnace would be lit in June.",
    "url": "https://penhallowdaily.example/business/glassworks-jobs",
    "date_publish": "2026-03-10 08:45:00",
    "date_download": "2026-03-13 21:05:00",
    "source_domain": "penhallowdaily.example",
    "authors": ["Ivo Brandt"],
    "language": "en",
    "description": None,
}

PLAIN_TEXT = """Library in Dunmere extends opening hours

Dunmere's public library will open until nine in the evening from next month, the town's culture office said.

The longer hours are funded by a bequest from a retired teacher who left her house to the library.
"""


@pytest.fixture(scope="session")
def pages() -> SimpleNamespace:
    """The fictional fixture pages above, plus the crawl time the `normalize` fixture uses."""
    return SimpleNamespace(
        aggregator=AGGREGATOR_PAGE, html=HTML_PAGE, newsplease=NEWSPLEASE_RECORD, plain=PLAIN_TEXT, crawl=CRAWL
    )


@pytest.fixture(scope="session")
def outputs():
    """`outputs(out_dir)` -> (records, quarantine entries)."""
    return read_outputs


@pytest.fixture
def file_tasks():
    """`make(root, pages, crawl)`: the pages (relative path -> text) written under `root`, as the
    `FileTask`s of a run with `--crawl-time crawl` (for tests that run the steps themselves)."""
    from newsstance.normalize.model import CrawlContext, FileTask

    def make(root: Path, pages: dict[str, str], crawl: Any) -> list[FileTask]:
        write_files(root, dict(pages))
        context = CrawlContext(crawl, "cli", crawl)
        return [FileTask(str(root / rel), rel, len(text.encode()), context) for rel, text in pages.items()]

    return make


_WORD = re.compile(r"[^\W_]+")


def _true_jaccard(a: str, b: str) -> float:
    """Jaccard of two texts' word 5-gram sets, with plain Python sets (what MinHash estimates)."""

    def grams(text: str) -> set[tuple[str, ...]]:
        words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
        return {tuple(words[i : i + 5]) for i in range(max(1, len(words) - 4))}

    left, right = grams(a), grams(b)
    return len(left & right) / len(left | right)


@pytest.fixture(scope="session")
def true_jaccard() -> Callable[[str, str], float]:
    return _true_jaccard
