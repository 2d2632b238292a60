"""HTML pages through trafilatura: main text without nav, cookie banners, "most read" boxes
and footers; title, canonical URL, site name, authors and the publication time.

The date string is taken from the page's own metadata when present (so `published_at_raw`
is what the page says and its precision is knowable); trafilatura's date is the fallback.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from newsstance.normalize.config import PHRASE_MATCH_MAX_WORDS, ChromeConfig, NormalizeConfig
from newsstance.normalize.dates import is_time_expression
from newsstance.normalize.decode import clean_inline, join_paragraphs, split_paragraphs
from newsstance.normalize.model import Draft, Format, Quarantine, Reason, TextPage

_DATE_PARAMS = {"outputformat": "%Y-%m-%dT%H:%M:%S%z", "original_date": True}
_META_DATE_XPATH = (
    "//meta[@property='article:published_time' or @property='og:published_time' "
    "or @name='article:published_time' or @itemprop='datePublished' or @name='pubdate' or @name='publishdate' "
    "or @name='publish-date' or @name='date' or @name='dc.date' or @name='DC.date.issued' "
    "or @name='parsely-pub-date' or @name='sailthru.date']/@content"
)
_LD_DATE = re.compile(r'"datePublished"\s*:\s*"([^"]{4,40})"')
_YEAR_GUESS = re.compile(r"\d{4}-01-01T00:00:00")
_MIDNIGHT_GUESS = re.compile(r"\d{4}-\d{2}-\d{2}T00:00:00")
_NAME_PARTICLES = frozenset(
    {"de", "da", "del", "der", "den", "di", "du", "la", "le", "van", "von", "bin", "al", "el", "ibn", "y", "and"}
)
MIN_PROSE_WORDS = 6
_LANG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))?$")


@dataclass(slots=True)
class HtmlArticle:
    title: str
    paragraphs: list[str]
    url: str | None = None
    source: str | None = None
    authors: list[str] = field(default_factory=list)
    language: str | None = None
    published_raw: str | None = None


def _language(tree: Any) -> str | None:
    values = tree.xpath(
        "/html/@lang | /html/@xml:lang | //meta[@http-equiv='content-language']/@content",
        namespaces={"xml": "http://www.w3.org/XML/1998/namespace"},
    )
    for value in values:
        match = _LANG.match(value.strip())
        if match:
            primary, region = match.groups()
            return primary.lower() + (f"-{region.upper() if len(region) == 2 else region}" if region else "")
    return None


def _page_date(tree: Any, html: str) -> str | None:
    for value in tree.xpath(_META_DATE_XPATH):
        if value and value.strip():
            return clean_inline(value)
    for value in tree.xpath("//article//time/@datetime | //time[@itemprop='datePublished']/@datetime"):
        if value and value.strip():
            return clean_inline(value)
    match = _LD_DATE.search(html)
    if match:
        return clean_inline(match.group(1))
    for element in tree.xpath("//time"):
        # The machine-readable attribute carries the time of day and offset that the visible text often omits.
        stamp = clean_inline(element.get("datetime") or "")
        if stamp and is_time_expression(stamp):
            return stamp
        text = clean_inline(element.text_content())
        if is_time_expression(text):  # e.g. <time>3 days ago</time> in a byline
            return text
    return None


def _trafilatura_date(value: str | None) -> str | None:
    """trafilatura's date, unless it is a bare year guess (often from a copyright line): YYYY-01-01T00:00:00.
    A date found in text comes back as midnight without offset, which is a day, not a minute."""
    if not value or _YEAR_GUESS.fullmatch(value):
        return None
    if _MIDNIGHT_GUESS.fullmatch(value):
        return value[:10]  # a day without a time of day: keep it day precision rather than claim 00:00
    return value


def _looks_like_name(author: str) -> bool:
    """Bylines sometimes hold labels ("Press release", "Staff"): keep names, whose words are capitalised."""
    words = [w for w in author.split() if w.casefold() not in _NAME_PARTICLES]
    return bool(words) and all(w[:1].isupper() for w in words if w[:1].isalpha())


def _has_prose(paragraphs: list[str]) -> bool:
    """Navigation leftovers are short fragments; an article has at least one real sentence."""
    return any(len(p.split()) >= MIN_PROSE_WORDS for p in paragraphs)


def parse_html(html: str) -> HtmlArticle | None:
    """The page's article, or None when trafilatura finds no main text."""
    from trafilatura import bare_extraction
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return None
    language = _language(tree)
    page_date = _page_date(tree, html)
    document = bare_extraction(tree, with_metadata=True, include_comments=False, date_extraction_params=_DATE_PARAMS)
    if document is None or not document.text:
        return None
    title = clean_inline(document.title or "")
    paragraphs = split_paragraphs(document.text)
    if title and paragraphs and clean_inline(paragraphs[0]) == title:
        paragraphs = paragraphs[1:]
    if not _has_prose(paragraphs):
        return None
    authors = [clean_inline(a) for a in (document.author or "").split(";") if a.strip()]
    authors = [a for a in authors if _looks_like_name(a)]
    return HtmlArticle(
        title=title,
        paragraphs=paragraphs,
        url=document.url or None,
        source=clean_inline(document.sitename) if document.sitename else None,
        authors=authors,
        language=language,
        published_raw=page_date or _trafilatura_date(document.date),
    )


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


def read_html_page(page: TextPage, config: NormalizeConfig, stats: Counter[str]) -> Iterator[Draft | Quarantine]:
    """One standalone draft for the page's article, else a quarantine entry."""
    article = parse_html(page.text)
    if article is None:
        yield Quarantine(page.rel, page.sha256, Reason.NO_ARTICLE, "no main text found in the HTML")
        return
    paragraphs = strip_html_chrome(article.paragraphs, config.chrome)
    if not paragraphs:
        detail = "the HTML main text is only share/related/promo lines"
        yield Quarantine(page.rel, page.sha256, Reason.NO_ARTICLE, detail)
        return
    crawl = page.task.crawl
    yield Draft(
        page=page,
        format=Format.HTML,
        title=article.title,
        text=join_paragraphs(paragraphs),
        source=article.source or crawl.outlet,
        url=article.url or crawl.url,
        authors=list(article.authors),
        language=article.language or crawl.language or config.default_language,
        published_raw=article.published_raw,
        byte_start=0,
        byte_end=page.size,
    )
