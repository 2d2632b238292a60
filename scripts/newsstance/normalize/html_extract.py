"""One HTML page -> its article: body text, headline, canonical URL, outlet, authors, date candidates.

Cost (benchmarks/html_bench.py): lxml parses a page in ~0.1 ms, while trafilatura deep-copies a tree
it is handed, which costs more; so trafilatura gets the string and one tree of ours serves every
other reader: one walk over the few tags that carry metadata (`collect_facts`), not a dozen
whole-tree XPath scans, and no trafilatura/htmldate metadata pass.

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
from newsstance.normalize.prose import has_prose, is_prose, word_units

JsonLd: TypeAlias = dict[str, object]

PROSE_BLOCK_WORDS = 15  # a <p> this long is article prose unless it sits in page chrome
SUSPICIOUS_COVERAGE = 0.7  # trafilatura keeps less than this share of the page's prose ...
SUSPICIOUS_MISSING_CHARS = 300  # ... and leaves out at least this many characters of it
FALLBACK_GAIN = 0.2  # the second extractor must cover this much more of the prose to win

_CHROME_ANCESTORS = (
    "ancestor::nav or ancestor::header or ancestor::footer or ancestor::aside or ancestor::form "
    "or ancestor::*[contains(@class, 'comment') or contains(@id, 'comment')]"
)
_PROSE_XPATH = f"//p[not({_CHROME_ANCESTORS})]"
PROSE_BLOCK_MIN_CHARS = 20
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
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}")


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


_META_DATE_KEYS = (
    "article:published_time",
    "og:published_time",
    "datepublished",
    "pubdate",
    "publishdate",
    "publish-date",
    "date",
    "dc.date",
    "dc.date.issued",
    "parsely-pub-date",
    "sailthru.date",
)
_META_KEY_ATTRIBUTES = ("property", "name", "itemprop", "http-equiv")
_FACT_TAGS = ("meta", "link", "script", "time", "title", "h1")


@dataclass(slots=True)
class PageFacts:
    """What the page declares about itself, gathered in one walk over the few tags that hold it
    (one pass instead of a dozen `//` XPath scans of the whole tree)."""

    meta: dict[str, list[str]] = field(default_factory=dict)  # lower-cased name/property/itemprop -> contents
    canonical: list[str] = field(default_factory=list)
    ld: list[JsonLd] = field(default_factory=list)
    times: list[HtmlElement] = field(default_factory=list)
    title: str | None = None
    h1: list[tuple[str, bool]] = field(default_factory=list)  # (text, inside <article>/<main>)
    author_links: list[str] = field(default_factory=list)
    lang: list[str] = field(default_factory=list)

    def first_meta(self, *keys: str) -> str | None:
        for key in keys:
            for value in self.meta.get(key, ()):
                text = clean_inline(value)
                if text:
                    return text
        return None


def _walk_ld(value: object, found: list[JsonLd]) -> None:
    if isinstance(value, list):
        for item in value:
            _walk_ld(item, found)
    elif isinstance(value, dict):
        found.append(value)
        graph = value.get("@graph")
        if graph is not None:
            _walk_ld(graph, found)


def collect_facts(tree: HtmlElement) -> PageFacts:
    import orjson

    facts = PageFacts()
    root_lang = tree.get("lang") or tree.get("{http://www.w3.org/XML/1998/namespace}lang")
    if root_lang:
        facts.lang.append(root_lang)
    for element in tree.iter(*_FACT_TAGS):
        tag = element.tag
        if tag == "meta":
            content = element.get("content")
            if content is None:
                continue
            for attribute in _META_KEY_ATTRIBUTES:
                key = element.get(attribute)
                if key:
                    facts.meta.setdefault(key.strip().lower(), []).append(content)
        elif tag == "link":
            rel = (element.get("rel") or "").lower().split()
            if "canonical" in rel and element.get("href"):
                facts.canonical.append(element.get("href") or "")
            elif "author" in rel:
                facts.author_links.append(element.text_content())
        elif tag == "script":
            if (element.get("type") or "").strip().lower() == "application/ld+json" and element.text:
                try:
                    _walk_ld(orjson.loads(element.text.strip()), facts.ld)
                except orjson.JSONDecodeError:
                    continue
        elif tag == "time":
            facts.times.append(element)
        elif tag == "title":
            if facts.title is None:
                facts.title = clean_inline(element.text_content())
        elif tag == "h1":
            inside = any(a.tag in ("article", "main") for a in element.iterancestors())
            facts.h1.append((clean_inline(element.text_content()), inside))
    # links are many: let libxml2 find the few rel=author ones
    facts.author_links.extend(a.text_content() for a in tree.xpath("//a[contains(@rel, 'author')]"))
    return facts


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


def declared_language(facts: PageFacts) -> str | None:
    for value in [*facts.lang, *facts.meta.get("content-language", [])]:
        match = _LANG.match(value.strip())
        if match:
            main, region = match.groups()
            return main.lower() + (f"-{region.upper() if len(region) == 2 else region}" if region else "")
    return None


def date_candidates(facts: PageFacts) -> list[str]:
    """The publication dates the page declares in markup (meta, <time datetime>, JSON-LD), most
    trustworthy first; the caller skips impossible ones. The visible text of <time> elements is read
    only when no declared date can be true (it needs dateparser, the slowest step of the page)."""
    found: list[str] = []

    def add(value: object) -> None:
        if isinstance(value, str):
            text = clean_inline(value)
            if text and text not in found:
                found.append(text)

    for key in _META_DATE_KEYS:
        for value in facts.meta.get(key, ()):
            add(value)
    for element in facts.times:
        if element.get("itemprop") == "datePublished" or any(a.tag == "article" for a in element.iterancestors()):
            add(element.get("datetime"))
    for obj in facts.ld:
        if _types(obj) & _ARTICLE_TYPES:
            add(obj.get("datePublished"))
    for obj in facts.ld:
        add(obj.get("datePublished"))
    for element in facts.times:
        add(element.get("datetime"))
    if any(could_be_true(value) for value in found):
        return found
    for element in facts.times:
        text = clean_inline(element.text_content())
        if is_time_expression(text):  # e.g. <time>3 days ago</time> in a byline
            add(text)
    return found


def could_be_true(raw: str) -> bool:
    """A machine-readable stamp that is not a placeholder (the crawl-time bound is checked later)."""
    from datetime import UTC, datetime

    from newsstance.normalize.dates import implausible, resolve

    far_future = datetime(9000, 1, 1, tzinfo=UTC)
    published, _ = resolve(raw, far_future) if _STAMP.match(raw) else (None, None)
    return published is not None and implausible(published, far_future) is None


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


def authors(facts: PageFacts) -> list[str]:
    raw: list[str] = []
    for obj in facts.ld:
        if _types(obj) & _ARTICLE_TYPES:
            raw.extend(_names(obj.get("author")))
    for key in ("author", "article:author", "byl"):
        raw.extend(facts.meta.get(key, ()))
    raw.extend(facts.author_links)
    names: list[str] = []
    for value in raw:
        for part in re.split(r"\s*(?:;|,|\band\b|&)\s*", value):
            name = _BY.sub("", clean_inline(part))
            if name and "://" not in name and len(name.split()) <= 5 and _looks_like_name(name) and name not in names:
                names.append(name)
    return names


def site_names(facts: PageFacts) -> list[str]:
    names = [clean_inline(v) for key in ("og:site_name", "application-name") for v in facts.meta.get(key, ())]
    for obj in facts.ld:
        names.extend(clean_inline(n) for n in _names(obj.get("publisher")))
        if _types(obj) & {"website", "newsmediaorganization", "organization"}:
            names.extend(clean_inline(n) for n in _names(obj))
    return [n for n in dict.fromkeys(names) if n]


def title_candidates(facts: PageFacts) -> list[tuple[str, str | None]]:
    """Headline candidates, best first: og:title, JSON-LD headline, <title>, the article's <h1>."""
    headline = next(
        (
            obj.get("headline")
            for obj in facts.ld
            if _types(obj) & _ARTICLE_TYPES and isinstance(obj.get("headline"), str)
        ),
        None,
    )
    h1 = next((text for text, inside in facts.h1 if inside and text), None) or next((t for t, _ in facts.h1 if t), None)
    return [
        ("og:title", facts.first_meta("og:title")),
        ("json-ld", headline if isinstance(headline, str) else None),
        ("title", facts.title),
        ("h1", h1),
        ("twitter:title", facts.first_meta("twitter:title")),
    ]


