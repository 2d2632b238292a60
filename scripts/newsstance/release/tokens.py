"""Deterministic tokenisation with character offsets, and BIO tags from entity spans.

Tokens are single characters of scripts written without spaces (Han, Hiragana, Katakana, Thai,
Lao, Khmer, Myanmar, Tibetan: one token per character, as CoNLL-style Chinese NER datasets do),
else word runs or single punctuation marks (`\\w+|[^\\w\\s]`), so the tokenizer needs no model and
never changes between library versions. A token that an entity boundary cuts (e.g. `NorvaTech` with the entity `Norva`) is split at the boundary,
so every span starts and ends on a token boundary and no span is lost in the BIO tags.
"""

from __future__ import annotations

import re
from bisect import bisect_left, bisect_right
from collections.abc import Iterable, Sequence
from itertools import accumulate

from newsstance.normalize.prose import SPACE_FREE_CHARS

TOKEN_PATTERN = rf"[{SPACE_FREE_CHARS}]|[^\W{SPACE_FREE_CHARS}]+|[^\w\s]"
TOKENS_DESCRIPTION = (
    "Tokens are word runs and single punctuation marks; in scripts written without spaces (Chinese, "
    "Japanese, Thai, ...) every character is one token, as in CoNLL-style Chinese NER datasets."
)
_SPLIT_RE = re.compile(f"({TOKEN_PATTERN})")
# Same tokens on ASCII text without the separators \x1c-\x1f (whitespace only for Unicode `\s`), ~25% faster.
_SPLIT_ASCII_RE = re.compile(f"({TOKEN_PATTERN})", re.ASCII)
_UNICODE_ONLY_SPACE = re.compile("[\x1c-\x1f]")


def tokenize(text: str, cuts: Iterable[int] = ()) -> tuple[list[str], list[int], list[int]]:
    """Tokens with start and end offsets; tokens containing a cut offset are split there.

    `re.split` with a capturing group alternates gaps and tokens, and running sums of the piece
    lengths give the offsets - all in C, about twice as fast as `finditer` + `Match.span()`.
    """
    ascii_safe = text.isascii() and not _UNICODE_ONLY_SPACE.search(text)
    pieces = (_SPLIT_ASCII_RE if ascii_safe else _SPLIT_RE).split(text)
    offsets = list(accumulate(map(len, pieces), initial=0))
    tokens, starts, ends = pieces[1::2], offsets[1:-1:2], offsets[2:-1:2]
    for cut in sorted(set(cuts), reverse=True):
        index = bisect_right(starts, cut) - 1
        if index >= 0 and starts[index] < cut < ends[index]:
            token, start = tokens[index], starts[index]
            tokens[index : index + 1] = [token[: cut - start], token[cut - start :]]
            starts.insert(index + 1, cut)
            ends.insert(index, cut)
    return tokens, starts, ends


def token_offsets(text: str, cuts: Iterable[int] = ()) -> tuple[list[int], list[int]]:
    """Token start and end offsets (see `tokenize`)."""
    _, starts, ends = tokenize(text, cuts)
    return starts, ends


def tokens_from_offsets(text: str, starts: Sequence[int], ends: Sequence[int]) -> list[str]:
    return [text[s:e] for s, e in zip(starts, ends, strict=True)]


class SpanOffTokens(ValueError):
    """An entity span does not start or end on a token boundary (e.g. it has outer whitespace)."""


def bio_tag_ids(starts: Sequence[int], ends: Sequence[int], spans: Iterable[tuple[int, int, int]]) -> list[int]:
    """BIO tag ids per token from non-overlapping `(start, end, label_id)` spans.

    Tag ids follow `Scheme.bio_tags`: 0 is O, `1 + 2 * label` is B-label, `2 + 2 * label` I-label.
    """
    tags = [0] * len(starts)
    for start, end, label in spans:
        first = bisect_left(starts, start)
        last = bisect_left(ends, end)
        if first >= len(starts) or starts[first] != start or last >= len(ends) or ends[last] != end or last < first:
            raise SpanOffTokens(f"span [{start}, {end}) does not start and end on token boundaries")
        tags[first] = 1 + 2 * label
        tags[first + 1 : last + 1] = [2 + 2 * label] * (last - first)
    return tags
