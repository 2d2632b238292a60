"""Site chrome that an HTML extractor kept, removed without ever cutting the article.

Position decides what a phrase rule may remove:

- **Leading and trailing runs** (before the first and after the last paragraph of prose): every
  inline phrase ("Summary", "Sign up for ..."), every end phrase ("Related", "Read more: ...")
  and the end-of-article patterns below (newsletter promos, "Filed under: ...", tag lists,
  comment-policy notices, a bare URL, follow-us lines). These are what made complete pages look
  truncated.
- **Between paragraphs**: only lines that are chrome wherever they stand (ad labels, share
  buttons, a site's own `extra_phrases`), and never a list item or a sentence.

A line is never removed because it *contains* a phrase: rules match whole lines.
"""

from __future__ import annotations

import re

from newsstance.normalize.config import PHRASE_MATCH_MAX_WORDS, ChromeConfig
from newsstance.normalize.prose import SENTENCE_END, is_prose

TRAILER_MAX_WORDS = 60  # a promo or notice is a line or two, never a paragraph of reporting
_LIST_ITEM = re.compile(r"^(?:[-•·*▪◦‣–]\s|\d{1,2}[.)]\s)")
_TRAILING_PATTERNS = re.compile(
    r"""^(?:
        (?:filed|posted|published)\s+(?:under|in)\b
      | (?:tags?|topics?|tagged|tagged\s+with|categories|category|keywords|themen|schlagworte|mots-clés|etiquetas)\s*[:：]
      | (?:click|tap)\s+here\b
      | (?:sign\s+up|subscribe|register)\b.*\b(?:newsletter|inbox|email|updates|alerts|digest|briefing)\b
      | (?:get|receive)\b.*\b(?:newsletter|in\s+your\s+inbox|delivered\s+to\s+your\s+inbox)\b
      | (?:our|the)\s+\w+\s+newsletter\b
      | follow\s+(?:us|\w+(?:\s+\w+)?)\s+on\s+(?:twitter|x|facebook|instagram|linkedin|bluesky|threads|mastodon|tiktok|youtube)\b
      | (?:like\s+us|find\s+us)\s+on\s+facebook\b
      | comments?\b.{0,40}?\b(?:are|is|will\s+be)\s+(?:moderated|closed|disabled|open|reviewed|pre-moderated)\b
      | (?:we|please)\s+(?:welcome|encourage|ask)\b.*\bcomments?\b
      | comments?\s+(?:policy|guidelines)\b
      | (?:read|see)\s+our\s+(?:comment|community)\s+(?:policy|guidelines|standards)\b
      | by\s+commenting\b
      | to\s+comment\b.*\b(?:sign\s+in|log\s+in|subscribe|account)\b
      | (?:copyright|©)\s
      | all\s+rights\s+reserved\b
      | this\s+(?:article|story)\s+(?:was\s+)?(?:originally\s+)?(?:appeared|published|first\s+appeared)\b
      | (?:more|read\s+more|related)\s*[:：]
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_BARE_URL = re.compile(r"^(?:https?://|www\.)\S+$", re.IGNORECASE)
_TAG_LIST = re.compile(r"^[^.!?。！？]{1,200}$")


def is_list_item(line: str) -> bool:
    return bool(_LIST_ITEM.match(line))


def is_sentence(line: str) -> bool:
    """A line of running text: prose length and ends like a sentence (closing quotes looked through)."""
    core = line.rstrip().rstrip("\"'”’»)]")
    return bool(core) and core[-1] in SENTENCE_END and is_prose(line)


def _is_tag_list(line: str) -> bool:
    """ "Ferries · Harbour · Brindlemoor council" or "Ferries, Harbour, Council": short items, separators, no sentence."""
    if not _TAG_LIST.match(line):
        return False
    parts = [p.strip() for p in re.split(r"\s*[|·•,/]\s*", line) if p.strip()]
    return len(parts) >= 3 and all(len(p.split()) <= 4 for p in parts)


def is_trailing_chrome(line: str, chrome: ChromeConfig) -> bool:
    """Chrome when it stands after the last paragraph of the article (module docstring)."""
    words = len(line.split())
    if words <= PHRASE_MATCH_MAX_WORDS:
        lead = line.split(":", 1)[0] if ":" in line else line
        if chrome.is_phrase(line) or chrome.is_end(lead):
            return True
    if _BARE_URL.match(line.strip()):
        return True
    if words <= TRAILER_MAX_WORDS and _TRAILING_PATTERNS.match(line.strip()):
        return True
    return _is_tag_list(line)


def is_leading_chrome(line: str, chrome: ChromeConfig) -> bool:
    return len(line.split()) <= PHRASE_MATCH_MAX_WORDS and chrome.is_phrase(line) and not is_sentence(line)


def strip_body_chrome(paragraphs: list[str], chrome: ChromeConfig) -> list[str]:
    """`paragraphs` without chrome lines (module docstring); the article's own lines are kept."""
    start, end = 0, len(paragraphs)
    while start < end and is_leading_chrome(paragraphs[start], chrome):
        if start + 1 < end and is_list_item(paragraphs[start + 1]) and not chrome.is_anywhere(paragraphs[start]):
            break  # a heading of the article's own list ("Summary" above bullet points)
        start += 1
    while end > start and not is_sentence(paragraphs[end - 1]) and is_trailing_chrome(paragraphs[end - 1], chrome):
        end -= 1
    # A promo sentence ("Sign up for our newsletter to get ... every morning.") ends like a sentence:
    # trailing patterns may still remove it when it is the last line and names newsletters/comments.
    while (
        end > start and _TRAILING_PATTERNS.match(paragraphs[end - 1].strip()) and not _is_reporting(paragraphs[end - 1])
    ):
        end -= 1
        while end > start and not is_sentence(paragraphs[end - 1]) and is_trailing_chrome(paragraphs[end - 1], chrome):
            end -= 1
    body = paragraphs[start:end]
    return [
        p
        for p in body
        if p.count(" ") >= PHRASE_MATCH_MAX_WORDS or not chrome.is_anywhere(p) or is_list_item(p) or is_sentence(p)
    ]


def _is_reporting(line: str) -> bool:
    """Long enough to be a paragraph of the story rather than a promo or notice."""
    return len(line.split()) > TRAILER_MAX_WORDS
