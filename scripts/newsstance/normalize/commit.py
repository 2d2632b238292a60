"""The commit stage: the run's clusters from the confirmed band pairs, article shards with
`duplicate_of` marked (by record position: no record is parsed to find its id), quarantine,
index and manifest, staged and swapped in through the journal (`storage.Staging`).

One task today (it streams every record line once, in output order); outputs whose bytes are
already in place are not rewritten.
"""

from __future__ import annotations

import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from datatrove.pipeline.base import PipelineStep as DatatroveStep

from newsstance.normalize import dedup, engine, remote, storage
from newsstance.normalize.model import PARSER_VERSION, SCHEMA_VERSION
from newsstance.records import Validator

ROLES = storage.ROLES
COMPACT_MIN_DEAD_BYTES = 16 * 1024 * 1024


class Commit(DatatroveStep):
    """Last stage (one task): clusters from the confirmed band pairs, article shards with
    `duplicate_of` marked, quarantine, index and manifest staged and swapped in atomically."""

    name = "commit"
    type = "newsstance"

    def __init__(self, work: str):
        super().__init__()
        self.work = work

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        work = Path(self.work)
        run = engine.load_run(work)
        out = Path(run["out_dir"])
        if run["take_lock"]:
            with storage.locked(out):
                storage.replay_journal(out)
                commit(work)
                if run.get("remote"):  # a Slurm run into a URL: out is its mirror
                    remote.publish(remote.connect(run["remote"]), out)
        else:
            commit(work)
        return iter(())


def _pairs(work: Path) -> np.ndarray:
    found = [np.load(p, allow_pickle=False) for p in sorted((work / engine.PAIRS_DIR).glob("*.npy"))]
    found = [f for f in found if len(f)]
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found), axis=0)


def commit(work: Path) -> None:
    """Write and swap in the outputs of the run whose work folder is `work`."""
    from tqdm import tqdm

    from newsstance.records import validator

    run = engine.load_run(work)
    out = Path(run["out_dir"])
    parts_dir = Path(run["parts_dir"])
    index = engine.merged_index(work)
    meta = np.load(work / engine.META_FILE, allow_pickle=False)
    node = np.load(work / "node.npy", allow_pickle=False)
    nodes = np.load(work / engine.NODES_FILE, allow_pickle=False)
    groups = np.load(work / engine.GROUPS_FILE, allow_pickle=False)
    parts: list[str] = orjson.loads((work / "parts.json").read_bytes())
    arrays = storage.PartArrays(parts_dir)
    records = engine.record_columns(meta)
    clusters = dedup.finish(records, node, groups, _pairs(work), engine.signature_rows(arrays, parts, nodes))
    canonical, jaccard = clusters.canonical, clusters.jaccard
    counts = engine.count_roles(meta)
    article_validator = validator("article.schema.json")
    compactor = _Compactor(parts_dir, f"c{run['run_id']}") if _needs_compaction(parts_dir, index) else None

    staging = storage.Staging(out, run["run_id"])
    try:
        outputs: dict[str, dict[str, Any]] = {}
        shard: storage.HashingWriter | None = None
        quarantine = storage.HashingWriter(staging.file(storage.QUARANTINE_NAME))
        number = 0  # the record's position in output order = its row in `meta`
        bar = tqdm(
            total=len(meta),
            desc="write",
            unit="rec",
            file=sys.stderr,
            disable=not run["progress"] or len(meta) < 10_000,
            leave=False,
        )
        with storage.SegmentReader(parts_dir) as reader:
            for entry in index:
                for item in entry["quarantine"]:
                    quarantine.write_line(orjson.dumps(item) + b"\n")
                    counts[f"quarantine:{item['reason']}"] += 1
                if not entry["records"]:
                    continue
                data = reader.read(entry, "rec")
                if compactor:
                    compactor.add(entry, data, arrays)
                for line in data.splitlines(keepends=True):
                    if shard is None or shard.records >= run["shard_size"]:
                        if shard is not None:
                            outputs[shard.path.name] = shard.close()
                        shard = storage.HashingWriter(staging.file(storage.ARTICLES_PATTERN.format(len(outputs))))
                    if canonical[number] != number:
                        target = storage.record_id(int(meta["id"][canonical[number]]))
                        line = _mark_duplicate(line, target, float(jaccard[number]), article_validator)
                        counts["duplicates"] += 1
                    shard.write_line(line)
                    number += 1
                bar.update(entry["records"])
        bar.close()
        if shard is None:  # an empty corpus still gets its (empty) first shard
            shard = storage.HashingWriter(staging.file(storage.ARTICLES_PATTERN.format(0)))
        outputs[shard.path.name] = shard.close()
        outputs[storage.QUARANTINE_NAME] = quarantine.close()
        if compactor:
            compactor.apply(index)
        with staging.file(storage.INDEX_NAME).open("wb") as handle:
            for entry in index:
                handle.write(orjson.dumps(entry) + b"\n")
        old = storage.load_manifest(out)
        summary = _summary_dict(run, index, counts, len(meta), old)
        manifest = _manifest(summary, run, index, outputs)
        staging.file(storage.MANIFEST_NAME).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        targets = {name: name for name in outputs}
        targets[storage.INDEX_NAME] = f"{storage.CACHE_DIR}/{storage.INDEX_NAME}"
        targets[storage.MANIFEST_NAME] = storage.MANIFEST_NAME
        staging.commit(targets, _unchanged_outputs(out, outputs, old))
    except BaseException:
        staging.discard()
        raise
    # this run's work folder stays until the runner has read its stage counters (then removes it)
    storage.remove_stale(out, {e["part"] for e in index if e.get("part")}, keep_run=work.name)


