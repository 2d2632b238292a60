"""Integrity checks on the final arrow tables, before anything is written.

They re-derive what the builder produced instead of trusting it: ClassLabel ids in
range (datasets does not check this when reading parquet), every span equal to its text,
spans re-decoded from the BIO tags equal to the entity list, token offsets inside the
text, no article in two splits, no near-duplicate cluster across splits. The BIO and
range checks are vectorised with numpy so they cost little on 100k articles.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from datasets import ClassLabel, Features, List

from newsstance.errors import UserError

Tables = Mapping[str, Mapping[str, pa.Table]]  # config -> split -> table


class IntegrityError(UserError):
    """The release would be inconsistent; nothing was written."""


def _fail(config: str, split: str, message: str) -> IntegrityError:
    return IntegrityError(f"integrity check failed in {config}/{split}: {message}")


def _list_parts(column: pa.ChunkedArray) -> tuple[np.ndarray, pa.Array]:
    """Offsets (rebased to 0) and flat values of a list column."""
    array = column.combine_chunks()
    offsets = array.offsets.to_numpy(zero_copy_only=False).astype(np.int64)
    return offsets - offsets[0], array.flatten()


def _label_paths(features: Features) -> list[tuple[tuple[str, ...], ClassLabel]]:
    """(column path, ClassLabel) for every ClassLabel, through lists and structs."""
    found: list[tuple[tuple[str, ...], ClassLabel]] = []

    def walk(path: tuple[str, ...], feature: object) -> None:
        if isinstance(feature, ClassLabel):
            found.append((path, feature))
        elif isinstance(feature, List):
            walk((*path, "[]"), feature.feature)
        elif isinstance(feature, dict):
            for name, sub in feature.items():
                walk((*path, name), sub)

    for name, feature in features.items():
        walk((name,), feature)
    return found


def _values_at(table: pa.Table, path: tuple[str, ...]) -> pa.Array:
    current: pa.Array = table.column(path[0]).combine_chunks()
    for step in path[1:]:
        current = current.flatten() if step == "[]" else current.field(step)
    return current


def check_class_labels(
    config: str, split: str, table: pa.Table, features: Features, allow_missing: set[tuple[str, ...]]
) -> None:
    for path, label in _label_paths(features):
        values = _values_at(table, path)
        if len(values) == 0:
            continue
        if values.null_count:
            raise _fail(config, split, f"{'.'.join(path)} has null label ids")
        low, high = (v.as_py() for v in pc.min_max(values).values())
        floor = -1 if path in allow_missing else 0
        if low < floor or high >= label.num_classes:
            raise _fail(
                config,
                split,
                f"{'.'.join(path)} label id out of range [{floor}, {label.num_classes - 1}]: min {low}, max {high}",
            )


def check_spans_match_text(config: str, split: str, table: pa.Table) -> None:
    texts = table.column("text").to_pylist()
    ids = table.column("id").to_pylist()
    for article_id, text, entities in zip(ids, texts, table.column("entities").to_pylist(), strict=True):
        for entity in entities:
            start, end = entity["start"], entity["end"]
            if not 0 <= start < end <= len(text) or text[start:end] != entity["text"]:
                raise _fail(
                    config,
                    split,
                    f"article {article_id}: entity [{start}, {end}) text {entity['text']!r} "
                    f"does not match the article text {text[start:end]!r}",
                )


def check_tokens(config: str, split: str, table: pa.Table) -> None:
    """Token offsets increase, lie inside the text and cover exactly the token strings' lengths."""
    offsets, starts = _list_parts(table.column("token_starts"))
    _, ends = _list_parts(table.column("token_ends"))
    tok_offsets, tokens = _list_parts(table.column("tokens"))
    _, tags = _list_parts(table.column("ner_tags"))
    if not (np.array_equal(offsets, tok_offsets) and len(starts) == len(ends) == len(tokens) == len(tags)):
        raise _fail(config, split, "tokens, token_starts, token_ends and ner_tags differ in length")
    starts_np = starts.to_numpy(zero_copy_only=False).astype(np.int64)
    ends_np = ends.to_numpy(zero_copy_only=False).astype(np.int64)
    lengths = pc.utf8_length(tokens).to_numpy(zero_copy_only=False)
    text_lengths = pc.utf8_length(table.column("text")).to_numpy().astype(np.int64)
    row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    bad = (ends_np - starts_np != lengths) | (starts_np < 0) | (ends_np > text_lengths[row]) | (lengths <= 0)
    first_in_row = np.ones(len(starts_np), dtype=bool)
    first_in_row[1:] = row[1:] != row[:-1]
    bad |= ~first_in_row & (starts_np < np.concatenate([[0], ends_np[:-1]]))
    if bad.any():
        first = int(np.argmax(bad))
        article_id = table.column("id")[int(row[first])]
        raise _fail(
            config,
            split,
            f"article {article_id}: token {first - offsets[row[first]]} has offsets that do not match its text",
        )


