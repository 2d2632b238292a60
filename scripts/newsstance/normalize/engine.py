"""The normalize engine: the pipeline as datatrove stages, run by a datatrove executor.

    plan     (this process)  list the inputs, hash them, diff against the previous index; the
                             changed files are cut into extract tasks, contiguous in path order
    extract  (N tasks)       read -> decode -> reader -> dates -> truncation -> ids -> validate ->
                             MinHash (the steps of `steps`); each task writes its part (record
                             lines, per-record columns, signatures, LSH band keys) and the index
                             entries of its files
    collect  (1 task)        per-record columns of every live record (no signatures): distinct
                             texts and identity groups
    bands    (B tasks)       one LSH band each, over memory-mapped band keys: candidate pairs,
                             confirmed by estimated Jaccard over memory-mapped signatures
    commit   (1 task)        star-merge clusters (no chains), mark `duplicate_of` while writing
                             article shards and quarantine into staging, swap in with the journal

The values read from signatures (containment shares in collect, Jaccard estimates in bands and
commit) are kept per pair of texts in `.cache/pair-values/`: a re-run computes only the pairs
with a changed text and looks the others up.

Every stage reads and writes files in the run's work folder (`.cache/runs/<run>/`), so each runs
under any executor: `local` (processes on this machine, the default), `slurm` (one job array per
stage, chained by dependencies) or `ray`. No stage holds all signatures in one process.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import heapq
import itertools
import math
import multiprocessing
import os
import pickle
import signal
import sys
from array import array
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from copy import deepcopy
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import orjson
from datatrove.pipeline.base import PipelineStep as DatatroveStep

from newsstance.errors import UserError

if TYPE_CHECKING:
    from datatrove.executor.base import PipelineExecutor
    from datatrove.utils.stats import PipelineStats
from newsstance.normalize import dedup, storage
from newsstance.normalize.config import NormalizeConfig
from newsstance.normalize.model import Article, FileTask, Item, Quarantine, Reason
from newsstance.normalize.steps import build_steps

EXECUTORS = ("local", "slurm", "ray")
MAX_FILES_PER_TASK = 256
PLAN_DIR, ENTRIES_DIR, PAIRS_DIR, LOGS_DIR = "plan", "entries", "pairs", "logs"
RUN_FILE, INDEX_FILE, META_FILE, NODES_FILE, GROUPS_FILE, LIVE_FILE = (
    "run.json",
    "index.jsonl",
    "meta.npy",
    "nodes.npy",
    "groups.npy",
    "live.json",  # bytes of live record lines per part (the commit decides on compaction from it)
)
NODE_TEXT_FILE = "node_text.npy"  # text key of every distinct text
NODE_BANDS_FILE = "node_bands.npy"  # LSH band keys of every distinct text, one row per band
# Values of text pairs (containment shares, Jaccard estimates) each stage asked for, saved into the
# work folder's `PAIR_VALUES_DIR`; the commit installs them as `.cache/<PAIR_VALUES_DIR>` for the
# next run (`dedup.PairValues`).
PAIR_VALUES_DIR = "pair-values"
CONTAINMENT_VALUES, JACCARD_VALUES = "containment", "jaccard"


def known_pair_values(run: dict[str, Any], kind: str) -> dedup.PairValues:
    """The pair values of `kind` the last committed run saved (none after a settings change)."""
    folder = Path(run["parts_dir"]).parent / PAIR_VALUES_DIR
    return dedup.PairValues.load(sorted(folder.glob(f"{kind}*.npz")), run["settings"]["cache_key"])


def save_pair_values(work: Path, run: dict[str, Any], name: str, values: dedup.PairValues) -> None:
    values.save(work / PAIR_VALUES_DIR / f"{name}.npz", run["settings"]["cache_key"])


def install_pair_values(work: Path, run: dict[str, Any]) -> None:
    """After the commit: this run's pair values replace the last run's (they are facts about
    texts, so a run that dies before this leaves correct, if fewer, values in place)."""
    new = work / PAIR_VALUES_DIR
    if not new.is_dir():
        return
    target = Path(run["parts_dir"]).parent / PAIR_VALUES_DIR
    target.mkdir(parents=True, exist_ok=True)
    names = {path.name for path in new.glob("*.npz")}
    for name in names:
        os.replace(new / name, target / name)
    for path in target.iterdir():  # a band task of an earlier run with more tasks, a temporary file
        if path.name not in names:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()


@dataclass
class EngineOptions:
    """How the stages are executed (never what they compute)."""

    executor: str = "local"
    workers: int = 1
    slurm_partition: str = "normal"
    slurm_time: str = "04:00:00"
    slurm_dry_run: bool = False
    slurm_env_command: str | None = None
    ray_address: str | None = None
    progress: Callable[[int], None] | None = field(default=None, repr=False)


def tasks_for(files: int, workers: int, executor: str = "local") -> int:
    """Extract tasks: at most MAX_FILES_PER_TASK files each. Locally about 8 per worker (load
    balance, frequent progress; one worker: as few as possible); elsewhere a task costs a process
    or an actor to start, so no more than the files need (and at least one per worker)."""
    if files == 0:
        return 0
    if executor != "local":
        return min(files, max(workers, math.ceil(files / MAX_FILES_PER_TASK)))
    wanted = math.ceil(files / (workers * 8)) if workers > 1 else files
    return math.ceil(files / max(1, min(MAX_FILES_PER_TASK, wanted)))


FILES_PER_LOCAL_WORKER = 200


def extract_workers(files: int, options: EngineOptions) -> int:
    """Local worker processes for `files` changed files: a worker costs a fork and its models
    (~1 CPU-s), so a small re-run parses in fewer processes than `--workers` allows."""
    if options.executor != "local":
        return options.workers
    return max(1, min(options.workers, math.ceil(files / FILES_PER_LOCAL_WORKER)))


def band_tasks(bands: int, workers: int, executor: str) -> int:
    """Tasks of the bands stage: every band its own task on Slurm (the size is unknown when the
    jobs are submitted); else one per worker (a task then takes bands rank, rank + tasks, ...)."""
    return bands if executor == "slurm" else max(1, min(bands, workers))


def shard(items: list[Any], rank: int, world_size: int) -> list[Any]:
    """Contiguous, balanced shard `rank` of `world_size` (keeps each shard in path order)."""
    base, extra = divmod(len(items), world_size)
    start = rank * base + min(rank, extra)
    return items[start : start + base + (1 if rank < extra else 0)]


# ---------------------------------------------------------------- extract stage


class PlannedFiles(DatatroveStep):
    """Source of the extract stage: the `FileTask`s planned for this task."""

    name = "planned files"
    type = "newsstance"

    def __init__(self, work: str):
        super().__init__()
        self.work = work

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[FileTask]:
        path = Path(self.work) / PLAN_DIR / f"{rank:05d}.pkl"
        with path.open("rb") as handle:
            tasks: list[FileTask] = pickle.load(handle)
        self.stat_update("files", value=len(tasks))
        yield from tasks


class WritePart(DatatroveStep):
    """Sink of the extract stage: the task's part (see `storage.PartWriter`) and one index entry
    per planned file - a file the readers produced nothing for is quarantined (every input ends
    as articles or a quarantine entry)."""

    name = "write part"
    type = "newsstance"

    def __init__(self, work: str, parts_dir: str, run_id: str, cache_key: str):
        super().__init__()
        self.work, self.parts_dir, self.run_id, self.cache_key = work, parts_dir, run_id, cache_key

    def run(self, data: Iterable[Item] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Item]:
        with (Path(self.work) / PLAN_DIR / f"{rank:05d}.pkl").open("rb") as handle:
            planned: list[FileTask] = pickle.load(handle)
        by_rel = {task.rel: task for task in planned}
        bands, rows = dedup.lsh_bands(dedup.THRESHOLD, dedup.NUM_PERM)
        writer = storage.PartWriter(Path(self.parts_dir), f"p{self.run_id}-{rank:05d}", bands, rows, dedup.NUM_PERM)
        entries: dict[str, dict[str, Any]] = {}
        current: _FileResults | None = None
        for item in data or ():
            if current is None or item.rel != current.task.rel:
                if current is not None:
                    entries[current.task.rel] = current.entry(writer)
                current = _FileResults(by_rel[item.rel], entry_key(self.cache_key, by_rel[item.rel]))
            current.add(item, writer)
        if current is not None:
            entries[current.task.rel] = current.entry(writer)
        for task in planned:
            if task.rel not in entries:
                missing = _FileResults(task, entry_key(self.cache_key, task))
                missing.add(Quarantine(task.rel, None, Reason.NO_ARTICLE, "the reader produced nothing"), writer)
                entries[task.rel] = missing.entry(writer)
        writer.close()
        lines = b"".join(orjson.dumps(entries[task.rel]) + b"\n" for task in planned)
        (Path(self.work) / ENTRIES_DIR / f"{rank:05d}.jsonl").write_bytes(lines)
        self.stat_update("entries", value=len(planned))
        return iter(())


class _FileResults:
    """One file's index entry, built as its items stream by: articles go to the part in batches
    of `BATCH` (consecutive writes of one writer are contiguous, so the entry's `rec` and `rows`
    ranges just grow), so a WARC archive or a big JSON Lines file never has all its articles in
    memory at once."""

    BATCH = 256

    def __init__(self, task: FileTask, key: str):
        self.task = task
        self.key = key
        self.article_sha256: str | None = None
        self.quarantine_sha256: str | None = None
        self.size: int | None = None
        self.records = 0
        self.quarantine: list[dict[str, Any]] = []
        self.location: dict[str, Any] = {"part": None, "rec": [0, 0], "rows": [0, 0]}
        self.batch: list[Article] = []

    def add(self, item: Item, writer: storage.PartWriter) -> None:
        if isinstance(item, Article | Quarantine) and self.size is None and item.file_size is not None:
            self.size = item.file_size  # the size of the read that gave the hash (sources.read_stable)
        if isinstance(item, Article):
            self.article_sha256 = self.article_sha256 or item.record["provenance"]["sha256"]
            self.batch.append(item)
            if len(self.batch) >= self.BATCH:
                self._write(writer)
        elif isinstance(item, Quarantine):
            self.quarantine_sha256 = self.quarantine_sha256 or item.sha256
            self.quarantine.append(item.as_dict())

    def _write(self, writer: storage.PartWriter) -> None:
        if not self.batch:
            return
        written = writer.write(self.batch)
        self.records += len(self.batch)
        self.batch = []
        if self.location["part"] is None:
            self.location = written
        else:
            self.location["rec"][1] += written["rec"][1]
            self.location["rows"][1] += written["rows"][1]

    def entry(self, writer: storage.PartWriter) -> dict[str, Any]:
        self._write(writer)
        return {
            "path": self.task.rel,
            "sha256": self.article_sha256 or self.quarantine_sha256,
            "size": self.task.size if self.size is None else self.size,
            "key": self.key,
            "stat": list(self.task.stat) if self.task.stat else None,
            "records": self.records,
            "quarantine": self.quarantine,
            **self.location,
        }


def entry_key(cache_key: str, task: FileTask) -> str:
    """What a file's parse result depends on besides its bytes: code, config and crawl context."""
    return crawl_entry_key(cache_key, task.crawl.key())


