"""Semantic versions, the release manifest and the diff against the previous release.

The diff is computed from the previous release's own parquet files (named in its
manifest), so it needs nothing but the `dist/` folder: articles added, removed and
changed (any metadata or text), annotations added, removed and changed, split moves
(must be zero: splits are frozen) and label counts per split before and after.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from newsstance.errors import UserError
from newsstance.records import Record
from newsstance.release.features import ARTICLES, DEFAULT, SILVER

MANIFEST = "manifest.json"
DIFF = "diff.json"
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")


def parse_version(text: str) -> tuple[int, int, int]:
    """`1.2.3` -> (1, 2, 3); anything else (prefix `v`, pre-release, leading zeros) is a user error."""
    match = _SEMVER.match(text or "")
    if not match:
        raise UserError(f"version must be MAJOR.MINOR.PATCH like 1.0.0, got {text!r}")
    return int(match[1]), int(match[2]), int(match[3])


def existing_versions(out: Path) -> list[str]:
    """Released versions in `out` (folders named X.Y.Z holding a manifest), oldest first."""
    if not out.is_dir():
        return []
    found = [p.name for p in out.iterdir() if p.is_dir() and _SEMVER.match(p.name) and (p / MANIFEST).is_file()]
    return sorted(found, key=parse_version)


def previous_version(out: Path, version: str) -> str | None:
    older = [v for v in existing_versions(out) if parse_version(v) < parse_version(version)]
    return older[-1] if older else None


def next_version(previous: str | None, bump: str) -> str:
    if previous is None:
        return "1.0.0"
    major, minor, patch = parse_version(previous)
    if bump == "major":
        return f"{major + 1}.0.0"
    if bump == "minor":
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def read_manifest(release_dir: Path) -> dict[str, Any]:
    try:
        return orjson.loads((release_dir / MANIFEST).read_bytes())
    except FileNotFoundError:
        raise UserError(f"no release manifest in {release_dir}") from None


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def git_commit(root: Path) -> tuple[str | None, bool | None]:
    """HEAD commit of the checkout and whether it has uncommitted changes (None outside git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, check=True)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        )
    except (OSError, subprocess.CalledProcessError):
        return None, None
    return head.stdout.strip(), bool(dirty.stdout.strip())


# --- snapshots: what a diff compares --------------------------------------


def digest(value: Any) -> str:
    """Short content digest of a row's values (any JSON-able structure)."""
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


TOKEN_COLUMNS = ("tokens", "token_starts", "token_ends", "ner_tags")  # derived from text + entities


def digest_columns(config: str, names: list[str]) -> list[str]:
    """Columns whose values make a row's digest: all a user reads, minus those derived from others."""
    if config == SILVER:
        return [n for n in ("id", "entities", "stances", "model") if n in names]
    return [n for n in names if n not in TOKEN_COLUMNS]


class Snapshot:
    """What a user of the release sees, per config: id -> (split, row digest), kept as compact arrow
    columns once a config is complete; plus the gold annotations' digests and the `default` label
    counts per split. Built batch by batch, the same way for a new build and for a previous release."""

    def __init__(self, entity_names: list[str], stance_names: list[str]) -> None:
        self.entity_names = entity_names
        self.stance_names = stance_names
        self._parts: dict[str, dict[str, list[str]]] = {}
        self.annotations: dict[str, str] = {}
        self.labels: dict[str, dict[str, int]] = {}

    def add_batch(self, config: str, split: str, batch: pa.RecordBatch | pa.Table) -> None:
        rows = batch.select(digest_columns(config, batch.schema.names)).to_pylist()
        part = self._parts.setdefault(config, {"id": [], "split": [], "digest": []})
        part["id"] += [r["id"] for r in rows]
        part["split"] += [split] * len(rows)
        part["digest"] += [digest(sorted(r.items())) for r in rows]
        if config == DEFAULT:
            self._count_labels(split, rows)

    def _count_labels(self, split: str, rows: list[dict[str, Any]]) -> None:
        counts: Counter[str] = Counter(self.labels.get(split, {}))
        for row in rows:
            ents, doc = row["entities"], row["stances"]
            self.annotations[row["id"]] = digest([ents, doc])
            counts.update(f"entity:{self.entity_names[e['label']]}" for e in ents)
            counts.update(f"mention_stance:{self.stance_names[e['stance']]}" for e in ents if e["stance"] >= 0)
            counts.update(f"stance:{t}:{v}" for t, v in doc.items() if v is not None and v >= 0)
        self.labels[split] = dict(counts)

    def copy_config(self, other: Snapshot, config: str) -> None:
        """Take a config unchanged from another snapshot (a config kept from the previous release)."""
        if config in other._parts:
            self._parts[config] = other._parts[config]

    def configs(self) -> list[str]:
        return list(self._parts)

    def table(self, config: str) -> pa.Table:
        part = self._parts.get(config, {"id": [], "split": [], "digest": []})
        return pa.table({k: pa.array(v, type=pa.string()) for k, v in part.items()})


