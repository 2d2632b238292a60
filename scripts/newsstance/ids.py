"""Stable article ids.

An id names one article *row*: it derives from the article's identity (canonical URL
when known, else outlet + normalised title), scoped by where the row was found (raw
path and occurrence), so a better text cleaner never changes it and the same story
seen on two pages keeps two rows (one marked `duplicate_of` the other).
`identity_key` alone groups the same story across pages.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

_TRACKING_PARAMS = re.compile(r"^(utm_.*|fbclid|gclid|dclid|mc_cid|mc_eid|ref|ref_src|cmpid|ocid|igshid)$", re.I)
_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def canonical_url(url: str | None) -> str | None:
    """Lower-case scheme and host, drop `www.`, default ports, fragments, tracking
    parameters and a trailing slash; sort the remaining query parameters."""
    if not url or not url.strip():
        return None
    parts = urlsplit(url.strip())
    if not parts.scheme or not parts.netloc:
        return None
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if host.startswith("www."):
        host = host[4:]
    port = parts.port
    if port and not ((scheme == "http" and port == 80) or (scheme == "https" and port == 443)):
        host = f"{host}:{port}"
    query = sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if not _TRACKING_PARAMS.match(k))
    path = parts.path.rstrip("/") or "/"
    return urlunsplit((scheme, host, path, urlencode(query), ""))


def normalise_title(title: str) -> str:
    """Case-, accent-width- and punctuation-insensitive form of a title."""
    text = unicodedata.normalize("NFKC", title).casefold()
    return " ".join(_NON_WORD.sub(" ", text).split())


def identity_key(url: str | None, source: str | None, title: str) -> str:
    canon = canonical_url(url)
    if canon:
        return f"url:{canon}"
    return f"title:{normalise_title(source or '')}|{normalise_title(title)}"


def article_id(identity: str, raw_path: str, occurrence: int = 0) -> str:
    """16 hex chars naming one row: identity + raw path (posix, corpus-relative) + occurrence."""
    payload = f"{identity}\x1f{raw_path}\x1f{occurrence}".encode()
    return hashlib.sha256(payload).hexdigest()[:16]


def text_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()