def crawl_entry_key(cache_key: str, crawl_key: str) -> str:
    return f"{cache_key}|{crawl_key}"


def extract_pipeline(work: Path, parts_dir: Path, run_id: str, cache_key: str, config: NormalizeConfig) -> list[Any]:
    return [
        PlannedFiles(str(work)),
        *build_steps(config),
        WritePart(str(work), str(parts_dir), run_id, cache_key),
    ]


# ---------------------------------------------------------------- collect stage


class KeptColumns:
    """The numbers the collect stage needs of each kept index entry (records, part, first row,
    record bytes), written by the plan as it copies the entries, and where in path order each
    changed input's entry goes: the collect stage then reads the small entry files of this run's
    tasks, not a million JSON lines again (at 1M pages, most of its time)."""

    FILE, PARTS, INSERT = "kept-columns.npy", "kept-parts.json", "kept-insert.npy"

    def __init__(self) -> None:
        self.values = array("q")  # records, part number (-1: none), first row, record bytes
        self.parts: dict[str, int] = {}
        self.insert_at = array("q")  # per changed input: kept entries before it

    def add(self, entry: dict[str, Any]) -> None:
        self.values.extend(entry_columns(entry, self.parts))

    def insert_here(self, kept_before: int) -> None:
        self.insert_at.append(kept_before)

    def save(self, work: Path) -> None:
        _save(work / self.FILE, np.frombuffer(self.values, dtype=np.int64).reshape(-1, 4))
        (work / self.PARTS).write_bytes(orjson.dumps(list(self.parts)))
        _save(work / self.INSERT, np.frombuffer(self.insert_at, dtype=np.int64))

    @classmethod
    def merged(cls, work: Path) -> tuple[np.ndarray, list[str]] | None:
        """Every input's columns in path order (kept ones and this run's), with the part names;
        None when the plan left no columns or the tasks' entries do not match them."""
        try:
            kept = _load(work / cls.FILE)
            names: dict[str, int] = {name: n for n, name in enumerate(orjson.loads((work / cls.PARTS).read_bytes()))}
            insert_at = _load(work / cls.INSERT)
        except (OSError, ValueError):
            return None
        folder = work / ENTRIES_DIR
        paths = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
        new = array("q")
        for path in paths:
            for entry in _entries(path):
                new.extend(entry_columns(entry, names))
        added = np.frombuffer(new, dtype=np.int64).reshape(-1, 4)
        if len(added) != len(insert_at) or kept.ndim != 2 or kept.shape[1] != 4:
            return None
        return np.insert(kept, insert_at, added, axis=0), list(names)