# --------------------------------------------------------------------------- body


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def prose_blocks(tree: HtmlElement) -> list[str]:
    """The page's paragraphs of running text outside page chrome (what an article body must contain)."""
    blocks = []
    for element in tree.xpath(_PROSE_XPATH):
        raw = element.text_content()
        if len(raw) < PROSE_BLOCK_MIN_CHARS:
            continue  # too short to hold PROSE_BLOCK_WORDS word units in any script
        text = _norm(raw)
        if word_units(text) >= PROSE_BLOCK_WORDS:
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


def _trafilatura_text(html: str, fast: bool = True) -> str:
    from trafilatura import bare_extraction

    # The string, not our tree: trafilatura deep-copies a tree it is given, which costs more than parsing
    # the page again (measured: benchmarks/html_bench.py).
    # fast=True skips trafilatura's own readability/jusText comparison: `choose_body` runs a fallback
    # only where the output is suspicious, which costs less than comparing on every page.
    document = bare_extraction(html, with_metadata=False, include_comments=False, fast=fast)
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


def choose_body(tree: HtmlElement, html: str) -> tuple[str, str]:
    """(body text, extractor name): trafilatura's, or readability's when trafilatura's is suspicious
    and readability's is better by the rule in the module docstring."""
    primary = _trafilatura_text(html)
    if not has_prose(split_paragraphs(primary)):
        # nothing usable: trafilatura's full mode (its own fallbacks), then readability, before giving up;
        # a rescue must hold a real paragraph (a cookie notice or "Page not found" is no article)
        for name, rescue in (
            ("trafilatura", lambda: _trafilatura_text(html, fast=False)),
            ("readability", lambda: _readability_text(tree)),
        ):
            try:
                text = rescue()
            except Exception:  # readability gives up on some odd trees
                continue
            if any(is_prose(p, PROSE_BLOCK_WORDS) for p in split_paragraphs(text)):
                return text, name
        return primary, "trafilatura"
    if primary.count("\n") + 1 >= SUSPICIOUS_COVERAGE * tree.xpath(f"count({_PROSE_XPATH})"):
        return primary, "trafilatura"  # as many lines as the page has paragraphs: no need to read them
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
    body, extractor = choose_body(tree, html)
    if not body:
        return None
    facts = collect_facts(tree)
    sites = site_names(facts)
    og_urls = [v for key in ("og:url", "twitter:url") for v in facts.meta.get(key, ())]
    url = urls.canonical_url([*facts.canonical, *og_urls], page_url)
    for obj in facts.ld:
        if not url and _types(obj) & _ARTICLE_TYPES:
            for key in ("url", "mainEntityOfPage"):
                value = obj.get(key)
                value = value.get("@id") if isinstance(value, dict) else value
                if isinstance(value, str) and (resolved := urls.resolve(value, page_url)):
                    url = resolved
                    break
    url = url or (urls.to_uri(page_url) if page_url else None)
    keys = titles.outlet_keys([*sites, outlet], [url, page_url])
    title = titles.clean_title(title_candidates(facts), keys)
    paragraphs = split_paragraphs(body)
    if title.title and paragraphs and clean_inline(paragraphs[0]) == title.title:
        paragraphs = paragraphs[1:]
    if not has_prose(paragraphs):
        return None
    dates = date_candidates(facts)
    if not dates and (guess := _htmldate(tree)):
        dates.append(guess)
    return HtmlArticle(
        title=title.title,
        paragraphs=paragraphs,
        url=url,
        source=sites[0] if sites else None,
        authors=authors(facts),
        language=declared_language(facts),
        date_candidates=dates,
        repairs=title.repairs,
        extractor=extractor,
        title_source=title.source,
    )
