"""Canonical URLs: found anywhere in the page, resolved, and in a form the schema accepts.

Pages put `<link rel="canonical">` or `<meta property="og:url">` in `<body>` as often as in
`<head>` (templates, tag managers), and some write them relative ("/news/ferry-returns").
An IRI with non-ASCII letters (`https://example.org/новости/паром`) is a valid address: it is
normalised to its percent-encoded URI form (host in IDNA), which is what `format: uri` checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import quote, urljoin, urlsplit, urlunsplit

_SAFE_PATH = "/%:@!$&'()*+,;=-._~"
_SAFE_QUERY = _SAFE_PATH + "?"
_WHITESPACE = re.compile(r"\s+")
# a character a URI cannot hold as such (RFC 3986): non-ASCII letters, spaces, quotes, braces...
_NOT_URI = re.compile(r"[^A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]")


def uri_form(value: str) -> str:
    """`value` as written when it is already a URI, else its URI form (`to_uri`) when it has one:
    an address taken from a record or sidecar as it was written may be an IRI."""
    if not _NOT_URI.search(value):
        return value
    return to_uri(value) or value


def to_uri(value: str) -> str | None:
    """An absolute http(s) URL in ASCII URI form, or None when `value` is not one."""
    text = _WHITESPACE.sub("", value or "")
    if not text:
        return None
    try:
        parts = urlsplit(text)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    try:
        host = parts.hostname.encode("idna").decode("ascii") if not parts.hostname.isascii() else parts.hostname
    except UnicodeError:
        return None
    netloc = host
    if parts.username:
        return None  # credentials in a canonical URL are a template error, not an address
    try:
        port = parts.port
    except ValueError:
        return None
    if port:
        netloc += f":{port}"
    path = quote(parts.path or "/", safe=_SAFE_PATH)
    query = quote(parts.query, safe=_SAFE_QUERY)
    fragment = quote(parts.fragment, safe=_SAFE_QUERY)
    return urlunsplit((parts.scheme.lower(), netloc.lower(), path, query, fragment))


def resolve(value: str, base: str | None) -> str | None:
    """`value` made absolute against `base` (the page URL) when it is relative; URI form."""
    text = _WHITESPACE.sub("", value or "")
    if not text or text.startswith(("javascript:", "data:", "mailto:", "#")):
        return None
    if base and not urlsplit(text).scheme:
        base_uri = to_uri(base)
        if base_uri is None:
            return None
        text = urljoin(base_uri, text)
    return to_uri(text)


def canonical_url(candidates: Iterable[str], page_url: str | None = None) -> str | None:
    """The first usable address among rel=canonical hrefs then og:url values (found anywhere in the
    document); relative ones resolved against `page_url`."""
    for value in candidates:
        url = resolve(value, page_url)
        if url:
            return url
    return None
