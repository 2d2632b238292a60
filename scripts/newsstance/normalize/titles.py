"""Headlines without the site's name and without invisible characters.

`<title>` usually reads "Ferry returns after ten years | The Brindlemoor Courier" or
"Courier - Ferry returns ...", while `source` already holds the outlet. A segment is dropped
when it names the outlet (the site name, the outlet passed in, or the page's domain, compared
case- and punctuation-insensitively). A title that is nothing but the outlet's name is no
headline: the next candidate (`og:title`, JSON-LD headline, `<h1>`) is used instead.

Bidirectional controls (U+202A-202E, U+2066-2069, U+200E/U+200F) can reorder what a reader sees
("Trojan Source"): they are removed and reported. A title of only zero-width/format characters
is invisible and counts as no title at all.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

BIDI_CONTROLS = re.compile("[\u200e\u200f\u202a-\u202e\u2066-\u2069]")
# Separators between a headline and a site name, spaced (so "e-mail" or "3-2" are never split).
_SEPARATOR = re.compile(r"\s*[|｜]\s*|\s+(?:[•·»«–—:]|-{1,2}|::|/)\s+")
_NON_ALNUM = re.compile(r"[\W_]+")
_DOMAIN_NOISE = ("www.", "m.", "amp.", "edition.", "news.")
_GENERIC_SUFFIXES = ("news", "online", "daily", "com", "net", "org", "co", "uk", "the")


@dataclass(slots=True)
class TitleResult:
    title: str  # "" when no candidate is a visible headline
    repairs: list[str] = field(default_factory=list)  # "title_bidi_controls", "title_site_name"
    source: str | None = None  # which candidate won


def remove_bidi(text: str) -> tuple[str, bool]:
    """`text` without bidirectional controls (whitespace collapsed); (text, whether any were removed)."""
    if not BIDI_CONTROLS.search(text):
        return text, False
    return " ".join(BIDI_CONTROLS.sub("", text).split()), True


def is_invisible(text: str) -> bool:
    """Nothing a reader can see: only whitespace, format (Cf), control or combining marks."""
    return not any(
        not ch.isspace() and unicodedata.category(ch)[0] not in ("C", "M") and unicodedata.category(ch) != "Zs"
        for ch in text
    )


def _key(text: str) -> str:
    return _NON_ALNUM.sub("", unicodedata.normalize("NFKC", text).casefold())


def outlet_keys(names: Iterable[str | None], urls: Iterable[str | None] = ()) -> set[str]:
    """Comparable forms of the outlet: its names and its domains ("www.the-courier.example" -> "thecourier")."""
    keys = {_key(name) for name in names if name and _key(name)}
    for url in urls:
        host = (urlsplit(url).hostname or "") if url else ""
        for prefix in _DOMAIN_NOISE:
            host = host.removeprefix(prefix)
        label = host.split(".")[0] if host else ""
        if label and len(label) >= 3:
            keys.add(_key(label))
    return {k for k in keys if len(k) >= 2}


def names_outlet(segment: str, keys: set[str]) -> bool:
    """Does this title segment name the outlet (allowing "The", ".com", "News", "Online" around it)?"""
    key = _key(segment)
    if not key or not keys:
        return False
    if key in keys:
        return True
    for outlet in keys:
        if len(outlet) >= 4 and (key.startswith(outlet) or key.endswith(outlet)):
            rest = key.removeprefix(outlet) if key.startswith(outlet) else key.removesuffix(outlet)
            if rest in _GENERIC_SUFFIXES:
                return True
        if len(key) >= 4 and outlet.startswith(key) and outlet[len(key) :] in _GENERIC_SUFFIXES:
            return True
    return False


def strip_site_name(title: str, keys: set[str]) -> tuple[str, bool]:
    """The title without a leading or trailing segment that names the outlet; (title, changed)."""
    parts = _SEPARATOR.split(title)
    if len(parts) < 2:
        return title, False
    changed = False
    seps = _SEPARATOR.findall(title)
    while len(parts) > 1 and names_outlet(parts[-1], keys):
        parts.pop()
        seps.pop()
        changed = True
    while len(parts) > 1 and names_outlet(parts[0], keys):
        parts.pop(0)
        seps.pop(0)
        changed = True
    if not changed:
        return title, False
    rebuilt = parts[0] + "".join(sep + part for sep, part in zip(seps, parts[1:], strict=True))
    return rebuilt.strip(), True


def clean_title(candidates: Sequence[tuple[str, str | None]], keys: set[str]) -> TitleResult:
    """The first usable headline among `(source, text)` candidates, in the order given.

    Each is stripped of bidi controls and of a site-name segment; a candidate that is invisible
    or only the outlet's name is skipped."""
    for source, raw in candidates:
        if not raw:
            continue
        text, had_bidi = remove_bidi(" ".join(raw.split()))
        repairs = ["title_bidi_controls"] if had_bidi else []
        if is_invisible(text):
            continue
        if names_outlet(text, keys):
            continue  # only the site's name: not a headline
        stripped, changed = strip_site_name(text, keys)
        if is_invisible(stripped):
            continue
        if changed:
            repairs.append("title_site_name")
        return TitleResult(stripped, repairs, source)
    return TitleResult("", [], None)