def _unchanged_outputs(out: Path, outputs: dict[str, dict[str, Any]], old: dict[str, Any]) -> frozenset[str]:
    """Outputs whose bytes are already in place (same hash as recorded and on disk): not rewritten,
    so a re-run after a small change leaves most shards (and their modification times) alone."""
    recorded = old.get("outputs")
    if not isinstance(recorded, dict):
        recorded = {}
    same = set()
    for name, info in outputs.items():
        path = out / name
        in_place = recorded.get(name) == info and path.is_file() and path.stat().st_size == info["bytes"]
        if in_place and storage.sha256_file(path) == info["sha256"]:
            same.add(name)
    return frozenset(same)


def _summary_dict(
    run: dict[str, Any], index: list[dict[str, Any]], counts: Counter[str], articles: int, old: dict[str, Any]
) -> dict[str, Any]:
    old_files = old.get("files", {}) if isinstance(old.get("files"), dict) else {}
    paths = {e["path"] for e in index}
    new = sum(1 for p in paths if p not in old_files)
    modified = sum(1 for e in index if e["path"] in old_files and old_files[e["path"]].get("sha256") != e["sha256"])
    deleted = sum(1 for p in old_files if p not in paths)
    return {
        "files": len(index),
        "changed": new + modified + deleted,
        "new": new,
        "modified": modified,
        "deleted": deleted,
        "reparsed": run["reparsed"],
        "articles": articles,
        "roles": {role: counts[f"role:{role}"] for role in ROLES},
        "duplicates": counts["duplicates"],
        "truncated": counts["truncated"],
        "quarantined": {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("quarantine:")},
    }


def _mark_duplicate(line: bytes, canonical_id: str, jaccard: float, article_validator: Validator) -> bytes:
    record = orjson.loads(line)
    record["duplicate_of"] = canonical_id
    record["provenance"]["near_duplicate_jaccard"] = round(jaccard, 4)
    errors = article_validator.errors(record)
    if errors:  # dedup only sets two fields with known-good values: a failure here is a bug
        raise RuntimeError(f"record {record['id']} invalid after dedup: {errors[0]}")
    return orjson.dumps(record) + b"\n"


class _Compactor:
    """Rewrites live segments into one fresh part while the commit streams them anyway."""

    def __init__(self, parts_dir: Path, name: str):
        bands, rows = dedup.lsh_bands(dedup.THRESHOLD, dedup.NUM_PERM)
        self.writer = storage.PartWriter(parts_dir, name, bands, rows, dedup.NUM_PERM)
        self.locations: dict[str, dict[str, Any]] = {}

    def add(self, entry: dict[str, Any], data: bytes, arrays: storage.PartArrays) -> None:
        start, count = entry["rows"]
        meta = np.asarray(arrays.get(entry["part"], "meta")[start : start + count])
        signatures = np.asarray(arrays.get(entry["part"], "sig")[start : start + count])
        self.locations[entry["path"]] = self.writer.write_raw(data, meta, signatures)

    def apply(self, index: list[dict[str, Any]]) -> None:
        self.writer.close()
        for entry in index:
            location = self.locations.get(entry["path"])
            if location:
                entry.update(location)


def _needs_compaction(parts_dir: Path, index: list[dict[str, Any]]) -> bool:
    live: Counter[str] = Counter()
    for entry in index:
        if entry.get("part"):
            live[entry["part"]] += entry["rec"][1]
    total = 0
    for part in live:
        path = parts_dir / f"{part}.rec.jsonl"
        total += path.stat().st_size if path.is_file() else 0
    dead = total - sum(live.values())
    return dead > COMPACT_MIN_DEAD_BYTES and dead > sum(live.values())


def _manifest(
    summary: dict[str, Any], run: dict[str, Any], index: list[dict[str, Any]], outputs: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    files = {
        e["path"]: {
            "sha256": e["sha256"],
            "size": e["size"],
            "records": e["records"],
            "quarantined": len(e["quarantine"]),
            "parser_version": PARSER_VERSION,
        }
        for e in index
    }
    return {
        "parser_version": PARSER_VERSION,
        "schema_version": SCHEMA_VERSION,
        "corpus_root": run["corpus_root_label"],
        "settings": run["settings"],
        "summary": summary,
        "outputs": outputs,
        "files": files,
    }
