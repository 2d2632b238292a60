"""Exact, identity and near-duplicate detection over article records.

Two halves, so the expensive part runs where the text is:

- `signature(text)` (in worker processes): a MinHash signature over word 5-grams.
  Tokens are NFKC-normalised, case-folded runs of letters/digits (punctuation,
  including common Unicode punctuation, separates tokens and is otherwise ignored);
  in scripts written without spaces (Han, kana, Thai, ...) each character is a token.
  Texts shorter than 5 words make one shingle of what they have. The implementation
  is vectorised numpy (tabulation-hashed tokens, a linear 5-gram combination,
  multiplicative permutations): ~100 us for a 300-word article, 4-5x faster than
  datasketch's `update_batch` with Python shingling (`benchmarks/README.md`). Every
  constant comes from a fixed splitmix64 seed, so signatures are identical across
  processes, runs and numpy versions (`SIGNATURE_VERSION` names them).
- `cluster(items)` (once, over small `DedupItem`s): union of records with the same
  identity (canonical URL, or outlet + title) or the same text hash, then
  near-duplicates (MinHash LSH candidates confirmed by estimated Jaccard).

Near-duplicate merging does not chain. Similarity is not transitive (A~B and B~C
with A and C unrelated happens with successive edits or shared boilerplate), so
near-duplicate edges are NOT unioned transitively. Identity and exact-text unions
are (they are equality relations) and make "groups". Groups are then visited from
best to worst canonical (untruncated, longest, smallest id); a group not yet visited
is absorbed by the current one when a text of it is a confirmed near-duplicate
(estimated Jaccard >= threshold) of a text of the current group, and an absorbed
group never absorbs others. So near-duplicate links never compose: each absorbed
group is one confirmed edge away from its cluster's canonical group (a star, not a
chain), and the canonical stays the best record of the cluster.

Defaults (measured by `benchmarks/normalize_bench.py`, see `benchmarks/README.md`):
128 permutations, confirmation at estimated Jaccard >= 0.7 and LSH with 21 bands of
6 rows. With 128 permutations the estimate's standard deviation at J = 0.8 is 0.035,
so a 0.7 cut keeps ~99.8% of pairs at J = 0.8 while a pair at J = 0.5 passes with
probability ~3e-6; 21x6 bands make 99.8% of J = 0.8 pairs (93% at J = 0.7) LSH
candidates.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import unicodedata
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

NGRAM = 5
NUM_PERM = 128
THRESHOLD = 0.7
# Outlet + title alone is no identity: a same-title record joins only when at least this share of
# the smaller text's shingles is in the other (truncated copies: ~1; different stories: ~0).
CONTAINMENT_THRESHOLD = 0.8
URL_IDENTITY_PREFIX = "url:"
SEED = 0x5EED_D0C5
# Changes whenever `signature` would give different values for the same text: callers that
# cache signatures (the normalize stage's parts) must key their cache on it.
SIGNATURE_VERSION = f"minhash-v2-p{NUM_PERM}-n{NGRAM}-s{SEED:x}"

# Scripts written without spaces between words (Han, kana, Thai, Lao, Khmer, Myanmar, Tibetan):
# there a whitespace "token" is a whole clause or sentence, so a one-character edit would break
# five clause-long shingles. Each of their characters is a token instead (character 5-grams,
# the usual shingle for Chinese and Japanese near-duplicate detection). Hangul uses spaces.
_UNSPACED = re.compile(
    "[\u0e00-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff\u3040-\u30ff\u31f0-\u31ff"
    "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f]"
)
# Shingles are min-hashed in blocks so a very long text never needs a huge matrix.
_SHINGLE_BLOCK = 4096
# A LSH bucket larger than this (many texts sharing a band) is paired by a sliding
# window instead of all pairs, to stay linear; real buckets are far smaller.
MAX_BUCKET_PAIRS = 256
# Candidate pairs are confirmed in chunks to bound memory.
_PAIR_CHUNK = 32768

_MASK64 = (1 << 64) - 1
_U64 = np.uint64


# -- signatures ----------------------------------------------------------------------------------------------------


def _splitmix64(seed: int, count: int) -> list[int]:
    """Deterministic 64-bit constants (numpy's generators may change between versions)."""
    values = []
    state = seed & _MASK64
    for _ in range(count):
        state = (state + 0x9E3779B97F4A7C15) & _MASK64
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        values.append(z ^ (z >> 31))
    return values


def _byte_classes() -> np.ndarray:
    """True for bytes that separate tokens: every ASCII byte except letters and digits.

    Bytes >= 0x80 belong to tokens unless `_mark_unicode_punctuation` says otherwise.
    """
    separators = np.ones(256, dtype=bool)
    for lo, hi in ((ord("0"), ord("9")), (ord("a"), ord("z")), (ord("A"), ord("Z")), (0x80, 0xFF)):
        separators[lo : hi + 1] = False
    return separators


_SEPARATOR_BYTE = _byte_classes()
_TOKEN_TABLE_FLAT = np.array(_splitmix64(SEED, 64 * 256), dtype=_U64)  # [position % 64][byte]
MAX_NGRAM = 32
_GRAM_MULTIPLIERS = np.array([v | 1 for v in _splitmix64(SEED + 1, MAX_NGRAM)], dtype=_U64)
_WIDTH_TAGS = np.array(_splitmix64(SEED + 4, MAX_NGRAM + 1), dtype=_U64)
_EMPTY_TEXT_HASH = _U64(_splitmix64(SEED + 2, 1)[0])


@cache
def _permutations(num_perm: int) -> np.ndarray:
    """Odd multipliers of the `num_perm` hash permutations."""
    return np.array([v | 1 for v in _splitmix64(SEED + 3, num_perm)], dtype=_U64)


def _mix64(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: spreads the linear 5-gram combination over all bits."""
    x = x ^ (x >> _U64(30))
    x = x * _U64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> _U64(27))
    x = x * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def _mark_unicode_punctuation(data: np.ndarray, separators: np.ndarray) -> None:
    """Mark UTF-8 sequences of common punctuation as separators, in place.

    U+0080-U+00BF (Latin-1 punctuation such as « » ¡ ¿ and no-break space), × and ÷,
    U+2000-U+20BF (dashes, curly quotes, ellipsis, bullets, currency) and U+3000-U+303F
    (CJK punctuation). NFKC has already folded full-width forms to ASCII.
    """
    if len(data) < 2:
        return
    first, second = data[:-1], data[1:]
    two = (first == 0xC2) | ((first == 0xC3) & ((second == 0x97) | (second == 0xB7)))
    starts2 = np.flatnonzero(two)
    separators[starts2] = True
    separators[starts2 + 1] = True
    if len(data) >= 3:
        three = ((first == 0xE2) & (second <= 0x82)) | ((first == 0xE3) & (second == 0x80))
        starts3 = np.flatnonzero(three[: len(data) - 2])
        for offset in range(3):
            separators[starts3 + offset] = True


def token_hashes(text: str) -> np.ndarray:
    """64-bit hash of every token, in order (simple tabulation hashing of its UTF-8 bytes)."""
    folded = unicodedata.normalize("NFKC", text).casefold()
    if not folded.isascii():
        folded = _UNSPACED.sub(r"\g<0> ", folded)  # one token per character of an unspaced script
    data = np.frombuffer(folded.encode("utf-8"), dtype=np.uint8)
    if len(data) == 0:
        return np.empty(0, dtype=_U64)
    separators = _SEPARATOR_BYTE[data]
    if not folded.isascii():
        _mark_unicode_punctuation(data, separators)
    in_token = ~separators
    # Token boundaries: where in_token flips (starts and ends alternate).
    flips = np.flatnonzero(np.concatenate(([False], in_token)) != np.concatenate((in_token, [False])))
    if len(flips) == 0:
        return np.empty(0, dtype=_U64)
    lengths = flips[1::2] - flips[0::2]
    token_bytes = data[in_token]
    starts = np.cumsum(lengths) - lengths  # where each token starts in `token_bytes`
    position = np.arange(len(token_bytes)) - np.repeat(starts, lengths)
    return np.bitwise_xor.reduceat(_TOKEN_TABLE_FLAT.take(((position & 63) << 8) | token_bytes), starts)


def shingle_hashes(text: str, ngram: int = NGRAM) -> np.ndarray:
    """64-bit hash of every word n-gram (with repeats); one shingle for shorter texts."""
    if not 1 <= ngram <= MAX_NGRAM:
        raise ValueError(f"ngram must be in 1..{MAX_NGRAM}, got {ngram}")
    tokens = token_hashes(text)
    if len(tokens) == 0:
        # No word at all (only punctuation or symbols): the text itself is the shingle,
        # so two different such texts do not look identical.
        raw = unicodedata.normalize("NFKC", text).encode("utf-8")
        return _mix64(np.array([hash_bytes(raw)], dtype=_U64))
    return _combine(tokens, min(ngram, len(tokens)))


def _combine(tokens: np.ndarray, width: int) -> np.ndarray:
    """Hashes of every run of `width` consecutive tokens."""
    count = len(tokens) - width + 1
    combined = tokens[:count] * _GRAM_MULTIPLIERS[0]
    for k in range(1, width):
        combined += tokens[k : k + count] * _GRAM_MULTIPLIERS[k]
    # Tag the width so a 3-word text never equals a 5-gram by accident.
    combined += _WIDTH_TAGS[width]
    return _mix64(combined)


def hash_bytes(raw: bytes) -> int:
    """Deterministic 64-bit hash of bytes (for the rare texts without a word)."""
    data = np.frombuffer(raw, dtype=np.uint8)
    if len(data) == 0:
        return int(_EMPTY_TEXT_HASH)
    position = np.arange(len(data)) & 63
    return int(np.bitwise_xor.reduce(_TOKEN_TABLE_FLAT.take((position << 8) | data)) ^ _EMPTY_TEXT_HASH)


def signature(text: str, num_perm: int = NUM_PERM, ngram: int = NGRAM) -> np.ndarray:
    """MinHash signature (uint32[num_perm]) of the text's word n-grams.

    Permutation k maps a shingle hash x to a_k * x mod 2**64 (a_k odd: a bijection);
    the signature keeps the top 32 bits of each minimum. Shingle hashes are already
    well mixed, so an additive term buys nothing: measured on 1,500 pairs the estimate
    is unbiased with the binomial spread sqrt(J(1-J)/num_perm) either way, and it is
    30% faster without. Pure and deterministic.
    """
    return signature_and_size(text, num_perm, ngram)[0]


def signature_and_size(text: str, num_perm: int = NUM_PERM, ngram: int = NGRAM) -> tuple[np.ndarray, int]:
    """`signature(text)` and the text's shingle count (for containment estimates); long texts are
    shingled in pieces (`_shingle_blocks`), so memory does not grow with the text."""
    multipliers = _permutations(num_perm)
    minimum = np.full(num_perm, _MASK64, dtype=_U64)
    count = 0
    for shingles in _shingle_blocks(text, ngram):
        count += len(shingles)
        for block in range(0, len(shingles), _SHINGLE_BLOCK):
            permuted = np.multiply.outer(multipliers, shingles[block : block + _SHINGLE_BLOCK])
            np.minimum(minimum, permuted.min(axis=1), out=minimum)
    return (minimum >> _U64(32)).astype(np.uint32), count


# Token hashing costs ~30 bytes of numpy arrays per text byte: long texts are hashed in pieces.
_TEXT_PIECE = 1 << 20


def _shingle_blocks(text: str, ngram: int, piece: int | None = None) -> Iterator[np.ndarray]:
    """`shingle_hashes(text, ngram)` in consecutive blocks, with memory bounded by `piece` characters.

    The text is cut only at ASCII spaces, which separate tokens and are left alone by NFKC and
    casefold, so the pieces' tokens are exactly the whole text's; the last `ngram - 1` token
    hashes of a piece carry over into the next piece's n-grams. Same shingles, same signature.
    """
    piece = piece or _TEXT_PIECE
    if len(text) <= piece:
        yield shingle_hashes(text, ngram)
        return
    carry: np.ndarray = np.empty(0, dtype=_U64)
    total = 0
    start = 0
    while start < len(text):
        end = min(len(text), start + piece)
        if end < len(text):
            cut = text.rfind(" ", start, end)
            end = cut + 1 if cut > start else end
            if cut <= start and _unspaced_boundary(text, end):
                cut = end  # between two characters of an unspaced script: a token boundary too
            if cut <= start:  # no space in a whole piece: extend to the next one (or the end)
                following = text.find(" ", end)
                end = len(text) if following < 0 else following + 1
        tokens = token_hashes(text[start:end])
        start = end
        if len(tokens) == 0:
            continue
        total += len(tokens)
        window = np.concatenate((carry, tokens)) if len(carry) else tokens
        if len(window) >= ngram:
            yield _combine(window, ngram)
        carry = window[-(ngram - 1) :] if ngram > 1 else np.empty(0, dtype=_U64)
    if total < ngram:  # fewer tokens than one n-gram: the short-text rule needs the whole text
        yield shingle_hashes(text, ngram)


def _unspaced_boundary(text: str, at: int) -> bool:
    """`at` falls between two characters of an unspaced script, the second no combining mark
    (so NFKC of either side cannot reach across)."""
    return (
        0 < at < len(text)
        and bool(_UNSPACED.match(text, at - 1))
        and bool(_UNSPACED.match(text, at))
        and not unicodedata.combining(text[at])
    )


def estimated_jaccard(a: np.ndarray, b: np.ndarray) -> float:
    """Share of equal MinHash values: an unbiased estimate of the Jaccard similarity."""
    if a.shape != b.shape:
        raise ValueError(f"signatures differ in size: {a.shape} vs {b.shape}")
    return float(np.count_nonzero(a == b)) / len(a)


def lsh_bands(threshold: float, num_perm: int, min_candidate_probability: float = 0.9) -> tuple[int, int]:
    """(bands, rows): the most rows per band (fewest spurious candidates) that still make a
    pair at exactly `threshold` an LSH candidate with `min_candidate_probability`."""
    best = (num_perm, 1)
    for rows in range(1, num_perm + 1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= min_candidate_probability:
            best = (bands, rows)
        else:
            break
    return best


# -- clustering ----------------------------------------------------------------------------------------------------


@dataclass(slots=True)
class DedupItem:
    """What clustering needs of one record; `signature` comes from `signature(text)`
    (None: the record takes part in identity and exact-text matching only). `shingles`
    is the text's shingle count (`len(shingle_hashes(text))`), for containment; 0 = unknown."""

    id: str
    identity: str
    text_sha256: str
    length: int
    truncated: bool
    signature: np.ndarray | None
    shingles: int = 0


@dataclass(slots=True)
class DedupResult:
    """`duplicate_of`: canonical id (None for a canonical or unique record); `jaccard`:
    estimated Jaccard with the canonical (1.0 for an exact copy)."""

    duplicate_of: str | None
    jaccard: float | None


@dataclass
class DedupStats:
    """Records and how each duplicate joined its canonical."""

    records: int = 0
    clusters: int = 0
    exact: int = 0
    identity: int = 0
    near: int = 0
    candidate_pairs: int = 0
    confirmed_pairs: int = 0

    @property
    def duplicates(self) -> int:
        return self.exact + self.identity + self.near


class DedupResults(dict[str, DedupResult]):
    """`cluster`'s answer: id -> DedupResult for every record, plus `stats`."""

    def __init__(self, results: dict[str, DedupResult], stats: DedupStats):
        super().__init__(results)
        self.stats = stats


# The pieces below run where their data is: `cluster` runs them all in one process; the normalize
# engine runs `band_pairs` per band in parallel over memory-mapped signatures and the rest in one
# small stage over per-record columns (no signatures held).

# Rows of signatures by distinct-text number (an array, or a lookup into memory-mapped files).
SignatureRows = Callable[[np.ndarray], np.ndarray]


@dataclass
class RecordColumns:
    """Per-record columns clustering needs, in output order (no texts, no signatures).

    `text_key` / `identity_key`: any sortable dtype (digests); `url_identity`: the identity is a
    canonical URL (else outlet + title, which alone never merges two records, see `identity_edges`);
    `id_rank`: the rank of the record's id among all ids (ties in the canonical choice);
    `shingles`: shingle count of the text (0 = unknown: no containment evidence)."""

    id_rank: np.ndarray
    text_key: np.ndarray
    identity_key: np.ndarray
    url_identity: np.ndarray
    length: np.ndarray
    truncated: np.ndarray
    shingles: np.ndarray
    signed: np.ndarray  # the record has a real signature

    def __len__(self) -> int:
        return len(self.id_rank)

    def best_first(self) -> np.ndarray:
        """Record indices, best canonical first: untruncated, longest, smallest id."""
        return np.lexsort((self.id_rank, -self.length.astype(np.int64), self.truncated.astype(np.int8)))


def number_texts(text_key: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(distinct-text number of every record, first record of every distinct text), numbered in
    order of first appearance."""
    if len(text_key) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    _, first, inverse = np.unique(text_key, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")
    renumber = np.empty(len(order), dtype=np.int64)
    renumber[order] = np.arange(len(order))
    return renumber[inverse.reshape(-1)], first[order].astype(np.int64)


def containment(sig_a: np.ndarray, sig_b: np.ndarray, size_a: np.ndarray, size_b: np.ndarray) -> np.ndarray:
    """Estimated share of the smaller text's shingles found in the other (from the MinHash Jaccard
    estimate J and the shingle counts: |A & B| = J (|A| + |B|) / (1 + J)); 0 when a count is unknown."""
    j = np.count_nonzero(sig_a == sig_b, axis=1) / sig_a.shape[1]
    a, b = size_a.astype(np.float64), size_b.astype(np.float64)
    smaller = np.minimum(a, b)
    with np.errstate(divide="ignore", invalid="ignore"):
        value = j * (a + b) / (1.0 + j) / smaller
    return np.where(smaller > 0, value, 0.0)


def identity_edges(
    records: RecordColumns,
    node: np.ndarray,
    rows: SignatureRows,
    containment_threshold: float = CONTAINMENT_THRESHOLD,
    known: PairValues | None = None,
) -> np.ndarray:
    """Edges (distinct-text pairs) of records that are one story by identity.

    A canonical URL is an identity: every record with it joins. Outlet + title alone is not (a
    generic title such as "Live updates", or one equal to the outlet name, is shared by different
    stories): a record joins its title group's best record only when text confirms it, i.e. the
    smaller text is mostly contained in the other (a truncated copy is, a different story is not).
    `known`: containment shares of text pairs from earlier runs (the new ones are added to it)."""
    edges = []
    url = np.flatnonzero(records.url_identity)
    if len(url) > 1:
        leader = _first_of_key(records.identity_key[url], url)
        edges.append(np.stack((node[leader], node[url]), axis=1))
    titled = np.flatnonzero(~records.url_identity)
    if len(titled) > 1:
        titled = titled[np.argsort(_positions(records)[titled], kind="stable")]  # best record first
        leader = _first_of_key(records.identity_key[titled], titled)
        candidate = (node[leader] != node[titled]) & records.signed[leader] & records.signed[titled]
        a, b = leader[candidate], titled[candidate]

        def shares(at: np.ndarray) -> np.ndarray:
            out = np.empty(len(at), dtype=np.float64)
            for start in range(0, len(at), _PAIR_CHUNK):
                left, right = a[at[start : start + _PAIR_CHUNK]], b[at[start : start + _PAIR_CHUNK]]
                both = rows(np.concatenate((node[left], node[right])))  # one pass over the parts
                out[start : start + len(left)] = containment(
                    both[: len(left)], both[len(left) :], records.shingles[left], records.shingles[right]
                )
            return out

        share = shares(np.arange(len(a))) if known is None else known.values(records.text_key, a, b, shares)
        confirmed = share >= containment_threshold
        edges.append(np.stack((node[a[confirmed]], node[b[confirmed]]), axis=1))
    edges = [e for e in edges if len(e)]
    return np.concatenate(edges).astype(np.int64) if edges else np.empty((0, 2), dtype=np.int64)


def _positions(records: RecordColumns) -> np.ndarray:
    position = np.empty(len(records), dtype=np.int64)
    position[records.best_first()] = np.arange(len(records))
    return position


def _first_of_key(keys: np.ndarray, members: np.ndarray) -> np.ndarray:
    """For each member, the first member (in the given order) with the same key."""
    _, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    return members[first[inverse.reshape(-1)]]


def groups_of(node_count: int, edges: np.ndarray) -> np.ndarray:
    """Group of every distinct text: the smallest text number of its connected component
    (union-find in numpy: hook roots to the smaller root along every edge, then jump pointers)."""
    label: np.ndarray = np.arange(node_count, dtype=np.int64)
    if len(edges) == 0:
        return label
    left, right = edges[:, 0], edges[:, 1]
    while True:
        lu, lv = label[left], label[right]
        smaller = np.minimum(lu, lv)
        if np.array_equal(lu, lv):
            return label
        np.minimum.at(label, lu, smaller)
        np.minimum.at(label, lv, smaller)
        while True:
            jumped: np.ndarray = label[label]
            if np.array_equal(jumped, label):
                break
            label = jumped


def band_keys(signatures: np.ndarray, band: int, rows: int) -> np.ndarray:
    """LSH key of every signature for one band."""
    cols = signatures[:, band * rows : (band + 1) * rows].astype(_U64)
    key = np.zeros(len(signatures), dtype=_U64)
    for j in range(rows):
        key = _mix64(key + cols[:, j] * _GRAM_MULTIPLIERS[j])
    return key


def band_pairs(keys: np.ndarray, group_of_node: np.ndarray | None = None) -> np.ndarray:
    """Sorted distinct pair codes i * n + j (i < j) of texts whose keys in one band are equal;
    pairs already in one group are skipped. Sorting the keys finds the buckets (no hash tables of
    lists: memory stays ~8 bytes per candidate pair)."""
    count = len(keys)
    order = np.argsort(keys, kind="stable")
    sorted_keys = keys[order]
    same_as_next = sorted_keys[1:] == sorted_keys[:-1]
    if not same_as_next.any():
        return np.empty(0, dtype=np.int64)
    run_start = np.flatnonzero(np.concatenate(([True], ~same_as_next)))
    run_length = np.diff(np.append(run_start, count))
    # Every member is paired with the members after it in its bucket: all of them in a small
    # bucket, the next MAX_BUCKET_PAIRS in a large one, without a Python loop.
    run_of = np.repeat(np.arange(len(run_start)), run_length)
    after = (run_start + run_length - 1)[run_of] - np.arange(count)
    large = run_length - 1 > 2 * MAX_BUCKET_PAIRS
    take = np.where(large[run_of], np.minimum(after, MAX_BUCKET_PAIRS), after)
    at = np.flatnonzero(take)
    take = take[at]
    left_at = np.repeat(at, take)
    step = np.arange(len(left_at)) - np.repeat(np.cumsum(take) - take, take) + 1
    left, right = order[left_at], order[left_at + step]
    if group_of_node is not None:
        apart = group_of_node[left] != group_of_node[right]
        left, right = left[apart], right[apart]
    return np.unique(np.minimum(left, right).astype(np.int64) * count + np.maximum(left, right))


def confirm_pairs(
    codes: np.ndarray,
    count: int,
    rows: SignatureRows,
    threshold: float,
    known: PairValues | None = None,
    node_text: np.ndarray | None = None,
) -> np.ndarray:
    """The (i, j) pairs among `codes` whose estimated Jaccard reaches the threshold, in chunks.
    `known`: Jaccard estimates of text pairs from earlier runs, by the texts' keys `node_text`."""
    left, right = codes // count, codes % count
    if known is None or node_text is None:
        jaccard = _rows_jaccard(rows, left, right)
    else:
        jaccard = known.values(node_text, left, right, lambda at: _rows_jaccard(rows, left[at], right[at]))
    keep = jaccard >= threshold
    return np.stack((left[keep], right[keep]), axis=1)


def candidate_pairs(
    signatures: np.ndarray, bands: int, rows: int, group_of_node: np.ndarray | None = None
) -> np.ndarray:
    """Distinct (i, j), i < j, of texts sharing at least one LSH band, as an (n, 2) array."""
    count = len(signatures)
    found = np.empty(0, dtype=np.int64)
    for band in range(bands):
        codes = band_pairs(band_keys(signatures, band, rows), group_of_node)
        # Timsort merges the two sorted runs in linear time.
        found = np.sort(np.concatenate((found, codes[~sorted_contains(found, codes)])), kind="stable")
    return np.stack((found // count, found % count), axis=1) if len(found) else np.empty((0, 2), dtype=np.int64)


def sorted_contains(haystack: np.ndarray, needles: np.ndarray) -> np.ndarray:
    """Which of `needles` are in the sorted array `haystack`."""
    if len(haystack) == 0:
        return np.zeros(len(needles), dtype=bool)
    at = np.minimum(np.searchsorted(haystack, needles), len(haystack) - 1)
    return haystack[at] == needles


def pair_jaccard(signatures: np.ndarray, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Estimated Jaccard of many (left, right) signature pairs, in bounded chunks."""
    return _rows_jaccard(signatures.__getitem__, left, right)


def _rows_jaccard(rows: SignatureRows, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    out = np.empty(len(left), dtype=np.float64)
    for start in range(0, len(left), _PAIR_CHUNK):
        both = rows(np.concatenate((left[start : start + _PAIR_CHUNK], right[start : start + _PAIR_CHUNK])))
        a, b = both[: len(both) // 2], both[len(both) // 2 :]
        out[start : start + _PAIR_CHUNK] = np.count_nonzero(a == b, axis=1) / a.shape[1]
    return out


def _absorb_near_duplicates(group_of_node: np.ndarray, rank: dict[int, int], edges: np.ndarray) -> dict[int, int]:
    """Star merging: visit groups best-first; each absorbs the not yet visited groups that
    share a confirmed near-duplicate edge with it. Returns absorbed group -> absorbing group."""
    if len(edges) == 0:
        return {}
    groups = np.unique(np.sort(group_of_node[edges], axis=1), axis=0)
    neighbours: dict[int, list[int]] = {}
    for gu, gv in groups.tolist():
        neighbours.setdefault(gu, []).append(gv)
        neighbours.setdefault(gv, []).append(gu)
    absorbed_by: dict[int, int] = {}
    visited: set[int] = set()
    for center in sorted(neighbours, key=rank.__getitem__):
        if center in absorbed_by:
            continue
        visited.add(center)
        for other in neighbours[center]:
            if other not in visited and other not in absorbed_by:
                absorbed_by[other] = center
    return absorbed_by


@dataclass
class Clusters:
    """Per record: `canonical` (record index of its cluster's canonical; itself when canonical)
    and `jaccard` with it (1.0 for itself or an exact copy), plus `stats`."""

    canonical: np.ndarray
    jaccard: np.ndarray
    stats: DedupStats


def finish(
    records: RecordColumns,
    node: np.ndarray,
    group_of_node: np.ndarray,
    near_edges: np.ndarray,
    rows: SignatureRows,
    known: PairValues | None = None,
) -> Clusters:
    """Star-merge groups along confirmed near-duplicate edges (no chains) and pick canonicals.
    `known`: Jaccard estimates of text pairs from earlier runs."""
    stats = DedupStats(records=len(records), confirmed_pairs=len(near_edges))
    group = group_of_node[node]
    order = records.best_first()
    # The first record of each group in best-first order is its canonical; its position, the group's rank.
    groups, first = np.unique(group[order], return_index=True)
    group_canonical = np.full(len(group_of_node), -1, dtype=np.int64)
    group_canonical[groups] = order[first]
    group_rank = np.full(len(group_of_node), -1, dtype=np.int64)
    group_rank[groups] = first
    involved = np.unique(group_of_node[near_edges]) if len(near_edges) else np.empty(0, dtype=np.int64)
    absorbed_by = _absorb_near_duplicates(
        group_of_node, dict(zip(involved.tolist(), group_rank[involved].tolist(), strict=True)), near_edges
    )
    cluster_of_group = np.arange(len(group_of_node), dtype=np.int64)
    if absorbed_by:
        cluster_of_group[np.fromiter(absorbed_by.keys(), dtype=np.int64)] = np.fromiter(
            absorbed_by.values(), dtype=np.int64
        )
    root = cluster_of_group[group]
    canonical = group_canonical[root]
    canonical_text = node[canonical]
    is_duplicate = canonical != np.arange(len(node))
    jaccard = np.ones(len(node))
    differs = is_duplicate & (node != canonical_text)
    left, right = node[differs], canonical_text[differs]
    if known is None:
        jaccard[differs] = _rows_jaccard(rows, left, right)
    else:
        text_of_node = np.empty(len(group_of_node), dtype=records.text_key.dtype)
        text_of_node[node] = records.text_key
        jaccard[differs] = known.values(text_of_node, left, right, lambda at: _rows_jaccard(rows, left[at], right[at]))
    same_group = root == group
    stats.exact = int(np.count_nonzero(is_duplicate & ~differs))
    stats.identity = int(np.count_nonzero(differs & same_group))
    stats.near = int(np.count_nonzero(differs & ~same_group))
    stats.clusters = len(node) - int(np.count_nonzero(is_duplicate))
    return Clusters(canonical, jaccard, stats)


# ---------------------------------------------------------------- pair values kept between runs


class PairValues:
    """A value computed from two texts' signatures (estimated Jaccard, containment share), by pair
    of text keys: those known from earlier runs are looked up, only the others are computed.

    The value depends on the two texts alone (and the signature settings, which the file names),
    so after a re-run that changed 1% of the inputs ~99% of the pairs are looked up instead of
    reading their signatures from every part again. A pair is found by a 64-bit digest of its
    two 16-byte text keys and confirmed by a second, independent one: a wrong value needs both
    to collide. Every pair asked for in this run is kept for the next (`save`), and no other, so
    the file follows the corpus instead of growing with every run."""

    def __init__(
        self, keys: np.ndarray | None = None, checks: np.ndarray | None = None, values: np.ndarray | None = None
    ):
        self._keys = keys if keys is not None else np.empty(0, dtype=_U64)  # sorted, unique
        self._checks = checks if checks is not None else np.empty(0, dtype=_U64)
        self._values = values if values is not None else np.empty(0, dtype=np.float64)
        self._asked: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.looked_up = 0
        self.computed = 0

    @staticmethod
    def digests(text_key: np.ndarray, left: np.ndarray, right: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(lookup digest, check digest) of the unordered pairs (text_key[left], text_key[right])."""
        words = np.ascontiguousarray(text_key, dtype="S16").view("<u8").reshape(-1, 2)
        a, b = words[left], words[right]
        swap = (a[:, 0] > b[:, 0]) | ((a[:, 0] == b[:, 0]) & (a[:, 1] > b[:, 1]))
        low, high = np.where(swap[:, None], b, a), np.where(swap[:, None], a, b)
        key = _mix64(low[:, 0] ^ _mix64(high[:, 0] + _U64(0x9E3779B97F4A7C15)))
        check = _mix64(low[:, 1] ^ _mix64(high[:, 1] + _U64(0xD1B54A32D192ED03)))
        return key, check

    def values(
        self, text_key: np.ndarray, left: np.ndarray, right: np.ndarray, compute: Callable[[np.ndarray], np.ndarray]
    ) -> np.ndarray:
        """The value of every pair (text_key[left[i]], text_key[right[i]]): looked up when known,
        else `compute(positions)` for the positions i of the unknown ones."""
        key, check = self.digests(text_key, left, right)
        out = np.empty(len(key), dtype=np.float64)
        known = np.zeros(len(key), dtype=bool)
        if len(self._keys) and len(key):
            at = np.minimum(np.searchsorted(self._keys, key), len(self._keys) - 1)
            known = (self._keys[at] == key) & (self._checks[at] == check)
            out[known] = self._values[at[known]]
        todo = np.flatnonzero(~known)
        if len(todo):
            out[todo] = compute(todo)
        self.looked_up += len(key) - len(todo)
        self.computed += len(todo)
        self._asked.append((key, check, out))
        return out

    def asked(self) -> PairValues:
        """The pairs asked for so far, as a lookup table (a pair whose lookup digest another pair
        shares is left out: it is computed again next time)."""
        if not any(len(k) for k, _, _ in self._asked):
            return PairValues()
        key = np.concatenate([k for k, _, _ in self._asked])
        check = np.concatenate([c for _, c, _ in self._asked])
        value = np.concatenate([v for _, _, v in self._asked])
        order = np.lexsort((check, key))
        key, check, value = key[order], check[order], value[order]
        fresh = np.concatenate(([True], (key[1:] != key[:-1]) | (check[1:] != check[:-1])))
        key, check, value = key[fresh], check[fresh], value[fresh]
        shared = np.zeros(len(key), dtype=bool)
        same = key[1:] == key[:-1]
        shared[1:] |= same
        shared[:-1] |= same
        return PairValues(key[~shared], check[~shared], value[~shared])

    def save(self, path: Path, settings: str) -> None:
        """Write the pairs asked for (temporary file, then rename: a reader never sees half a file)."""
        table = self.asked()
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_name(f".{path.name}.tmp")
        with temporary.open("wb") as handle:
            np.savez(handle, settings=np.array(settings), keys=table._keys, checks=table._checks, values=table._values)
        os.replace(temporary, path)

    @classmethod
    def load(cls, paths: Iterable[Path], settings: str) -> PairValues:
        """The pairs of the files written with the same `settings` (any other file, or one that
        cannot be read, is ignored: its pairs are computed again)."""
        tables = []
        for path in paths:
            if not path.is_file() or path.is_symlink():  # a FIFO would block the read
                continue
            with contextlib.suppress(OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
                with np.load(path, allow_pickle=False) as data:
                    if str(data["settings"]) != settings:
                        continue
                    keys, checks, values = data["keys"], data["checks"], data["values"]
                same_kind = keys.dtype == checks.dtype == _U64 and values.dtype == np.float64
                if (
                    same_kind
                    and keys.ndim == checks.ndim == values.ndim == 1
                    and len(keys) == len(checks) == len(values)
                ):
                    tables.append((keys, checks, values))
        if not tables:
            return cls()
        merged = cls()
        merged._asked = tables
        table = merged.asked()
        return cls(table._keys, table._checks, table._values)


def _unmatchable_signature(key: str, num_perm: int) -> np.ndarray:
    """Random-looking values private to one text: no LSH bucket mate, estimated Jaccard ~0."""
    digest = hashlib.shake_128(f"no-signature\x1f{key}".encode()).digest(4 * num_perm)
    return np.frombuffer(digest, dtype=np.uint32).copy()


def cluster(
    items: Iterable[DedupItem], threshold: float = THRESHOLD, bands: int | None = None, rows: int | None = None
) -> DedupResults:
    """Group duplicates and pick each group's canonical record (all stages in this process).

    One cluster = records with the same canonical URL or the same text hash (transitively),
    records with the same outlet + title whose texts confirm it (containment), plus groups whose
    text is a confirmed near-duplicate (estimated Jaccard >= `threshold`) of the cluster's
    canonical text (star merging, no chains). The canonical is the longest untruncated record
    (else the longest; ties: smallest id). `bands` x `rows` default to `lsh_bands(threshold, num_perm)`.
    """
    if not 0.0 < threshold <= 1.0:
        raise ValueError(f"threshold must be in (0, 1], got {threshold}")
    items = list(items)
    ids = [item.id for item in items]
    if len(set(ids)) != len(ids):
        raise ValueError("duplicate record ids given to cluster()")
    if not items:
        return DedupResults({}, DedupStats())
    id_rank = np.empty(len(ids), dtype=np.int64)
    id_rank[np.argsort(np.array(ids), kind="stable")] = np.arange(len(ids))
    records = RecordColumns(
        id_rank=id_rank,
        text_key=np.array([item.text_sha256 for item in items]),
        identity_key=np.array([item.identity for item in items]),
        url_identity=np.array([item.identity.startswith(URL_IDENTITY_PREFIX) for item in items]),
        length=np.array([int(item.length) for item in items], dtype=np.int64),
        truncated=np.array([bool(item.truncated) for item in items], dtype=np.int8),
        shingles=np.array([int(item.shingles) for item in items], dtype=np.int64),
        signed=np.array([item.signature is not None for item in items]),
    )
    node, representative = number_texts(records.text_key)
    num_perm = next((len(item.signature) for item in items if item.signature is not None), NUM_PERM)
    signatures = np.empty((len(representative), num_perm), dtype=np.uint32)
    for text_number, index in enumerate(representative.tolist()):
        item = items[index]
        sig = item.signature
        if sig is None:
            signatures[text_number] = _unmatchable_signature(item.text_sha256, num_perm)
        elif np.shape(sig) != (num_perm,):
            raise ValueError(f"{item.id}: signature has shape {np.shape(sig)}, expected ({num_perm},)")
        else:
            signatures[text_number] = sig
    for item in items:
        if item.signature is not None and np.shape(item.signature) != (num_perm,):
            raise ValueError(f"{item.id}: signature has shape {np.shape(item.signature)}, expected ({num_perm},)")
    if bands is None or rows is None:
        bands, rows = lsh_bands(threshold, num_perm)
    if bands * rows > num_perm:
        raise ValueError(f"{bands} bands x {rows} rows need more than {num_perm} permutations")
    lookup: SignatureRows = signatures.__getitem__
    edges = identity_edges(records, node, lookup)
    group_of_node = groups_of(len(representative), edges)
    pairs = candidate_pairs(signatures, bands, rows, group_of_node)
    confirmed = pairs[pair_jaccard(signatures, pairs[:, 0], pairs[:, 1]) >= threshold] if len(pairs) else pairs
    clusters = finish(records, node, group_of_node, confirmed, lookup)
    clusters.stats.candidate_pairs = len(pairs)
    results = {
        ids[index]: DedupResult(ids[canon], j) if canon != index else DedupResult(None, None)
        for index, (canon, j) in enumerate(zip(clusters.canonical.tolist(), clusters.jaccard.tolist(), strict=True))
    }
    return DedupResults(results, clusters.stats)