def entry_columns(entry: dict[str, Any], parts: dict[str, int]) -> tuple[int, int, int, int]:
    part = entry.get("part")
    rows, rec = entry.get("rows") or (0, 0), entry.get("rec") or (0, 0)
    number = parts.setdefault(part, len(parts)) if part else -1
    return int(entry["records"]), number, int(rows[0]), int(rec[1]) if part else 0


def _live_meta(
    columns: np.ndarray, names: list[str], arrays: storage.PartArrays
) -> tuple[np.ndarray, list[str], np.ndarray]:
    """Per-record columns of every live record in output order, with each record's part number and
    row, from the inputs' `KeptColumns` in path order; each part's rows are gathered in one
    vectorised read. Parts are renumbered in order of first use."""
    with_records = columns[columns[:, 0] > 0]
    if np.any(with_records[:, 1] < 0):
        raise ValueError("an index entry has records but no part")
    if not len(with_records):
        return np.empty(0, dtype=storage.META_DTYPE), [], np.empty((0, 2), dtype=np.int64)
    used, first = np.unique(with_records[:, 1], return_index=True)
    used = used[np.argsort(first, kind="stable")]  # part numbers in order of first use
    renumber = np.full(len(names), -1, dtype=np.int64)
    renumber[used] = np.arange(len(used))
    count_array = with_records[:, 0]
    ends = np.cumsum(count_array)
    # row of record i = start of its entry + its position within the entry
    rows = np.repeat(with_records[:, 2] - (ends - count_array), count_array) + np.arange(ends[-1])
    parts = np.repeat(renumber[with_records[:, 1]], count_array)
    part_names = [names[n] for n in used.tolist()]
    meta = np.empty(len(rows), dtype=storage.META_DTYPE)
    for number, at in by_part(parts):
        meta[at] = arrays.take(part_names[number], "meta", rows[at])
    return meta, part_names, np.stack((parts, rows), axis=1)


