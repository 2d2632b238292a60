"""Character spans <-> BIO tags on the release's own tokens, and conlleval-style chunks.

Token-level scores (seqeval, conll2003-comparable) need predicted spans projected onto
the release's tokens exactly as the release projects gold spans. Tag ids follow
`Scheme.bio_tags`: 0 = O, 1 + 2k = B-<label k>, 2 + 2k = I-<label k>.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from newsstance.errors import UserError


def token_offsets(text: str, tokens: Sequence[str], article_id: str = "") -> tuple[list[int], list[int]]:
    """Recover token character offsets by finding each token in order (for releases without offsets)."""
    starts: list[int] = []
    ends: list[int] = []
    position = 0
    for token in tokens:
        found = text.find(token, position)
        if found < 0 or not token:
            raise UserError(f"article {article_id}: token {token!r} not found in its text after offset {position}")
        starts.append(found)
        ends.append(found + len(token))
        position = found + len(token)
    return starts, ends


def spans_to_bio(
    starts: Sequence[int] | np.ndarray, ends: Sequence[int] | np.ndarray, spans: Sequence[tuple[int, int, int]]
) -> list[int]:
    """BIO tag ids for `(start, end, label_index)` spans; a token is tagged when it overlaps the span.

    Overlapping spans cannot all be encoded in BIO: spans are taken by start, longer first,
    and a span that touches an already tagged token is dropped (a predicted fragment would
    otherwise turn into a chunk nobody predicted). Offsets may be lists or numpy arrays.
    """
    tags = [0] * len(starts)
    if not spans:
        return tags
    ordered = sorted(spans, key=lambda s: (s[0], -s[1], s[2]))
    firsts = np.searchsorted(ends, [s[0] for s in ordered], side="right").tolist()
    stops = np.searchsorted(starts, [s[1] for s in ordered], side="left").tolist()
    for (_, _, label), first, stop in zip(ordered, firsts, stops, strict=True):
        if stop <= first or any(tags[first:stop]):
            continue
        tags[first] = 1 + 2 * label
        for index in range(first + 1, stop):
            tags[index] = 2 + 2 * label
    return tags


def bio_chunks(tags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chunks `(label, first, last)` of a tag-id array, as conlleval / seqeval's default mode reads them.

    A chunk starts at a B tag, or at an I tag after O or after another label; it ends before
    O, B or another label. Put O between independent sequences before calling.
    """
    tags = np.asarray(tags, dtype=np.int64)
    inside = tags > 0
    label = np.where(inside, (tags - 1) // 2, -1)
    is_begin = inside & (tags % 2 == 1)
    previous = np.concatenate(([-1], label[:-1]))
    following_label = np.concatenate((label[1:], [-1]))
    following_begin = np.concatenate((is_begin[1:], [False]))
    starts = inside & (is_begin | (previous != label))
    stops = inside & (following_begin | (following_label != label))
    first = np.flatnonzero(starts)
    last = np.flatnonzero(stops)
    return label[first], first, last


def bio_to_spans(tags: Sequence[int], starts: Sequence[int], ends: Sequence[int]) -> list[tuple[int, int, int]]:
    """Character spans `(start, end, label_index)` of the chunks in a tag sequence (decoding a tagger)."""
    labels, first, last = bio_chunks(np.asarray(tags, dtype=np.int64))
    return [(starts[f], ends[la], int(lab)) for lab, f, la in zip(labels, first, last, strict=True)]
