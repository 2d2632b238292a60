"""Readers: one module per raw format, each owning everything about its format.

A reader takes a decoded page (`TextPage`) and yields one `Draft` per article it finds, or
`Quarantine` entries for what it cannot use (as datatrove's readers adapt their raw records
into documents). The extraction step only sniffs the format and looks the reader up in
`READERS`; it knows nothing of any format.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from typing import Protocol

from newsstance.normalize.config import NormalizeConfig
from newsstance.normalize.model import Draft, Quarantine, TextPage
from newsstance.normalize.readers import html, newsplease, textpage

_MARKUP_TAGS = ("<html", "<!doctype html", "<head", "<body", "<article", "<div", "<p>", "<p ", "<main", "<meta")


class Reader(Protocol):
    """Turns one decoded page into drafts and/or quarantine entries; may count notes in `stats`."""

    def __call__(
        self, page: TextPage, config: NormalizeConfig, stats: Counter[str]
    ) -> Iterator[Draft | Quarantine]: ...


READERS: dict[str, Reader] = {
    "json": newsplease.read_json_page,
    "jsonl": newsplease.read_jsonl_page,
    "html": html.read_html_page,
    "text": textpage.read_text_page,
}


def sniff_format(text: str, suffix: str) -> str:
    """A key of `READERS` ('json', 'jsonl', 'html' or 'text'), from the content (the extension
    only breaks ties)."""
    kind = newsplease.sniff_json_kind(text, suffix)
    if kind:
        return kind
    if suffix in (".json", ".jsonl", ".ndjson"):
        return "json"  # claims to be JSON but is not: reported as malformed JSON
    head = text[:4096].lstrip().lower()
    if head.startswith("<") and any(tag in head for tag in _MARKUP_TAGS):
        return "html"
    return "text"