def snapshot_release(release_dir: Path, entity_names: list[str], stance_names: list[str]) -> Snapshot:
    """The snapshot of a built release, read back from the parquet files its manifest lists, batch by batch."""
    manifest = read_manifest(release_dir)
    snap = Snapshot(entity_names, stance_names)
    for config, splits in manifest.get("configs", {}).items():
        for split, info in splits.items():
            for name in info["files"]:
                parquet = pq.ParquetFile(release_dir / name)
                wanted = digest_columns(config, parquet.schema_arrow.names)
                for batch in parquet.iter_batches(batch_size=4096, columns=wanted):
                    snap.add_batch(config, split, batch)
    return snap


def _config_diff(before: pa.Table, after: pa.Table) -> tuple[dict[str, dict[str, list[str]]], list[str]]:
    """Per split: ids added, removed, changed; and ids whose split changed."""
    joined = before.join(after, keys="id", join_type="full outer", left_suffix="_old", right_suffix="_new")
    ids = joined.column("id").to_pylist()
    old_split, new_split = joined.column("split_old").to_pylist(), joined.column("split_new").to_pylist()
    old_digest, new_digest = joined.column("digest_old").to_pylist(), joined.column("digest_new").to_pylist()
    per_split: dict[str, dict[str, list[str]]] = {}
    moved: list[str] = []
    for article_id, s_old, s_new, d_old, d_new in zip(ids, old_split, new_split, old_digest, new_digest, strict=True):
        if s_old is None:
            per_split.setdefault(s_new, {"added": [], "removed": [], "changed": []})["added"].append(article_id)
        elif s_new is None:
            per_split.setdefault(s_old, {"added": [], "removed": [], "changed": []})["removed"].append(article_id)
        elif s_old != s_new:
            moved.append(article_id)
        elif d_old != d_new:
            per_split.setdefault(s_new, {"added": [], "removed": [], "changed": []})["changed"].append(article_id)
    for entry in per_split.values():
        for values in entry.values():
            values.sort()
    return per_split, sorted(moved)


def diff_snapshots(before: Snapshot | None, after: Snapshot, previous: str | None) -> dict[str, Any]:
    """Full diff (id lists) of two snapshots; `before` None means a first release."""
    base = before or Snapshot(after.entity_names, after.stance_names)
    configs: dict[str, Any] = {}
    moved: set[str] = set()
    for config in dict.fromkeys([*base.configs(), *after.configs()]):
        per_split, config_moved = _config_diff(base.table(config), after.table(config))
        configs[config] = {split: {k: len(v) for k, v in entry.items()} for split, entry in sorted(per_split.items())}
        moved.update(config_moved)
        if config == ARTICLES:
            articles = {k: sorted(i for e in per_split.values() for i in e[k]) for k in ("added", "removed", "changed")}
    if ARTICLES not in configs:
        articles = {"added": [], "removed": [], "changed": []}
    old_g, new_g = base.annotations, after.annotations
    return {
        "previous_version": previous,
        "first_release": before is None,
        "articles_added": articles["added"],
        "articles_removed": articles["removed"],
        "articles_changed": articles["changed"],
        "annotations_added": sorted(new_g.keys() - old_g.keys()),
        "annotations_removed": sorted(old_g.keys() - new_g.keys()),
        "annotations_changed": sorted(i for i in new_g.keys() & old_g.keys() if new_g[i] != old_g[i]),
        "split_moves": sorted(moved),
        "configs_added": [c for c in after.configs() if c not in base.configs()] if before else after.configs(),
        "configs_removed": [c for c in base.configs() if c not in after.configs()],
        "rows": configs,
        "labels_before": base.labels,
        "labels_after": after.labels,
    }


SUMMARY_KEYS = (
    "articles_added",
    "articles_removed",
    "articles_changed",
    "annotations_added",
    "annotations_removed",
    "annotations_changed",
    "split_moves",
)


def diff_summary(diff: Mapping[str, Any]) -> dict[str, Any]:
    """Counts only (for the manifest and the card's version history)."""
    return {
        "previous_version": diff["previous_version"],
        **{k: len(diff[k]) for k in SUMMARY_KEYS},
        "bump": diff.get("bump"),
        "reasons": diff.get("reasons", []),
    }


