"""Settings of the normalize stage: size limit, output sharding and the chrome phrase lists.

Site chrome differs per aggregator, so the phrases are data, not code: the defaults cover
common share/comment/promo blocks, and a YAML file (`--config chrome.yaml`) can replace or
extend them:

    chrome:
      extra_phrases: ["Listen to the podcast"]   # added to the inline defaults
      extra_end_phrases: ["More from Daily8"]    # added to the end-of-article defaults
      phrases: [...]                             # replaces the inline defaults
      end_phrases: [...]                         # replaces the end-of-article defaults
      max_words: 8                               # structural chrome: short lines without sentence punctuation
    default_language: en                         # only for texts too short to identify that declare nothing

A phrase matches a whole line, case-insensitively, ignoring trailing punctuation and counts
such as "Comments (3)"; `*` matches any text. Inline phrases are dropped wherever they
appear; an end phrase ("Comments", "Related Articles") ends the article body it follows.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import orjson

from newsstance.errors import UserError
from newsstance.records import read_yaml_mapping

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
DEFAULT_SHARD_SIZE = 50_000
DEFAULT_LANGUAGE: str | None = None  # the text decides; a too-short text without markup gets null

# Chrome even between two paragraphs of an article body (ad labels, share buttons).
DEFAULT_ANYWHERE_PHRASES: tuple[str, ...] = (
    "advertisement",
    "advertising",
    "ad",
    "sponsored",
    "sponsored content",
    "promoted",
    "share",
    "share this",
    "share this article",
    "share this story",
    "share on *",
    "share via *",
    "copy link",
    "facebook",
    "twitter",
    "x",
    "linkedin",
    "whatsapp",
    "telegram",
    "reddit",
    "listen to this article",
    "listen to this story",
    "skip advertisement",
    "advertisement - scroll to continue",
    "continue reading below",
    "story continues below advertisement",
    "article continues below",
)
# Chrome only at the body's edges: inside an article "Summary" or "Sign up for ..." can be a
# heading or a list item, so these are never removed from between two paragraphs.
DEFAULT_EDGE_PHRASES: tuple[str, ...] = (
    "print",
    "email",
    "e-mail",
    "listen",
    "ai summary",
    "summary",
    "try our ai features",
    "explore what * can do for you",
    "skip to content",
    "skip to main content",
    "menu",
    "home",
    "search",
    "close",
    "back to top",
    "load more",
    "show more",
    "see more",
    "follow us",
    "follow us on *",
    "subscribe",
    "subscribe now",
    "subscribe to *",
    "sign up",
    "sign up for *",
    "sign in",
    "log in",
    "newsletter",
    "get the app",
    "download the app",
    "download our app",
    "accept cookies",
    "accept all cookies",
    "manage cookies",
    "cookie settings",
    "we use cookies*",
    "privacy policy",
    "terms of service",
    "terms of use",
    "all rights reserved*",
    "copyright *",
    "© *",
)
# Dropped wherever they stand alone on a line at the body's edges (the union of the two).
DEFAULT_INLINE_PHRASES: tuple[str, ...] = DEFAULT_ANYWHERE_PHRASES + DEFAULT_EDGE_PHRASES
# End the article body they follow (everything after them up to the next article is chrome).
DEFAULT_END_PHRASES: tuple[str, ...] = (
    "hashtags",
    "tags",
    "topics",
    "comments",
    "comment",
    "no comments yet",
    "be the first to comment",
    "leave a comment",
    "add a comment",
    "show comments",
    "view comments",
    "join the conversation",
    "related",
    "related articles",
    "related stories",
    "related news",
    "related content",
    "related coverage",
    "read more",
    "read next",
    "read also",
    "see also",
    "more from *",
    "more stories",
    "more news",
    "most read",
    "most popular",
    "popular now",
    "trending",
    "trending now",
    "recommended",
    "recommended for you",
    "you may also like",
    "you might also like",
    "don't miss",
    "editor's picks",
    "latest news",
    "top stories",
)
DEFAULT_CHROME_MAX_WORDS = 8
# A phrase never matches a line longer than this: real paragraphs are long.
PHRASE_MATCH_MAX_WORDS = 15
INLINE, END = 1, 2
_CLASSIFY_CACHE_SIZE = 65536

_TRAILING_NOISE = re.compile(r"[\s.:;!?…|»›>\-–—]*(?:\(\d+\)|\d+)?[\s.:;!?…|»›>\-–—]*$")
_LEADING_NOISE = re.compile(r"^(?:[\s•·|»›>\-–—]+|\d+\s+)")


def normalise_chrome_line(line: str) -> str:
    """The comparable form of a line: case-folded, straight apostrophes, no bullets, counts or trailing punctuation
    ("0 comments", "Comments (3)" -> "comments")."""
    text = " ".join(line.replace("’", "'").replace("‘", "'").split()).casefold()
    return _TRAILING_NOISE.sub("", _LEADING_NOISE.sub("", text))


def _compile_phrases(phrases: tuple[str, ...]) -> re.Pattern[str] | None:
    alternatives = []
    for phrase in phrases:
        norm = normalise_chrome_line(phrase.replace("*", "\x00"))
        if not norm:
            continue
        alternatives.append(".*".join(re.escape(part) for part in norm.split("\x00")))
    if not alternatives:
        return None
    return re.compile("(?:" + "|".join(sorted(set(alternatives))) + ")", re.S)


@dataclass(frozen=True)
class ChromeConfig:
    """Phrase lists and the structural threshold for aggregator chrome."""

    phrases: tuple[str, ...] = DEFAULT_INLINE_PHRASES
    end_phrases: tuple[str, ...] = DEFAULT_END_PHRASES
    max_words: int = DEFAULT_CHROME_MAX_WORDS
    anywhere_phrases: tuple[str, ...] = DEFAULT_ANYWHERE_PHRASES

    @cached_property
    def _anywhere(self) -> re.Pattern[str] | None:
        return _compile_phrases(self.anywhere_phrases)

    def is_anywhere(self, line: str) -> bool:
        """Chrome even between two paragraphs of a body (ad labels, share buttons, a site's own extra phrases)."""
        if line.count(" ") >= PHRASE_MATCH_MAX_WORDS or self._anywhere is None:
            return False
        norm = normalise_chrome_line(line)
        return bool(norm) and self._anywhere.fullmatch(norm) is not None

    @cached_property
    def _inline(self) -> re.Pattern[str] | None:
        return _compile_phrases(self.phrases)

    @cached_property
    def _end(self) -> re.Pattern[str] | None:
        return _compile_phrases(self.end_phrases)

    @cached_property
    def _seen(self) -> dict[str, int]:
        return {}

    def classify(self, line: str) -> int:
        """0: not chrome, INLINE or END. Chrome lines repeat on every page of a site: cached."""
        if line.count(" ") >= PHRASE_MATCH_MAX_WORDS:
            return 0
        seen = self._seen
        kind = seen.get(line)
        if kind is None:
            norm = normalise_chrome_line(line)
            kind = 0
            if norm and self._end is not None and self._end.fullmatch(norm):
                kind = END
            elif norm and self._inline is not None and self._inline.fullmatch(norm):
                kind = INLINE
            if len(seen) >= _CLASSIFY_CACHE_SIZE:
                seen.clear()
            seen[line] = kind
        return kind

    def is_inline(self, line: str) -> bool:
        return self.classify(line) == INLINE

    def is_end(self, line: str) -> bool:
        return self.classify(line) == END

    def is_phrase(self, line: str) -> bool:
        return self.classify(line) != 0


@dataclass(frozen=True)
class NormalizeConfig:
    """Everything that changes what a raw file turns into (part of the cache key)."""

    chrome: ChromeConfig = field(default_factory=ChromeConfig)
    default_language: str | None = DEFAULT_LANGUAGE
    max_bytes: int = DEFAULT_MAX_BYTES

    def fingerprint(self) -> str:
        payload = {
            "phrases": list(self.chrome.phrases),
            "end_phrases": list(self.chrome.end_phrases),
            "max_words": self.chrome.max_words,
            "anywhere_phrases": list(self.chrome.anywhere_phrases),
            "default_language": self.default_language,
            "max_bytes": self.max_bytes,
        }
        return hashlib.sha256(orjson.dumps(payload)).hexdigest()[:16]


def _str_list(data: dict[str, Any], key: str, path: Path) -> tuple[str, ...] | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise UserError(f"{path}: chrome.{key} must be a list of strings")
    return tuple(value)


def load_config(path: Path | None, *, max_bytes: int = DEFAULT_MAX_BYTES) -> NormalizeConfig:
    """Read a chrome YAML (see module docstring); None gives the defaults."""
    if max_bytes <= 0:
        raise UserError(f"--max-bytes must be positive, got {max_bytes}")
    if path is None:
        return NormalizeConfig(max_bytes=max_bytes)
    data = read_yaml_mapping(path, "config", empty_ok=True)
    unknown = set(data) - {"chrome", "default_language"}
    if unknown:
        raise UserError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}")
    chrome_data = data.get("chrome") or {}
    if not isinstance(chrome_data, dict):
        raise UserError(f"{path}: chrome must be a mapping")
    unknown = set(chrome_data) - {"phrases", "end_phrases", "extra_phrases", "extra_end_phrases", "max_words"}
    if unknown:
        raise UserError(f"{path}: unknown chrome key(s) {', '.join(sorted(unknown))}")
    phrases = _str_list(chrome_data, "phrases", path) or DEFAULT_INLINE_PHRASES
    end_phrases = _str_list(chrome_data, "end_phrases", path) or DEFAULT_END_PHRASES
    extra = _str_list(chrome_data, "extra_phrases", path) or ()
    phrases += extra
    end_phrases += _str_list(chrome_data, "extra_end_phrases", path) or ()
    max_words = chrome_data.get("max_words", DEFAULT_CHROME_MAX_WORDS)
    if not isinstance(max_words, int) or max_words < 0:
        raise UserError(f"{path}: chrome.max_words must be a non-negative integer")
    language = data.get("default_language", DEFAULT_LANGUAGE)
    tag_shaped = isinstance(language, str) and re.fullmatch(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*", language)
    if language is not None and not tag_shaped:
        raise UserError(f"{path}: default_language must be a BCP-47 tag like 'en' or 'en-GB'")
    chrome = ChromeConfig(
        phrases=phrases,
        end_phrases=end_phrases,
        max_words=max_words,
        anywhere_phrases=DEFAULT_ANYWHERE_PHRASES + extra,  # a site's own phrases are its chrome wherever they stand
    )
    return NormalizeConfig(chrome=chrome, default_language=language, max_bytes=max_bytes)