def record_columns(meta: np.ndarray) -> dedup.RecordColumns:
    return dedup.RecordColumns(
        id_rank=np.argsort(np.argsort(meta["id"], kind="stable"), kind="stable"),
        text_key=meta["text"],
        identity_key=meta["identity"],
        url_identity=meta["url"],
        length=meta["length"],
        truncated=meta["truncated"].astype(np.int8),
        shingles=meta["shingles"],
        signed=meta["signed"],
    )


def by_part(part_of: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
    """(part number, positions holding it) for every part present: one sort, not one scan per part."""
    if len(part_of) == 0:
        return
    order = np.argsort(part_of, kind="stable")
    ordered = part_of[order]
    starts = np.flatnonzero(np.concatenate(([True], ordered[1:] != ordered[:-1])))
    for start, end in zip(starts.tolist(), [*starts[1:].tolist(), len(order)], strict=True):
        yield int(ordered[start]), order[start:end]


def node_band_keys(arrays: storage.PartArrays, parts: list[str], nodes: np.ndarray) -> np.ndarray:
    """Every distinct text's band keys, (bands, texts): one read per part for all bands, where
    reading one band at a time in each band task read every part once per band (at 1M pages,
    ~70,000 reads and about half of the bands stage's time)."""
    keys: np.ndarray | None = None
    for part, at in by_part(nodes[:, 0]):
        taken = arrays.take(parts[part], "bands", (slice(None), nodes[at, 1]))
        if keys is None:
            keys = np.empty((taken.shape[0], len(nodes)), dtype=np.uint64)
        keys[:, at] = taken
    return keys if keys is not None else np.empty((0, 0), dtype=np.uint64)


def signature_rows(arrays: storage.PartArrays, parts: list[str], nodes: np.ndarray) -> dedup.SignatureRows:
    """Signature rows by distinct-text number, read from the memory-mapped parts."""
    rep_part, rep_row = nodes[:, 0], nodes[:, 1]

    def rows(which: np.ndarray) -> np.ndarray:
        out = np.empty((len(which), dedup.NUM_PERM), dtype=np.uint32)
        for part, at in by_part(rep_part[which]):
            out[at] = arrays.take(parts[part], "sig", rep_row[which[at]])
        return out

    return rows


class Collect(DatatroveStep):
    """One task: live records' columns, distinct texts and identity groups, into the work folder."""

    name = "collect"
    type = "newsstance"

    def __init__(self, work: str):
        super().__init__()
        self.work = work

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        work = Path(self.work)
        run = load_run(work)
        arrays = storage.PartArrays(Path(run["parts_dir"]))
        merged = KeptColumns.merged(work)
        if merged is None:  # read every index entry
            names: dict[str, int] = {}
            columns = np.array([entry_columns(e, names) for e in merged_index(work)], dtype=np.int64).reshape(-1, 4)
            merged = columns, list(names)
        columns, names_list = merged
        meta, parts, location = _live_meta(columns, names_list, arrays)
        has_part = columns[:, 1] >= 0
        live = np.zeros(len(names_list), dtype=np.int64)
        np.add.at(live, columns[has_part, 1], columns[has_part, 3])
        present = np.unique(columns[has_part, 1]).tolist()
        (work / LIVE_FILE).write_bytes(orjson.dumps({names_list[n]: int(live[n]) for n in present}))
        records = record_columns(meta)
        node, representative = dedup.number_texts(records.text_key)
        nodes = location[representative] if len(representative) else np.empty((0, 2), dtype=np.int64)
        rows = signature_rows(arrays, parts, nodes)
        known = known_pair_values(run, CONTAINMENT_VALUES)
        edges = dedup.identity_edges(records, node, rows, known=known)
        save_pair_values(work, run, CONTAINMENT_VALUES, known)
        groups = dedup.groups_of(len(representative), edges)
        (work / "parts.json").write_bytes(orjson.dumps(parts))
        _save(work / META_FILE, meta)
        _save(work / NODE_TEXT_FILE, np.ascontiguousarray(meta["text"][representative]))
        _save(work / NODE_BANDS_FILE, node_band_keys(arrays, parts, nodes))
        _save(work / "node.npy", node)
        _save(work / NODES_FILE, nodes)
        _save(work / GROUPS_FILE, groups)
        self.stat_update("records", value=len(meta))
        self.stat_update("texts", value=len(representative))
        self.stat_update("containment looked up", value=known.looked_up)
        self.stat_update("containment computed", value=known.computed)
        return iter(())


def _save(path: Path, array: np.ndarray) -> None:
    """A work file (private to the run: a task that dies before it is marked complete is rerun)."""
    with path.open("wb") as handle:
        np.save(handle, array, allow_pickle=False)


def _load(path: Path) -> np.ndarray:
    return np.load(path, allow_pickle=False)


def _npy_row(path: Path, row: int) -> np.ndarray:
    """Row `row` of a 2-D .npy file written by `_save`, read alone (a memory map would keep every
    row read in the resident set)."""
    with path.open("rb") as handle:
        version = np.lib.format.read_magic(handle)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran_order, dtype = read_header(handle)
        if len(shape) != 2 or fortran_order or not 0 <= row < shape[0]:
            raise ValueError(f"{path}: no row {row} in an array of shape {shape}")
        handle.seek(row * shape[1] * dtype.itemsize, os.SEEK_CUR)
        values = np.fromfile(handle, dtype=dtype, count=shape[1])
    if len(values) != shape[1]:
        raise ValueError(f"{path}: row {row} is cut short")
    return values


# ---------------------------------------------------------------- bands stage


class BandPairs(DatatroveStep):
    """Task `rank` = LSH bands `rank`, `rank + world_size`, ...: texts whose band keys are equal,
    not yet in one identity group, confirmed by estimated Jaccard; written as `pairs/<band>.npy`
    (a pair an earlier band of the task already decided is not confirmed again)."""

    name = "band pairs"
    type = "newsstance"

    def __init__(self, work: str, threshold: float = dedup.THRESHOLD):
        super().__init__()
        self.work = work
        self.threshold = threshold

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        bands, _ = dedup.lsh_bands(self.threshold, dedup.NUM_PERM)
        work = Path(self.work)
        run = load_run(work)
        arrays = storage.PartArrays(Path(run["parts_dir"]))  # one set of memory maps for all bands
        parts: list[str] = orjson.loads((work / "parts.json").read_bytes())
        nodes = _load(work / NODES_FILE)
        node_text = _load(work / NODE_TEXT_FILE)
        known = known_pair_values(run, JACCARD_VALUES)
        groups = _load(work / GROUPS_FILE)
        rows = signature_rows(arrays, parts, nodes)
        (work / PAIRS_DIR).mkdir(exist_ok=True)
        seen = np.empty(0, dtype=np.int64)  # sorted pair codes this task has confirmed or rejected
        for band in range(rank, bands, world_size):
            # one band's keys at a time: all of a task's bands at once held ~120 MB more per task
            # at a million pages (peak RSS over 2 GB) and saved no measurable time
            keys = _npy_row(work / NODE_BANDS_FILE, band) if len(nodes) else np.empty(0, dtype=np.uint64)
            codes = dedup.band_pairs(keys, groups) if len(keys) > 1 else np.empty(0, dtype=np.int64)
            fresh = codes[~dedup.sorted_contains(seen, codes)]  # a close pair collides in most bands
            confirmed = dedup.confirm_pairs(fresh, len(nodes), rows, self.threshold, known, node_text)
            seen = np.union1d(seen, fresh)
            _save(work / PAIRS_DIR / f"{band:02d}.npy", confirmed)
            self.stat_update("candidates", value=len(codes))
            self.stat_update("confirmed", value=len(confirmed))
        save_pair_values(work, run, f"{JACCARD_VALUES}-bands-{rank:05d}", known)
        self.stat_update("jaccard looked up", value=known.looked_up)
        self.stat_update("jaccard computed", value=known.computed)
        return iter(())


# ---------------------------------------------------------------- run bookkeeping


def load_run(work: Path) -> dict[str, Any]:
    data: dict[str, Any] = orjson.loads((work / RUN_FILE).read_bytes())
    return data


def merged_index(work: Path) -> Iterator[dict[str, Any]]:
    """Index entries of every input in path order, streamed: the kept ones (`index.jsonl`, in path
    order) merged with those of this run's tasks (each task's file is in path order). Only one
    entry per source is in memory at a time, so a million inputs cost no more than ten. Where the
    plan noted where each changed input goes (`KeptColumns`), its entry is put there without
    comparing paths."""
    folder = work / ENTRIES_DIR
    tasks = sorted(folder.glob("*.jsonl")) if folder.is_dir() else []
    try:
        insert_at = _load(work / KeptColumns.INSERT)
    except (OSError, ValueError):
        insert_at = None
    if insert_at is not None and sum(path.read_bytes().count(b"\n") for path in tasks) == len(insert_at):
        return _placed(_entries(work / INDEX_FILE), itertools.chain.from_iterable(map(_entries, tasks)), insert_at)
    sources = [work / INDEX_FILE, *tasks]
    return heapq.merge(*(_entries(path) for path in sources), key=lambda entry: str(entry["path"]))


def _placed(
    kept: Iterator[dict[str, Any]], changed: Iterator[dict[str, Any]], insert_at: np.ndarray
) -> Iterator[dict[str, Any]]:
    """The kept entries with changed entry i placed before kept entry `insert_at[i]`."""
    positions = insert_at.tolist()
    at = 0
    for number, entry in enumerate(kept):
        while at < len(positions) and positions[at] <= number:
            yield next(changed)
            at += 1
        yield entry
    yield from changed


def _entries(path: Path) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line in handle:
            entry: dict[str, Any] = orjson.loads(line)
            yield entry


# ---------------------------------------------------------------- executors


def _die_with_parent(parent: int) -> None:
    """A worker ends when the process that started it ends (kill -9 included): no orphan keeps
    working on a folder whose lock the parent held."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle


def release_freed_memory() -> None:
    """Give the heap's freed pages back to the system (glibc keeps them otherwise). The stages that
    run in the submitting process (plan, collect) free hundreds of MB at a million pages; kept,
    every task forked afterwards would map them too, and summed over the process tree they counted
    once per task (at 1M pages, a peak of 2.2 GB during the bands stage)."""
    gc.collect()
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)


def quiet_datatrove() -> None:
    from datatrove.utils.logging import logger

    logger.disable("datatrove")


_ACTIVE: Any = None  # the executor whose tasks forked workers run


def _run_rank(rank: int) -> int:
    assert _ACTIVE is not None
    _ACTIVE.run_rank(rank)
    return rank


@cache
def local_executor_class() -> type[PipelineExecutor]:
    """datatrove's local executor, with workers forked from this process that die with it, a
    fresh copy of the steps per task, no per-task log handlers and a progress callback per
    finished task. (Built on first use: importing datatrove's executors costs ~0.4 s.)"""
    from datatrove.executor.local import LocalPipelineExecutor
    from datatrove.utils.stats import PipelineStats

    class LocalExecutor(LocalPipelineExecutor):
        def __init__(self, *args: Any, progress: Callable[[int], None] | None = None, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self.progress = progress

        def run_rank(self, rank: int) -> None:
            pipeline: list[Any] = self.pipeline  # type: ignore[has-type]
            self.pipeline = deepcopy(pipeline)
            try:
                self._run_for_rank(rank)
            finally:
                self.pipeline = pipeline

        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
            """datatrove's per-task run (pipe the steps, save the task's stats, mark it completed)
            without its per-task log handlers: setting those up costs more than a small task."""
            if self.is_rank_completed(rank):
                return PipelineStats()
            data: Any = None
            for step in self.pipeline:
                data = step(data, rank, self.world_size)
            if data is not None:
                deque(data, maxlen=0)
            stats = PipelineStats(self.pipeline)
            with self.logging_dir.open(f"stats/{rank:05d}.json", "w") as handle:
                stats.save_to_disk(handle)
            self.mark_rank_as_completed(rank)
            return stats

        def run(self) -> None:
            global _ACTIVE
            ranks = self.get_incomplete_ranks(range(self.tasks))
            if self.workers <= 1 or len(ranks) <= 1:
                for rank in ranks:
                    self.run_rank(rank)
                    if self.progress:
                        self.progress(rank)
                return
            methods = multiprocessing.get_all_start_methods()
            context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
            if context.get_start_method() == "fork":
                for step in self.pipeline:  # models loaded once here, shared by the forked workers
                    warm = getattr(step, "warm", None)
                    if callable(warm):
                        warm()
            _ACTIVE = self
            try:
                with context.Pool(min(self.workers, len(ranks)), _die_with_parent, (os.getpid(),)) as pool:
                    for rank in pool.imap_unordered(_run_rank, ranks):
                        if self.progress:
                            self.progress(rank)
            finally:
                _ACTIVE = None

    return LocalExecutor


def make_executor(
    options: EngineOptions, pipeline: list[Any], tasks: int, logging_dir: Path, job_name: str, depends: Any = None
) -> PipelineExecutor:
    """The datatrove executor of one stage."""
    quiet_datatrove()
    if options.executor == "local":
        return local_executor_class()(
            pipeline,
            tasks=tasks,
            workers=options.workers,
            logging_dir=str(logging_dir),
            skip_completed=True,
            progress=options.progress,
        )
    if options.executor == "ray":
        return _ray_executor(options, pipeline, tasks, logging_dir)
    if options.executor == "slurm":
        from datatrove.executor.slurm import SlurmPipelineExecutor

        return SlurmPipelineExecutor(
            pipeline,
            tasks=tasks,
            time=options.slurm_time,
            partition=options.slurm_partition,
            job_name=f"newsstance-{job_name}",
            logging_dir=str(logging_dir),
            slurm_logs_folder=str(logging_dir / "slurm"),
            env_command=options.slurm_env_command or f"source {Path(sys.prefix) / 'bin' / 'activate'}",
            depends=depends,
            cpus_per_task=1,
            mem_per_cpu_gb=2,
            requeue=False,
        )
    raise UserError(f"--executor must be one of {', '.join(EXECUTORS)}, got {options.executor!r}")


def _ray_executor(options: EngineOptions, pipeline: list[Any], tasks: int, logging_dir: Path) -> PipelineExecutor:
    try:
        import ray
        from datatrove.executor.ray import RayPipelineExecutor
    except ImportError:
        raise UserError("--executor ray needs Ray: pip install 'newsstance[ray]'") from None

    class RayExecutor(RayPipelineExecutor):
        def _run_for_rank(self, rank: int, local_rank: int = 0, node_rank: int = -1) -> PipelineStats:
            quiet_datatrove()
            return super()._run_for_rank(rank, local_rank, node_rank)

    if not ray.is_initialized():
        ray.init(
            address=options.ray_address,
            num_cpus=None if options.ray_address else max(1, options.workers),
            include_dashboard=False,
            log_to_driver=False,
            configure_logging=False,
        )
    return RayExecutor(
        pipeline,
        tasks=tasks,
        workers=max(1, options.workers),
        logging_dir=str(logging_dir),
        cpus_per_task=1,
        mem_per_cpu_gb=0.25,
    )


@contextlib.contextmanager
def slurm_dry_run(scripts: list[Path]) -> Iterator[None]:
    """Write the sbatch scripts instead of submitting them (no Slurm needed)."""
    from datatrove.executor import slurm

    real = slurm.launch_slurm_job

    def record(contents: str, job_id_retriever: Any, *args: str) -> str:
        name = f"{len(scripts):02d}.sbatch"
        path = Path(os.environ.get("NEWSSTANCE_SLURM_SCRIPTS", ".")) / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(contents)
        scripts.append(path)
        return f"dry-run-{len(scripts)}"

    slurm.launch_slurm_job = record
    try:
        yield
    finally:
        slurm.launch_slurm_job = real


def stage_counts(logging_dir: Path) -> dict[str, dict[str, int]]:
    """The per-step counters datatrove saved for every task of a stage, summed."""
    totals: dict[str, dict[str, int]] = {}
    for path in sorted((logging_dir / "stats").glob("*.json")):
        for step in orjson.loads(path.read_bytes()):
            name = str(step.get("name", "")).split(": ", 1)[-1]
            counts = totals.setdefault(name, {})
            for key, value in step.get("stats", {}).items():
                if isinstance(value, dict) and "total" in value:
                    counts[key] = counts.get(key, 0) + int(value["total"])
                elif isinstance(value, int | float):
                    counts[key] = counts.get(key, 0) + int(value)
    return totals


def count_roles(meta: np.ndarray) -> Counter[str]:
    counts: Counter[str] = Counter()
    for number, role in enumerate(storage.ROLES):
        counts[f"role:{role}"] = int(np.count_nonzero(meta["role"] == number))
    counts["truncated"] = int(np.count_nonzero(meta["truncated"]))
    return counts
