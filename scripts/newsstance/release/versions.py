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
from newsstance.release.features import ARTICLES, DEFAULT

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


def _digest(value: Any) -> str:
    return hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()[:16]


ARTICLE_FIELDS = ("title", "text", "source", "url", "published_at", "language")


def snapshot_from_tables(
    tables: Mapping[str, Mapping[str, pa.Table]], entity_names: list[str], stance_names: list[str], targets: list[str]
) -> dict[str, Any]:
    """ids -> content digests, split of each id, and label counts per split, for a diff."""
    articles: dict[str, str] = {}
    annotations: dict[str, str] = {}
    split_of: dict[str, str] = {}
    labels: dict[str, dict[str, int]] = {}
    for split, table in tables.get(ARTICLES, {}).items():
        columns = [table.column(f).to_pylist() for f in ("id", *ARTICLE_FIELDS)]
        for article_id, *values in zip(*columns, strict=True):
            articles[article_id] = _digest(values)
            split_of[article_id] = split
    for split, table in tables.get(DEFAULT, {}).items():
        counts: Counter[str] = Counter()
        ids = table.column("id").to_pylist()
        entities = table.column("entities").to_pylist()
        stances = table.column("stances").to_pylist()
        for article_id, ents, doc in zip(ids, entities, stances, strict=True):
            annotations[article_id] = _digest([ents, doc])
            split_of.setdefault(article_id, split)
            counts.update(f"entity:{entity_names[e['label']]}" for e in ents)
            counts.update(f"mention_stance:{stance_names[e['stance']]}" for e in ents if e["stance"] >= 0)
            counts.update(f"stance:{t}:{doc[t]}" for t in targets if doc.get(t) is not None)
        labels[split] = dict(counts)
    return {"articles": articles, "annotations": annotations, "split_of": split_of, "labels": labels}


def read_release_tables(release_dir: Path, columns: Mapping[str, Iterable[str]]) -> dict[str, dict[str, pa.Table]]:
    """Tables of a previous release (only the columns asked for), from the files its manifest lists."""
    manifest = read_manifest(release_dir)
    tables: dict[str, dict[str, pa.Table]] = {}
    for config, wanted in columns.items():
        for split, info in manifest.get("configs", {}).get(config, {}).items():
            parts = [pq.read_table(release_dir / f, columns=list(wanted)) for f in info["files"]]
            tables.setdefault(config, {})[split] = pa.concat_tables(parts) if parts else None
    return tables


def diff_snapshots(before: Mapping[str, Any] | None, after: Mapping[str, Any], previous: str | None) -> dict[str, Any]:
    """Full diff (id lists) of two snapshots; `before` None means a first release."""
    if before is None:
        return {
            "previous_version": previous,
            "first_release": True,
            "articles_added": sorted(after["articles"]),
            "articles_removed": [],
            "articles_changed": [],
            "annotations_added": sorted(after["annotations"]),
            "annotations_removed": [],
            "annotations_changed": [],
            "split_moves": [],
            "labels_before": {},
            "labels_after": after["labels"],
        }
    old_a, new_a = before["articles"], after["articles"]
    old_g, new_g = before["annotations"], after["annotations"]
    moved = sorted(i for i, s in after["split_of"].items() if before["split_of"].get(i, s) != s)
    return {
        "previous_version": previous,
        "first_release": False,
        "articles_added": sorted(new_a.keys() - old_a.keys()),
        "articles_removed": sorted(old_a.keys() - new_a.keys()),
        "articles_changed": sorted(i for i in new_a.keys() & old_a.keys() if new_a[i] != old_a[i]),
        "annotations_added": sorted(new_g.keys() - old_g.keys()),
        "annotations_removed": sorted(old_g.keys() - new_g.keys()),
        "annotations_changed": sorted(i for i in new_g.keys() & old_g.keys() if new_g[i] != old_g[i]),
        "split_moves": moved,
        "labels_before": before["labels"],
        "labels_after": after["labels"],
    }


def diff_summary(diff: Mapping[str, Any]) -> dict[str, Any]:
    """Counts only (for the manifest and the card's version history)."""
    keys = (
        "articles_added",
        "articles_removed",
        "articles_changed",
        "annotations_added",
        "annotations_removed",
        "annotations_changed",
        "split_moves",
    )
    return {"previous_version": diff["previous_version"], **{k: len(diff[k]) for k in keys}}


def bump_for(diff: Mapping[str, Any], features_changed: bool) -> str:
    """major when the features change, minor when data changes, else patch."""
    if features_changed:
        return "major"
    if any(
        diff[k]
        for k in (
            "articles_added",
            "articles_removed",
            "articles_changed",
            "annotations_added",
            "annotations_removed",
            "annotations_changed",
        )
    ):
        return "minor"
    return "patch"


def file_entries(release_dir: Path, names: Iterable[str]) -> list[Record]:
    return [
        {"path": name, "sha256": sha256_file(release_dir / name), "size": (release_dir / name).stat().st_size}
        for name in sorted(names)
    ]
