"""Frozen, leak-free train/validation/test assignment.

Articles are grouped into clusters that must never straddle splits: near-duplicates
(`duplicate_of`), a page's main article with its related articles (`related_to`), rows
with identical text and rows with the same identity (canonical URL, else outlet + title).
The assignment is frozen in `corpus/splits.jsonl` (tracked in git): an article keeps its
split in every later version; a new cluster is assigned greedily to the split furthest
below its target ratio (gold-annotated clusters first, balanced on gold counts), in an
order fixed by hashes of the member ids, so the same inputs always give the same splits.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from newsstance.errors import UserError
from newsstance.ids import identity_key
from newsstance.records import Record, read_jsonl, write_jsonl
from newsstance.release.features import SPLITS

DEFAULT_RATIOS = (0.8, 0.1, 0.1)


def parse_ratios(text: str | Sequence[float]) -> tuple[float, float, float]:
    """`"0.8,0.1,0.1"` -> (0.8, 0.1, 0.1); three non-negative numbers summing to 1, train > 0."""
    try:
        values = tuple(float(x) for x in (text.split(",") if isinstance(text, str) else text))
    except ValueError:
        raise UserError(f"--ratios must be three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(values) != 3 or any(v < 0 for v in values) or abs(sum(values) - 1) > 1e-6 or values[0] <= 0:
        raise UserError(f"--ratios must be three non-negative numbers summing to 1 with train > 0, got {text!r}")
    return values[0], values[1], values[2]


class _UnionFind:
    def __init__(self, items: Iterable[str]):
        self.parent = {item: item for item in items}

    def find(self, item: str) -> str:
        root = item
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[item] != root:
            self.parent[item], item = root, self.parent[item]
        return root

    def union(self, a: str, b: str) -> None:
        root_a, root_b = self.find(a), self.find(b)
        if root_a != root_b:
            self.parent[max(root_a, root_b)] = min(root_a, root_b)


_URL_PREFIX = re.compile(r"^[a-z][a-z0-9+.-]*://(www\.)?([^/?#:]*)(:\d+)?")


def _coarse_url(url: str) -> str:
    """A key at least as coarse as `canonical_url` (host and path, no query, port or case), cheap to compute:
    only URLs sharing it need the full canonical form."""
    lowered = url.strip().lower()
    return _URL_PREFIX.sub(r"\2", lowered).split("#", 1)[0].split("?", 1)[0].rstrip("/")


def _identity_keys(records: list[Record]) -> dict[str, str]:
    """id -> identity key (canonical URL, else outlet + title), computed in full only where a match is possible."""
    by_coarse: dict[str, list[Record]] = {}
    keys: dict[str, str] = {}
    for record in records:
        url = record.get("url")
        if url:
            by_coarse.setdefault(_coarse_url(url), []).append(record)
        else:
            keys[record["id"]] = identity_key(None, record.get("source"), record["title"])
    for group in by_coarse.values():
        if len(group) > 1:
            for record in group:
                keys[record["id"]] = identity_key(record["url"], record.get("source"), record["title"])
    return keys


def clusters_of(articles: Iterable[Record]) -> dict[str, str]:
    """Article id -> cluster id (the smallest member id) for near-duplicates, pages, same text or identity."""
    records = list(articles)
    forest = _UnionFind(r["id"] for r in records)
    identities = _identity_keys(records)
    first_by_key: dict[str, str] = {}
    for record in records:
        for link in (record.get("duplicate_of"), record.get("related_to")):
            if link and link in forest.parent:
                forest.union(record["id"], link)
        keys = [f"sha:{record['text_sha256']}"]
        if record["id"] in identities:
            keys.append(identities[record["id"]])
        for key in keys:
            other = first_by_key.setdefault(key, record["id"])
            if other != record["id"]:
                forest.union(record["id"], other)
    return {r["id"]: forest.find(r["id"]) for r in records}


@dataclass(frozen=True)
class SplitAssignment:
    split_of: dict[str, str]  # every article id of this build -> split
    new_ids: list[str]  # ids assigned by this build (not in the frozen file before)


def read_frozen(path: Path) -> dict[str, Record]:
    """The frozen assignment (id -> record); an absent file is an empty assignment."""
    if not path.is_file():
        return {}
    frozen: dict[str, Record] = {}
    for number, record in enumerate(read_jsonl(path), start=1):
        if not isinstance(record, dict) or record.get("split") not in SPLITS or not isinstance(record.get("id"), str):
            raise UserError(f'{path}:{number}: expected {{"id": ..., "split": train|validation|test}}')
        frozen[record["id"]] = record
    return frozen


def _hash_order(ids: list[str]) -> bytes:
    """Order of new clusters: a hash of the (sorted) member ids, so input order never matters."""
    return hashlib.sha256("\x1f".join(ids).encode()).digest()


def _pick_split(counts: Mapping[str, int], weight: int, ratios: Sequence[float]) -> str:
    total = sum(counts.values()) + weight
    best = max(
        (ratio * total - counts[split], -index, split)
        for index, (split, ratio) in enumerate(zip(SPLITS, ratios, strict=True))
        if ratio > 0
    )
    return best[2]


def assign_splits(
    cluster_of: Mapping[str, str],
    frozen: Mapping[str, Record],
    gold_ids: set[str],
    ratios: Sequence[float] = DEFAULT_RATIOS,
    stance_labels: Mapping[str, set[str]] | None = None,
    warnings: list[str] | None = None,
) -> SplitAssignment:
    """Keep every frozen article's split; assign new clusters; fail when a cluster straddles splits.

    With `stance_labels` (article id -> stance classes of its gold), new clusters are then moved so that
    every stance class of the corpus has an example in validation and test where the corpus allows
    (`balance_stance_classes`); what cannot be done is appended to `warnings`."""
    members: dict[str, list[str]] = {}
    for article_id, cluster in cluster_of.items():
        members.setdefault(cluster, []).append(article_id)
    split_of: dict[str, str] = {}
    pending: list[list[str]] = []
    for cluster, ids in members.items():
        frozen_splits = {frozen[i]["split"]: i for i in ids if i in frozen}
        if len(frozen_splits) > 1:
            detail = ", ".join(f"{i} in {s}" for s, i in sorted(frozen_splits.items()))
            raise UserError(
                f"near-duplicate cluster {cluster} straddles frozen splits ({detail}); "
                "move one of them in the splits file so the whole cluster shares one split"
            )
        if frozen_splits:
            split_of.update(dict.fromkeys(ids, next(iter(frozen_splits))))
        else:
            pending.append(sorted(ids))
    gold_counts = dict.fromkeys(SPLITS, 0)
    all_counts = dict.fromkeys(SPLITS, 0)
    for article_id, split in split_of.items():
        all_counts[split] += 1
        gold_counts[split] += article_id in gold_ids
    n_gold_of = {ids[0]: len(gold_ids.intersection(ids)) for ids in pending}
    pending.sort(key=lambda ids: (not n_gold_of[ids[0]], _hash_order(ids)))
    for ids in pending:
        n_gold = n_gold_of[ids[0]]
        split = _pick_split(gold_counts, n_gold, ratios) if n_gold else _pick_split(all_counts, len(ids), ratios)
        gold_counts[split] += n_gold
        all_counts[split] += len(ids)
        split_of.update(dict.fromkeys(ids, split))
    if stance_labels:
        balance_stance_classes(split_of, pending, stance_labels, ratios, warnings if warnings is not None else [])
    new_ids = sorted(i for i in split_of if i not in frozen)
    return SplitAssignment(split_of=split_of, new_ids=new_ids)


def _class_counts(split_of: Mapping[str, str], labels: Mapping[str, set[str]]) -> dict[str, Counter[str]]:
    counts: dict[str, Counter[str]] = {split: Counter() for split in SPLITS}
    for article_id, classes in labels.items():
        split = split_of.get(article_id)
        if split is not None:
            counts[split].update(classes)
    return counts


def balance_stance_classes(
    split_of: dict[str, str],
    movable: list[list[str]],
    labels: Mapping[str, set[str]],
    ratios: Sequence[float],
    warnings: list[str],
) -> None:
    """Move new (not frozen) clusters so each stance class appears in validation and test.

    A cluster moves only if its old split keeps at least one example of every class it had there, so a
    move never empties a class elsewhere, and only if the split it joins stays within twice its target
    share of the gold articles (a page with many related articles is not moved into a small split);
    the smallest suitable cluster moves first (hash order breaks ties). Classes that cannot be placed
    are reported, not silently missing."""
    counts = _class_counts(split_of, labels)
    everything: Counter[str] = Counter()
    for split_counts in counts.values():
        everything.update(split_counts)
    clusters = {ids[0]: ids for ids in movable}
    cluster_classes = {key: Counter(c for i in ids for c in labels.get(i, ())) for key, ids in clusters.items()}
    targets = [split for split, ratio in zip(SPLITS, ratios, strict=True) if ratio > 0 and split != "train"]
    gold_in = Counter(split_of[i] for i in labels if i in split_of)
    total = sum(gold_in.values())
    cap = {split: max(1.0, 2 * ratio * total) for split, ratio in zip(SPLITS, ratios, strict=True)}
    n_gold = {key: sum(i in labels for i in ids) for key, ids in clusters.items()}
    for label in sorted(everything, key=lambda c: (everything[c], c)):
        for split in targets:
            if counts[split][label]:
                continue
            candidates = []
            for key, ids in clusters.items():
                source = split_of[ids[0]]
                classes = cluster_classes[key]
                if source == split or not classes[label] or gold_in[split] + n_gold[key] > cap[split]:
                    continue
                if any(counts[source][c] - n < 1 for c, n in classes.items() if counts[source][c]):
                    continue
                candidates.append((len(ids), _hash_order(ids), key))
            if not candidates:
                warnings.append(
                    f"stance class {label} has no example in {split} "
                    f"({everything[label]} in the corpus; their clusters are frozen, too large for {split}, "
                    "or the only examples where they are)"
                )
                continue
            key = min(candidates)[2]
            source = split_of[clusters[key][0]]
            for article_id in clusters[key]:
                split_of[article_id] = split
            counts[source].subtract(cluster_classes[key])
            counts[split].update(cluster_classes[key])
            gold_in[source] -= n_gold[key]
            gold_in[split] += n_gold[key]


def frozen_records(frozen: Mapping[str, Record], assignment: SplitAssignment, version: str) -> list[Record]:
    """The updated frozen file: old entries unchanged (also for articles gone from the corpus), new ones added."""
    merged = dict(frozen)
    for article_id in assignment.new_ids:
        merged[article_id] = {"id": article_id, "split": assignment.split_of[article_id], "since": version}
    return [merged[i] for i in sorted(merged)]


def write_frozen(path: Path, records: list[Record]) -> None:
    write_jsonl(path, records)