# --- the version bump: what a user of the dataset sees ----------------------

BUMP_RULES: tuple[tuple[str, str], ...] = (
    ("first release", "1.0.0"),
    ("a config dropped (--drop-config)", "major"),
    ("a column removed or its type changed", "major"),
    ("labels renamed, removed or reordered (ClassLabel ids change meaning)", "major"),
    ("rows of the `default` test split changed or removed (scores not comparable)", "major"),
    ("rows moved between splits", "major"),
    ("a config added", "minor"),
    ("a column added", "minor"),
    ("labels appended (existing ids keep their meaning)", "minor"),
    ("rows added, removed or changed in any other config/split", "minor"),
    ("card only: licence, name, agreement, benchmark results, template, project config", "patch"),
    ("identical data and card", "nothing built"),
)


def _class_label_change(old: Any, new: Any, path: str, major: list[str], minor: list[str]) -> None:
    """Walk two `Features.to_dict()` trees; record what changed as major or minor reasons."""
    if isinstance(old, dict) and isinstance(new, dict):
        if old.get("_type") == "ClassLabel" and new.get("_type") == "ClassLabel":
            before, after = list(old.get("names", [])), list(new.get("names", []))
            if after[: len(before)] != before:
                major.append(f"labels of {path} renamed, removed or reordered ({before} -> {after})")
            elif len(after) > len(before):
                minor.append(f"labels appended to {path}: {after[len(before) :]}")
            return
        if "_type" in old or "_type" in new:
            if old.get("_type") != new.get("_type"):
                major.append(f"type of {path} changed")
                return
            keys = sorted((set(old) | set(new)) - {"_type"})
            for key in keys:
                if key in ("feature",):
                    _class_label_change(old.get(key), new.get(key), f"{path}[]", major, minor)
                elif old.get(key) != new.get(key):
                    major.append(f"type of {path} changed")
                    return
            return
        for key in old.keys() - new.keys():
            major.append(f"column {path}.{key} removed".replace("..", ".").lstrip("."))
        for key in new.keys() - old.keys():
            minor.append(f"column {path}.{key} added".replace("..", ".").lstrip("."))
        for key in old.keys() & new.keys():
            _class_label_change(old[key], new[key], f"{path}.{key}" if path else key, major, minor)
        return
    if old != new:
        major.append(f"type of {path} changed")


def decide_bump(
    diff: Mapping[str, Any],
    features_before: Mapping[str, Any] | None,
    features_after: Mapping[str, Any],
    card_changes: list[str],
) -> tuple[str | None, list[str]]:
    """(`major`|`minor`|`patch`|None, reasons); None means nothing a user can see changed."""
    if diff.get("first_release"):
        return "major", ["first release"]
    major: list[str] = []
    minor: list[str] = []
    for config in diff.get("configs_removed", []):
        major.append(f"config `{config}` dropped")
    for config in diff.get("configs_added", []):
        minor.append(f"config `{config}` added")
    for config, after in features_after.items():
        before = (features_before or {}).get(config)
        if before is not None:
            _class_label_change(before, after, "", major, minor)
            major[:] = [r.replace("column ", f"column `{config}`.", 1) if r.startswith("column ") else r for r in major]
            minor[:] = [r.replace("column ", f"column `{config}`.", 1) if r.startswith("column ") else r for r in minor]
    if diff.get("split_moves"):
        major.append(f"{len(diff['split_moves'])} row(s) moved between splits")
    whole = {*diff.get("configs_removed", []), *diff.get("configs_added", [])}
    for config, splits in diff.get("rows", {}).items():
        if config in whole:
            continue  # already stated as a config added or dropped
        for split, counts in splits.items():
            parts = [f"{counts[k]} {k}" for k in ("added", "removed", "changed") if counts.get(k)]
            if not parts:
                continue
            text = f"`{config}`/{split}: {', '.join(parts)}"
            if config == DEFAULT and split == "test" and (counts.get("removed") or counts.get("changed")):
                major.append(f"{text} (test scores are not comparable with the previous version)")
            else:
                minor.append(text)
    if major:
        return "major", major + minor
    if minor:
        return "minor", minor
    if card_changes:
        return "patch", card_changes
    return None, []


def file_entries(release_dir: Path, names: Iterable[str]) -> list[Record]:
    return [
        {"path": name, "sha256": sha256_file(release_dir / name), "size": (release_dir / name).stat().st_size}
        for name in sorted(names)
    ]
