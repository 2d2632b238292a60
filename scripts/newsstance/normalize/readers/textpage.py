"""Plain-text pages: aggregator scrapes (a main article, chrome, related-article blocks) and
plain articles (a title line and a body).

An aggregator page looks like

    Title of the main article
    paragraph ...                      <- one line per paragraph
    Hashtags / Comments / ...          <- chrome: phrase list + short lines without punctuation
    Related Articles

    Outlet                             <- related block header: [outlet line]
    18 minutes ago                     <-   a date or relative time
    - Outlet                           <-   "- Outlet" (the time may also follow this line)
    Title of the related article
    body, often cut or spliced

Related blocks are found by structure (a time line next to a "- Outlet" line; also a one-line
"5 hours ago · Outlet" header, or an "Outlet" line over a time line that opens a block), so any
site using such a layout works; chrome is removed by the configurable phrase lists plus a
structural rule (short lines without sentence punctuation at the end of an article).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from itertools import islice

from newsstance.normalize.config import ChromeConfig, NormalizeConfig
from newsstance.normalize.dates import is_time_expression
from newsstance.normalize.decode import clean_inline, clean_paragraph, join_paragraphs
from newsstance.normalize.model import Draft, Format, Quarantine, Reason, TextPage

_DASH_OUTLET = re.compile(r"^[-–—•]\s+(\S.{0,79})$")
# A one-line block header: "5 hours ago · Outlet" or "Outlet · 5 hours ago" (also with "|" or "•").
_INLINE_HEADER = re.compile(r"^(\S.{0,79}?)\s+[·•|–—]\s+(\S.{0,79})$")
# Lines above which a one-line "who · when" line is the page's own byline, not a related-block header.
BYLINE_ZONE = 2
OUTLET_MAX_WORDS = 6
# A pure byline: "By" and one to three names (capitalised words) joined by commas, "and" or "&".
# A line with a role ("By Ana Lind, president of ...") is part of the text.
_NAME = r"[A-Z][\w'’.-]*(?:\s+[A-Z][\w'’.-]*){0,3}"
_BYLINE = re.compile(rf"^[Bb]y\s+({_NAME}(?:\s*(?:,|\band\b|&)\s*{_NAME}){{0,2}})$")
_BARE_NAMES = re.compile(rf"^{_NAME}(?:\s*(?:,|\band\b|&)\s*{_NAME}){{0,2}}$")
_AUTHOR_SPLIT = re.compile(r"\s*(?:,|\band\b|&)\s*")
_MARKDOWN_HEADING = re.compile(r"^#{1,6}\s+(?=\S)")
_SENTENCE_END = re.compile(r"[.!?][\"'”’»)\]]*$")
TITLE_MAX_CHARS = 300
WRAP_MAX_LINE = 100
PROMO_MAX_WORDS = 15


@dataclass(slots=True)
class TextArticle:
    """An article found on a text page (line numbers are 1-based, inclusive)."""

    title: str
    paragraphs: list[str]
    role: str
    source: str | None = None
    published_raw: str | None = None
    authors: list[str] = field(default_factory=list)
    line_start: int = 1
    line_end: int = 1


@dataclass(slots=True)
class TextPageResult:
    format: Format
    articles: list[TextArticle]
    chrome_lines: int = 0
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class _Header:
    start: int  # first header line
    end: int  # last header line
    outlet: str
    time: str


def _title(line: str) -> str:
    """A title line, without a Markdown heading marker ("# Title")."""
    return _MARKDOWN_HEADING.sub("", clean_inline(line), count=1)


def _same_outlet(line: str, outlet: str) -> bool:
    return clean_inline(line).casefold() == outlet.casefold()


def _inline_header(line: str) -> tuple[str, str] | None:
    """(outlet, time) of a one-line header such as "5 hours ago · Outlet" or "Outlet | Mar 14, 2026"."""
    match = _INLINE_HEADER.match(line)
    if not match:
        return None
    left, right = clean_inline(match.group(1)), clean_inline(match.group(2))
    if is_time_expression(left) and not is_time_expression(right):
        return right, left
    if is_time_expression(right) and not is_time_expression(left):
        return left, right
    return None


def _nonblank_before(lines: list[str], index: int) -> int:
    """How many non-blank lines precede `index` (counting stops past the byline zone)."""
    count = 0
    for line in islice(lines, index):  # no slice copy: called for many lines of long pages
        if line:
            count += 1
            if count > BYLINE_ZONE:
                break
    return count


def _is_two_line_header(lines: list[str], index: int) -> bool:
    """An "Outlet" line, then a time line, then a title, opening a block (after a blank line or a heading such
    as "Related:"), outside the byline zone under the page title, and not the "- Outlet" layout."""
    line = lines[index]
    if (
        index + 2 >= len(lines)
        or not lines[index + 2]
        or len(line.split()) > OUTLET_MAX_WORDS
        or _SENTENCE_END.search(line)
        or _BYLINE.match(line)
        or _DASH_OUTLET.match(lines[index + 2])
        or _same_outlet(lines[index + 2], clean_inline(line))
    ):
        return False
    if index > 0 and lines[index - 1] and _SENTENCE_END.search(lines[index - 1]):
        return False
    if 0 < _nonblank_before(lines, index) <= BYLINE_ZONE:
        return False
    return (
        is_time_expression(lines[index + 1])
        and not is_time_expression(line)
        and not is_time_expression(lines[index + 2])
    )


def find_headers(lines: list[str]) -> list[_Header]:
    """Related-block headers: a "- Outlet" line with a time line just above or below it, a one-line
    "Outlet · time" line, or an "Outlet" line over a time line at the start of a block."""
    headers: list[_Header] = []
    last_end = -1
    for index, line in enumerate(lines):
        if index <= last_end or not line:
            continue
        inline = _inline_header(line) if not 0 < _nonblank_before(lines, index) <= BYLINE_ZONE else None
        if inline is not None and not _BYLINE.match(inline[0]):
            outlet, time_line = inline
            headers.append(_Header(index, index, outlet, time_line))
            last_end = index
            continue
        if line[0] not in "-–—•":
            if _is_two_line_header(lines, index):
                headers.append(_Header(index, index + 1, clean_inline(line), clean_inline(lines[index + 1])))
                last_end = index + 1
            continue
        match = _DASH_OUTLET.match(line)
        if not match:
            continue
        outlet = clean_inline(match.group(1))
        if index > 0 and is_time_expression(lines[index - 1]):
            start, end, time_line = index - 1, index, lines[index - 1]
        elif index + 1 < len(lines) and is_time_expression(lines[index + 1]):
            start, end, time_line = index, index + 1, lines[index + 1]
        else:
            continue
        if start > 0 and start - 1 > last_end and _same_outlet(lines[start - 1], outlet):
            start -= 1
        headers.append(_Header(start, end, outlet, clean_inline(time_line)))
        last_end = end
    return headers


def _is_short_fragment(line: str, max_words: int) -> bool:
    """Structural chrome: a short line that is not a sentence ("Share", "#Ukraine #Talks", "Explore ...:")."""
    return len(line.split()) <= max_words and not _SENTENCE_END.search(line)


class _Cleaner:
    """Chrome removal for one article region (a list of (line number, text) pairs)."""

    def __init__(self, chrome: ChromeConfig):
        self.chrome = chrome
        self.removed = 0

    def body(self, numbered: list[tuple[int, str]], *, structural: bool) -> list[tuple[int, str]]:
        """1. an end phrase ("Comments", "Related Articles") after some content ends the body;
        2. (structural) the tail is stripped of chrome lines: phrases, short fragments without sentence
           punctuation, and short promo sentences sandwiched between chrome lines ("Sign up for our
           newsletter" / "Get the briefing in your inbox." / "0 comments");
        3. inline phrases ("Advertisement", "Share") are dropped anywhere."""
        lines = [(n, line) for n, line in numbered if line]
        cut = False
        seen_content = False
        for position, (_, line) in enumerate(lines):
            if seen_content and self.chrome.is_end(line):
                self.removed += len(lines) - position
                lines, cut = lines[:position], True
                break
            seen_content = seen_content or not self.chrome.is_phrase(line)
        if structural:
            end, below_is_chrome = len(lines), cut
            while end > 1:
                line = lines[end - 1][1]
                promo = (
                    below_is_chrome
                    and len(line.split()) <= PROMO_MAX_WORDS
                    and self.chrome.is_phrase(lines[end - 2][1])
                )
                if not (self.chrome.is_phrase(line) or _is_short_fragment(line, self.chrome.max_words) or promo):
                    break
                end, below_is_chrome = end - 1, True
            self.removed += len(lines) - end
            lines = lines[:end]
        kept = [(n, line) for n, line in lines if not self.chrome.is_phrase(line)]
        self.removed += len(lines) - len(kept)
        return kept


def _is_wrapped(block: list[str]) -> bool:
    """Hard-wrapped prose: medium-length lines that mostly stop mid-sentence."""
    if len(block) < 2 or any(len(line) > WRAP_MAX_LINE for line in block):
        return False
    open_ended = sum(1 for line in block[:-1] if not _SENTENCE_END.search(line))
    return open_ended * 2 > len(block) - 1


def _paragraphs(numbered: list[tuple[int, str]], blank_separated: bool) -> list[str]:
    """One paragraph per line, except in text laid out in blank-line separated blocks, where a
    hard-wrapped block's lines are joined into one paragraph."""
    if not blank_separated:
        return [p for p in (clean_paragraph(line) for _, line in numbered) if p]
    blocks: list[list[str]] = []
    previous = None
    for number, line in numbered:
        if previous is None or number != previous + 1:
            blocks.append([])
        blocks[-1].append(line)
        previous = number
    paragraphs: list[str] = []
    for block in blocks:
        paragraphs.extend([" ".join(block)] if _is_wrapped(block) else block)
    return [p for p in (clean_paragraph(p) for p in paragraphs) if p]


def _take_meta_lines(numbered: list[tuple[int, str]], article: TextArticle) -> list[tuple[int, str]]:
    """Byline, time and "- Outlet" lines right under a main title become metadata."""
    taken = 0
    for position, (_, line) in enumerate(numbered[:3]):
        text = clean_inline(line)
        following = clean_inline(numbered[position + 1][1]) if position + 1 < len(numbered) else ""
        if article.published_raw is None and is_time_expression(text):
            article.published_raw = text
        elif article.published_raw is None and (inline := _inline_header(text)):
            who, article.published_raw = inline  # "By Ana Lind · 5 hours ago" or "Outlet | March 14, 2026"
            if byline := _BYLINE.match(who):
                article.authors = article.authors or [a for a in _AUTHOR_SPLIT.split(byline.group(1)) if a]
            elif article.source is None:
                article.source = who
        elif not article.authors and (byline := _BYLINE.match(text)):
            article.authors = [a for a in _AUTHOR_SPLIT.split(byline.group(1)) if a]
        elif article.source is None and (dash := _DASH_OUTLET.match(text)):
            article.source = clean_inline(dash.group(1))
        elif (
            not article.authors
            and article.published_raw is None
            and _BARE_NAMES.match(text)
            and is_time_expression(following)
        ):
            article.authors = [a for a in _AUTHOR_SPLIT.split(text) if a]  # "Ana Lind" over "5 hours ago"
        else:
            break
        taken += 1
    return numbered[taken:]


def parse_text_page(text: str, chrome: ChromeConfig) -> TextPageResult:
    """Split a text page into articles; an empty `articles` list means nothing was extractable."""
    lines = [line.strip() for line in text.split("\n")]
    headers = find_headers(lines)
    cleaner = _Cleaner(chrome)
    blank_separated = "\n\n" in text.strip()
    result = TextPageResult(Format.PLAINTEXT, [])

    main_end = headers[0].start if headers else len(lines)
    region = [(n + 1, line) for n, line in enumerate(lines[:main_end]) if line]
    while region and chrome.is_phrase(region[0][1]):
        region.pop(0)
        cleaner.removed += 1
    blocks = list(headers)
    main: TextArticle | None = None
    if region:
        title_number, title_line = region[0]
        main = TextArticle(
            title=_title(title_line), paragraphs=[], role="standalone", line_start=title_number, line_end=title_number
        )
        has_chrome = bool(headers) or any(chrome.is_end(line) for _, line in region[1:])
        body = cleaner.body(_take_meta_lines(region[1:], main), structural=has_chrome)
        main.paragraphs = _paragraphs(body, blank_separated)
        if body:
            main.line_end = body[-1][0]
    elif blocks:
        # The page opens with a block header: that block is the page's own article.
        first = blocks.pop(0)
        main = _block_article(
            lines,
            first,
            headers[1].start if len(headers) > 1 else len(lines),
            cleaner,
            blank_separated,
            role="standalone",
        )

    if main is not None and (not main.paragraphs or len(main.title) > TITLE_MAX_CHARS):
        result.notes.append(
            "the first line is too long to be a title"
            if len(main.title) > TITLE_MAX_CHARS
            else "a title line without a body"
        )
        main = None
    if main is not None:
        result.articles.append(main)

    for index, header in enumerate(blocks):
        end = blocks[index + 1].start if index + 1 < len(blocks) else len(lines)
        article = _block_article(lines, header, end, cleaner, blank_separated, role="related")
        if article is not None and article.paragraphs:
            result.articles.append(article)
        else:
            result.notes.append("a related block without a body")

    is_aggregator = bool(headers) or cleaner.removed >= 2
    result.format = Format.AGGREGATOR if is_aggregator else Format.PLAINTEXT
    if main is not None and any(a.role == "related" for a in result.articles):
        main.role = "main"
    result.chrome_lines = cleaner.removed
    return result


def _block_article(
    lines: list[str], header: _Header, end: int, cleaner: _Cleaner, blank_separated: bool, role: str
) -> TextArticle | None:
    numbered = [(n + 1, lines[n]) for n in range(header.end + 1, end) if lines[n]]
    while numbered and cleaner.chrome.is_phrase(numbered[0][1]):
        numbered.pop(0)
        cleaner.removed += 1
    if not numbered:
        return None
    title_number, title_line = numbered[0]
    body = cleaner.body(numbered[1:], structural=True)
    article = TextArticle(
        title=_title(title_line),
        paragraphs=_paragraphs(body, blank_separated),
        role=role,
        source=header.outlet,
        published_raw=header.time,
        line_start=header.start + 1,
        line_end=body[-1][0] if body else title_number,
    )
    return article


def read_text_page(page: TextPage, config: NormalizeConfig, stats: Counter[str]) -> Iterator[Draft | Quarantine]:
    """The page's articles as drafts (main and related blocks, or one standalone), else a quarantine entry."""
    result = parse_text_page(page.text, config.chrome)
    for note in result.notes:
        stats[f"skipped: {note}"] += 1
    if not result.articles:
        detail = "; ".join(result.notes) or "no title line followed by a body"
        yield Quarantine(page.rel, page.sha256, Reason.NO_ARTICLE, detail)
        return
    crawl = page.task.crawl
    main_position = next((i for i, a in enumerate(result.articles) if a.role == "main"), None)
    for position, article in enumerate(result.articles):
        own = article.role != "related"
        yield Draft(
            page=page,
            format=result.format,
            title=article.title,
            text=join_paragraphs(article.paragraphs),
            role=article.role,
            source=article.source or (crawl.outlet if own else None),
            url=crawl.url if own else None,
            authors=list(article.authors),
            language=crawl.language,
            published_raw=article.published_raw,
            position=position,
            main_position=main_position if article.role == "related" else None,
            line_start=article.line_start,
            line_end=article.line_end,
        )
