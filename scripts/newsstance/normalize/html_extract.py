"""One HTML page -> its article: body text, headline, canonical URL, outlet, authors, date candidates.

The page is parsed once; the tree is shared by the metadata readers and the body extractor.

**Body**: trafilatura (`include_comments=False`, metadata off: its metadata pass, htmldate
included, cost more than the body extraction). Its output is *suspicious* when it leaves out
much of the page's prose: the text of `<p>` elements of at least `PROSE_BLOCK_WORDS` word units
outside nav/header/footer/aside/comment containers. Then readability-lxml extracts too, and its
text replaces trafilatura's when it covers at least `FALLBACK_GAIN` more of that prose *and* the
prose it recovers outweighs the non-prose text it adds (boxes, captions, link lists). That is the
case of bodies split by embedded blocks (a social post, a "Top stories" box), where trafilatura
sometimes keeps only the part before the block (see `benchmarks/html_bench.py`).

**Metadata** comes from the page's own declarations: `og:*`/`twitter:*` meta, JSON-LD
(`NewsArticle` and friends, `@graph` included), `<title>`, `<h1>`, `<time>`, `rel=canonical`.
htmldate runs only when the page declares no date at all.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from typing import TypeAlias

from lxml.html import HtmlElement

from newsstance.errors import EnvironmentProblem
from newsstance.normalize import titles, urls
from newsstance.normalize.dates import is_time_expression
from newsstance.normalize.decode import clean_inline, split_paragraphs
from newsstance.normalize.prose import has_prose, word_units

JsonLd: TypeAlias = dict[str, object]

PROSE_BLOCK_WORDS = 15  # a <p> this long is article prose unless it sits in page chrome
SUSPICIOUS_COVERAGE = 0.7  # trafilatura keeps less than this share of the page's prose ...
SUSPICIOUS_MISSING_CHARS = 300  # ... and leaves out at least this many characters of it
FALLBACK_GAIN = 0.2  # the second extractor must cover this much more of the prose to win

_META_DATE_XPATH = (
    "//meta[@property='article:published_time' or @property='og:published_time' "
    "or @name='article:published_time' or @itemprop='datePublished' or @name='pubdate' or @name='publishdate' "
    "or @name='publish-date' or @name='date' or @name='dc.date' or @name='DC.date.issued' "
    "or @name='parsely-pub-date' or @name='sailthru.date']/@content"
)
_CHROME_ANCESTORS = (
    "ancestor::nav or ancestor::header or ancestor::footer or ancestor::aside or ancestor::form "
    "or ancestor::*[contains(@class, 'comment') or contains(@id, 'comment')]"
)
_PROSE_XPATH = f"//p[not({_CHROME_ANCESTORS})]"
_ARTICLE_TYPES = frozenset(
    {
        "newsarticle",
        "article",
        "blogposting",
        "reportagenewsarticle",
        "analysisnewsarticle",
        "opinionnewsarticle",
        "reviewnewsarticle",
        "backgroundnewsarticle",
        "liveblogposting",
        "webpage",
        "scholarlyarticle",
        "techarticle",
    }
)
_LANG = re.compile(r"^([A-Za-z]{2,3})(?:[-_]([A-Za-z0-9]{2,8}))?$")
_NAME_PARTICLES = frozenset(
    {"de", "da", "del", "der", "den", "di", "du", "la", "le", "van", "von", "bin", "al", "el", "ibn", "y", "and"}
)
_BY = re.compile(r"^(?:by|von|par|por|di|door|av|af)\s+", re.I)
_YEAR_GUESS = re.compile(r"\d{4}-01-01T00:00:00")
_MIDNIGHT_GUESS = re.compile(r"\d{4}-\d{2}-\d{2}T00:00:00")
_SPACE = re.compile(r"\s+")


@dataclass(slots=True)
class HtmlArticle:
    title: str
    paragraphs: list[str]
    url: str | None = None
    source: str | None = None
    authors: list[str] = field(default_factory=list)
    language: str | None = None  # as declared by the markup (the text decides later)
    date_candidates: list[str] = field(default_factory=list)  # best source first
    repairs: list[str] = field(default_factory=list)
    extractor: str = "trafilatura"
    title_source: str | None = None


def _modules() -> tuple[object, object]:
    """trafilatura and lxml_html_clean (which trafilatura's jusText needs): a missing one stops the run."""
    try:
        import lxml_html_clean
        import trafilatura
    except ImportError as exc:
        raise EnvironmentProblem(
            f"HTML extraction needs the package {exc.name or exc} (pip install newsstance's dependencies): {exc}"
        ) from exc
    return trafilatura, lxml_html_clean


# --------------------------------------------------------------------------- metadata


def _json_ld(tree: HtmlElement) -> list[JsonLd]:
    import orjson

    found: list[JsonLd] = []

    def walk(value: object) -> None:
        if isinstance(value, list):
            for item in value:
                walk(item)
        elif isinstance(value, dict):
            found.append(value)
            graph = value.get("@graph")
            if graph is not None:
                walk(graph)

    for script in tree.xpath("//script[@type='application/ld+json']/text()"):
        try:
            walk(orjson.loads(str(script).strip()))
        except orjson.JSONDecodeError:
            continue
    return found


def _types(obj: JsonLd) -> set[str]:
    kind = obj.get("@type")
    kinds = kind if isinstance(kind, list) else [kind]
    return {k.casefold() for k in kinds if isinstance(k, str)}


def _names(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _names(item)
    elif isinstance(value, dict):
        name = value.get("name")
        if isinstance(name, str):
            yield name


def _first(tree: HtmlElement, xpath: str) -> str | None:
    for value in tree.xpath(xpath):
        text = clean_inline(value.text_content() if isinstance(value, HtmlElement) else str(value))
        if text:
            return text
    return None


def declared_language(tree: HtmlElement) -> str | None:
    values = tree.xpath(
        "/html/@lang | /html/@xml:lang | //meta[@http-equiv='content-language']/@content",
        namespaces={"xml": "http://www.w3.org/XML/1998/namespace"},
    )
    for value in values:
        match = _LANG.match(str(value).strip())
        if match:
            main, region = match.groups()
            return main.lower() + (f"-{region.upper() if len(region) == 2 else region}" if region else "")
    return None


def date_candidates(tree: HtmlElement, ld: list[JsonLd]) -> list[str]:
    """Every publication date the page declares, most trustworthy first (the caller skips impossible ones)."""
    found: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, str):
            text = clean_inline(value)
            if text and text not in found:
                found.append(text)

    for value in tree.xpath(_META_DATE_XPATH):
        add(str(value))
    for value in tree.xpath("//article//time/@datetime | //time[@itemprop='datePublished']/@datetime"):
        add(str(value))
    for obj in ld:
        if _types(obj) & _ARTICLE_TYPES:
            add(obj.get("datePublished"))
    for obj in ld:
        add(obj.get("datePublished"))
    for element in tree.xpath("//time"):
        # The machine-readable attribute carries the time of day and offset that the visible text often omits.
        stamp = clean_inline(element.get("datetime") or "")
        if stamp and is_time_expression(stamp):
            add(stamp)
        text = clean_inline(element.text_content())
        if is_time_expression(text):  # e.g. <time>3 days ago</time> in a byline
            add(text)
    return found


def _htmldate(tree: HtmlElement) -> str | None:
    """htmldate's guess, only for pages that declare no date (it is the costliest metadata step)."""
    from htmldate import find_date

    value = find_date(deepcopy(tree), extensive_search=False, original_date=True, outputformat="%Y-%m-%dT%H:%M:%S%z")
    if not value or _YEAR_GUESS.fullmatch(value):
        return None  # a bare year guess, often from a copyright line
    if _MIDNIGHT_GUESS.fullmatch(value):
        return value[:10]  # a day without a time of day: keep it day precision rather than claim 00:00
    return str(value)


def _looks_like_name(author: str) -> bool:
    """Bylines sometimes hold labels ("Press release", "Staff"): keep names, whose words are capitalised."""
    words = [w for w in author.split() if w.casefold() not in _NAME_PARTICLES]
    return bool(words) and all(w[:1].isupper() for w in words if w[:1].isalpha())


def authors(tree: HtmlElement, ld: list[JsonLd]) -> list[str]:
    raw: list[str] = []
    for obj in ld:
        if _types(obj) & _ARTICLE_TYPES:
            raw.extend(_names(obj.get("author")))
    raw.extend(
        str(v)
        for v in tree.xpath(
            "//meta[@name='author' or @name='article:author' or @property='article:author' or @name='byl']/@content"
        )
    )
    raw.extend(
        e.text_content()
        for e in tree.xpath(
            "//*[@rel='author'] | //*[@itemprop='author']//*[@itemprop='name'] | //*[@itemprop='author' and not(*)]"
        )
    )
    names: list[str] = []
    for value in raw:
        for part in re.split(r"\s*(?:;|,|\band\b|&)\s*", value):
            name = _BY.sub("", clean_inline(part))
            if name and "://" not in name and len(name.split()) <= 5 and _looks_like_name(name) and name not in names:
                names.append(name)
    return names


def site_names(tree: HtmlElement, ld: list[JsonLd]) -> list[str]:
    names = [
        clean_inline(str(v))
        for v in tree.xpath(
            "//meta[@property='og:site_name' or @name='application-name' or @name='og:site_name']/@content"
        )
    ]
    for obj in ld:
        names.extend(clean_inline(n) for n in _names(obj.get("publisher")))
        if _types(obj) & {"website", "newsmediaorganization", "organization"}:
            names.extend(clean_inline(n) for n in _names(obj))
    return [n for n in dict.fromkeys(names) if n]


def title_candidates(tree: HtmlElement, ld: list[JsonLd]) -> list[tuple[str, str | None]]:
    """Headline candidates, best first: og:title, JSON-LD headline, <title>, the article's <h1>."""
    headline = next(
        (obj.get("headline") for obj in ld if _types(obj) & _ARTICLE_TYPES and isinstance(obj.get("headline"), str)),
        None,
    )
    h1 = _first(tree, "(//article//h1 | //main//h1)[1]") or _first(tree, "(//h1)[1]")
    return [
        ("og:title", _first(tree, "//meta[@property='og:title' or @name='og:title']/@content")),
        ("json-ld", headline if isinstance(headline, str) else None),
        ("title", _first(tree, "(//title)[1]")),
        ("h1", h1),
        ("twitter:title", _first(tree, "//meta[@name='twitter:title' or @property='twitter:title']/@content")),
    ]


# --------------------------------------------------------------------------- body


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def prose_blocks(tree: HtmlElement) -> list[str]:
    """The page's paragraphs of running text outside page chrome (what an article body must contain)."""
    blocks = []
    for element in tree.xpath(_PROSE_XPATH):
        text = _norm(element.text_content())
        if text and word_units(text) >= PROSE_BLOCK_WORDS:
            blocks.append(text)
    return blocks


def coverage(text: str, blocks: list[str]) -> tuple[float, int]:
    """(share of the prose blocks' characters found in `text`, characters of prose not found)."""
    if not blocks:
        return 1.0, 0
    flat = _norm(text)
    total = sum(len(b) for b in blocks)
    missing = sum(len(b) for b in blocks if b not in flat)
    return (total - missing) / total, missing


def _trafilatura_text(tree: HtmlElement) -> str:
    from trafilatura import bare_extraction

    document = bare_extraction(tree, with_metadata=False, include_comments=False)
    text = getattr(document, "text", None)  # a Document (as_dict=False, the default)
    return text if isinstance(text, str) else ""


def _readability_text(tree: HtmlElement) -> str:
    from readability import Document

    from newsstance.normalize.readers.newsplease import html_to_lines

    summary = Document(deepcopy(tree)).summary(html_partial=True)
    return "\n".join(line for line in (_norm(x) for x in html_to_lines(summary).splitlines()) if line)


def second_is_better(primary: str, second: str, blocks: list[str]) -> bool:
    """Keep the second extractor's text when it covers `FALLBACK_GAIN` more of the page's prose and
    recovers more prose than the other text it adds (boxes, captions, link lists)."""
    share, missing = coverage(primary, blocks)
    second_share, second_missing = coverage(second, blocks)
    recovered = missing - second_missing
    added_other = max(0, len(_norm(second)) - len(_norm(primary)) - recovered)
    return second_share >= share + FALLBACK_GAIN and recovered > added_other


def choose_body(tree: HtmlElement) -> tuple[str, str]:
    """(body text, extractor name): trafilatura's, or readability's when trafilatura's is suspicious
    and readability's is better by the rule in the module docstring."""
    primary = _trafilatura_text(tree)
    blocks = prose_blocks(tree)
    share, missing = coverage(primary, blocks)
    if share >= SUSPICIOUS_COVERAGE or missing < SUSPICIOUS_MISSING_CHARS:
        return primary, "trafilatura"
    try:
        second = _readability_text(tree)
    except Exception:  # readability gives up on some odd trees: keep the first extractor's text
        return primary, "trafilatura"
    if second_is_better(primary, second, blocks):
        return second, "readability"
    return primary, "trafilatura"


# --------------------------------------------------------------------------- page


def parse_html(html: str, page_url: str | None = None, outlet: str | None = None) -> HtmlArticle | None:
    """The page's article, or None when no main text with a real sentence is found."""
    _modules()
    from trafilatura.utils import load_html

    tree = load_html(html)
    if tree is None:
        return None
    body, extractor = choose_body(tree)
    if not body:
        return None
    ld = _json_ld(tree)
    sites = site_names(tree, ld)
    url = urls.canonical_url(tree, page_url) or (urls.to_uri(page_url) if page_url else None)
    for obj in ld:
        if not url and _types(obj) & _ARTICLE_TYPES:
            for key in ("url", "mainEntityOfPage"):
                value = obj.get(key)
                value = value.get("@id") if isinstance(value, dict) else value
                if isinstance(value, str) and (resolved := urls.resolve(value, page_url)):
                    url = resolved
                    break
    keys = titles.outlet_keys([*sites, outlet], [url, page_url])
    title = titles.clean_title(title_candidates(tree, ld), keys)
    paragraphs = split_paragraphs(body)
    if title.title and paragraphs and clean_inline(paragraphs[0]) == title.title:
        paragraphs = paragraphs[1:]
    if not has_prose(paragraphs):
        return None
    dates = date_candidates(tree, ld)
    if not dates and (guess := _htmldate(tree)):
        dates.append(guess)
    return HtmlArticle(
        title=title.title,
        paragraphs=paragraphs,
        url=url,
        source=sites[0] if sites else None,
        authors=authors(tree, ld),
        language=declared_language(tree),
        date_candidates=dates,
        repairs=title.repairs,
        extractor=extractor,
        title_source=title.source,
    )