def decode_bio(tags: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, ...]:
    """Spans (row, first token, last token, label id) from flat BIO tag ids; raises on an orphan I tag."""
    n = len(tags)
    row = np.repeat(np.arange(len(offsets) - 1), np.diff(offsets))
    is_begin = tags % 2 == 1
    is_inside = (tags > 0) & (tags % 2 == 0)
    row_start = np.zeros(n, dtype=bool)
    row_start[offsets[:-1][np.diff(offsets) > 0]] = True
    prev = np.concatenate([[0], tags[:-1]])
    orphan = is_inside & (row_start | ~((prev == tags) | (prev == tags - 1)))
    if orphan.any():
        raise ValueError(int(row[int(np.argmax(orphan))]))
    first = np.flatnonzero(is_begin)
    boundaries = np.flatnonzero(~is_inside | row_start)
    nxt = np.searchsorted(boundaries, first, side="right")
    last = np.where(nxt < len(boundaries), boundaries[np.minimum(nxt, len(boundaries) - 1)], n) - 1
    return row[first], first, last, (tags[first] - 1) // 2


def check_bio_agrees(config: str, split: str, table: pa.Table) -> None:
    """Spans decoded from BIO tags + token offsets must equal the entity list, label for label."""
    offsets, tags = _list_parts(table.column("ner_tags"))
    _, starts = _list_parts(table.column("token_starts"))
    _, ends = _list_parts(table.column("token_ends"))
    ent_offsets, ents = _list_parts(table.column("entities"))
    ids = table.column("id")
    try:
        row, first, last, label = decode_bio(tags.to_numpy(zero_copy_only=False).astype(np.int64), offsets)
    except ValueError as exc:
        raise _fail(
            config, split, f"article {ids[int(str(exc))]}: an I- tag follows neither B- nor I- of its label"
        ) from None
    starts_np = starts.to_numpy(zero_copy_only=False).astype(np.int64)
    ends_np = ends.to_numpy(zero_copy_only=False).astype(np.int64)
    bio = np.stack([row, starts_np[first], ends_np[last], label]) if len(first) else np.zeros((4, 0), np.int64)
    ent_row = np.repeat(np.arange(len(ent_offsets) - 1), np.diff(ent_offsets))
    span = (
        np.stack(
            [ent_row]
            + [ents.field(f).to_numpy(zero_copy_only=False).astype(np.int64) for f in ("start", "end", "label")]
        )
        if len(ents)
        else np.zeros((4, 0), np.int64)
    )
    bio = bio[:, np.lexsort(bio[::-1])]
    span = span[:, np.lexsort(span[::-1])]
    if bio.shape != span.shape or not np.array_equal(bio, span):
        if bio.shape == span.shape:
            where = int(np.argmax((bio != span).any(axis=0)))
            bad_row = int(span[0, where])
        else:
            per_row = (np.bincount(bio[0], minlength=len(ids)), np.bincount(span[0], minlength=len(ids)))
            bad_row = int(np.argmax(per_row[0] != per_row[1]))
        raise _fail(config, split, f"article {ids[bad_row]}: BIO tags do not agree with the entity spans")


def check_splits_disjoint(config: str, tables: Mapping[str, pa.Table], cluster_of: Mapping[str, str]) -> dict[str, str]:
    """No id in two splits (or twice in one); no near-duplicate cluster in two splits. Returns id -> split."""
    split_of: dict[str, str] = {}
    cluster_split: dict[str, tuple[str, str]] = {}
    for split, table in tables.items():
        for article_id in table.column("id").to_pylist():
            if article_id in split_of:
                raise _fail(config, split, f"article {article_id} is also in {split_of[article_id]}")
            split_of[article_id] = split
            cluster = cluster_of.get(article_id, article_id)
            seen = cluster_split.setdefault(cluster, (split, article_id))
            if seen[0] != split:
                raise _fail(config, split, f"article {article_id} is a near-duplicate of {seen[1]} in {seen[0]}")
    return split_of


def check_release(
    tables: Tables,
    features: Mapping[str, Features],
    cluster_of: Mapping[str, str],
    allow_missing: Mapping[str, set[tuple[str, ...]]],
) -> None:
    """Every check on every config and split; the first failure raises IntegrityError."""
    split_everywhere: dict[str, tuple[str, str]] = {}
    for config, splits in tables.items():
        for split, table in splits.items():
            check_class_labels(config, split, table, features[config], allow_missing.get(config, set()))
            if "entities" in table.column_names:
                check_spans_match_text(config, split, table)
                check_tokens(config, split, table)
                check_bio_agrees(config, split, table)
        for article_id, split in check_splits_disjoint(config, splits, cluster_of).items():
            other = split_everywhere.setdefault(article_id, (split, config))
            if other[0] != split:
                raise _fail(config, split, f"article {article_id} is in {other[0]} in the {other[1]} config")
