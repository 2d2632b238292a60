"""Run the normalize pipeline over a corpus: plan, execute the steps in worker processes,
deduplicate, and swap the complete output set in.

The local executor cuts the sorted file list into contiguous shards (`shard_tasks(tasks,
rank, world_size)`); each shard runs the step chain from `steps` in a worker and streams
its results into its own cache part, so memory stays bounded. The main process then
streams all parts twice in path order: once to cluster duplicates (signatures were made
in the workers), once to write the final shards. A distributed executor can reuse
`plan_tasks`, `process_shard` and `merge` unchanged.
"""

from __future__ import annotations

import hashlib
import math
import multiprocessing
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson

from newsstance.errors import UserError
from newsstance.normalize import storage
from newsstance.normalize.config import DEFAULT_MAX_BYTES, DEFAULT_SHARD_SIZE, NormalizeConfig, load_config
from newsstance.normalize.crawltime import CrawlPlanner
from newsstance.normalize.dates import parse_timestamp
from newsstance.normalize.model import (
    PARSER_VERSION,
    SCHEMA_VERSION,
    Article,
    Cached,
    FileTask,
    Item,
    Quarantine,
    Reason,
)
from newsstance.normalize.steps import LoadFiles, PipelineStep, build_steps, entry_key, run_steps
from newsstance.paths import project_root

ROLES = ("main", "related", "standalone")
MAX_FILES_PER_SHARD = 256
COMPACT_MIN_DEAD_BYTES = 16 * 1024 * 1024


# ---------------------------------------------------------------- summary


@dataclass
class Summary:
    """What a run did; `render()` gives the lines the CLI prints."""

    out_dir: Path
    corpus_root: Path
    files: int = 0
    new: int = 0
    modified: int = 0
    deleted: int = 0
    reparsed: int = 0
    articles: int = 0
    roles: dict[str, int] = field(default_factory=lambda: dict.fromkeys(ROLES, 0))
    duplicates: int = 0
    truncated: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)
    up_to_date: bool = False
    warnings: list[str] = field(default_factory=list)
    step_stats: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def changed(self) -> int:
        return self.new + self.modified + self.deleted

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "changed": self.changed,
            "new": self.new,
            "modified": self.modified,
            "deleted": self.deleted,
            "reparsed": self.reparsed,
            "articles": self.articles,
            "roles": self.roles,
            "duplicates": self.duplicates,
            "truncated": self.truncated,
            "quarantined": self.quarantined,
        }

    def render(self) -> list[str]:
        roles = ", ".join(f"{role} {self.roles.get(role, 0)}" for role in ROLES)
        reasons = ", ".join(f"{reason} {count}" for reason, count in sorted(self.quarantined.items()))
        lines = [
            f"normalized {_show(self.corpus_root)} -> {_show(self.out_dir)}",
            f"files        {self.files:>8}  ({self.changed} changed: {self.new} new, {self.modified} modified, "
            f"{self.deleted} deleted; {self.reparsed} parsed)",
            f"articles     {self.articles:>8}  ({roles})",
            f"duplicates   {self.duplicates:>8}",
            f"truncated    {self.truncated:>8}",
            f"quarantined  {self.quarantined_total:>8}" + (f"  ({reasons})" if reasons else ""),
        ]
        if self.up_to_date:
            lines.append("0 changed: outputs are up to date, nothing rewritten")
        if self.seconds and self.reparsed:
            lines.append(f"time         {self.seconds:>8.1f}s ({self.articles / self.seconds:,.0f} articles/s)")
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines


def _show(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- planning


def _code_fingerprint() -> str:
    """Cached parse results are reused only with the same code, schema and dedup module."""
    package = Path(__file__).resolve().parent
    files = [*sorted(package.rglob("*.py")), package.parent / "ids.py"]
    from newsstance.paths import schema_path

    files.append(schema_path("article.schema.json"))
    digest = hashlib.sha256(PARSER_VERSION.encode())
    for path in files:
        if path.is_file():
            digest.update(path.name.encode())
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def common_root(paths: Sequence[Path], default_root: Path | None = None) -> Path:
    """The folder provenance paths (and so article ids) are relative to.

    The project's `corpus/raw` when every input lies inside it, so that normalising
    `corpus/raw` or `corpus/raw/sample` gives the same ids; else the inputs' common folder.
    """
    folders = [p if p.is_dir() else p.parent for p in paths]
    if default_root is not None:
        default_root = default_root.resolve()
        if all(f == default_root or default_root in f.parents for f in folders):
            return default_root
    return Path(os.path.commonpath([str(f) for f in folders]))


def discover(inputs: Sequence[Path], exclude: Path, root: Path | None = None) -> list[Path]:
    """Every input path, sorted (see `sources.discover`: special files and outside links included,
    to be quarantined; hidden files, sidecars, manifests and `exclude` skipped)."""
    from newsstance.normalize import sources

    return sources.discover(inputs, root or common_root(inputs), exclude).paths


def plan_tasks(
    files: Sequence[Path], corpus_root: Path, planner: CrawlPlanner, previous: dict[str, dict[str, Any]]
) -> list[FileTask]:
    """One FileTask per raw file, with its crawl context and previous cache entry, sorted by
    provenance path (the order of the output)."""
    tasks = []
    for path in files:
        rel = path.relative_to(corpus_root).as_posix()
        try:
            stat = path.stat()
        except OSError:
            stat = os.stat_result((0,) * 10)
        tasks.append(FileTask(str(path), rel, stat.st_size, planner.context(path, stat), previous.get(rel)))
    return sorted(tasks, key=lambda task: task.rel)


def shard_tasks(tasks: Sequence[FileTask], rank: int, world_size: int) -> list[FileTask]:
    """Contiguous, balanced shard `rank` of `world_size` (keeps each shard sorted by path)."""
    base, extra = divmod(len(tasks), world_size)
    start = rank * base + min(rank, extra)
    return list(tasks[start : start + base + (1 if rank < extra else 0)])


# ---------------------------------------------------------------- workers


@dataclass
class ShardResult:
    rank: int
    entries: list[dict[str, Any]]
    part: str | None
    stats: dict[str, dict[str, int]]
    files: int


_worker_steps: list[PipelineStep] | None = None
_worker_settings: tuple[NormalizeConfig, str, Path] | None = None


def _init_worker(config: NormalizeConfig, cache_key: str, parts_dir: Path) -> None:
    global _worker_steps, _worker_settings
    _worker_settings = (config, cache_key, parts_dir)
    _worker_steps = build_steps(config, cache_key)


def process_shard(
    tasks: list[FileTask],
    steps: list[PipelineStep],
    cache_key: str,
    writer: storage.PartWriter,
) -> list[dict[str, Any]]:
    """Run the steps over one shard; write each parsed file's segment; return its index entries."""
    by_rel = {task.rel: task for task in tasks}
    entries: dict[str, dict[str, Any]] = {}
    group: list[Item] = []
    read_sizes = next((step.read_sizes for step in steps if isinstance(step, LoadFiles)), {})

    def flush() -> None:
        if group:
            task = by_rel[group[0].rel]
            entries[task.rel] = _entry_for(task, group, cache_key, writer, read_sizes.pop(task.rel, task.size))
            group.clear()

    for item in run_steps(tasks, steps):
        if group and item.rel != group[0].rel:
            flush()
        group.append(item)
    flush()
    for task in tasks:  # the invariant: every input ends as records or a quarantine entry
        if task.rel not in entries:
            missing = Quarantine(task.rel, None, Reason.NO_ARTICLE, "the reader produced nothing")
            entries[task.rel] = _entry_for(task, [missing], cache_key, writer)
    return [entries[task.rel] for task in tasks]


def _entry_for(
    task: FileTask, items: list[Item], cache_key: str, writer: storage.PartWriter, size: int | None = None
) -> dict[str, Any]:
    if isinstance(items[0], Cached):
        return {**items[0].entry, "cached": True}
    articles = [i for i in items if isinstance(i, Article)]
    quarantined = [i for i in items if isinstance(i, Quarantine)]
    sha256 = next((i.record["provenance"]["sha256"] for i in articles), None) or next(
        (q.sha256 for q in quarantined if q.sha256), None
    )
    entry: dict[str, Any] = {
        "path": task.rel,
        "sha256": sha256,
        "size": task.size if size is None else size,
        "key": entry_key(cache_key, task),
        "records": len(articles),
        "quarantine": [q.as_dict() for q in quarantined],
        "part": None,
        "rec": [0, 0],
        "dd": [0, 0],
    }
    if articles:
        rec = b"".join(orjson.dumps(a.record) + b"\n" for a in articles)
        dd = b"".join(storage.dedup_line(a) for a in articles)
        entry.update(writer.write(rec, dd))
    return entry


def _run_shard_job(job: tuple[int, list[FileTask], str]) -> ShardResult:
    rank, tasks, part = job
    assert _worker_steps is not None and _worker_settings is not None
    _, cache_key, parts_dir = _worker_settings
    writer = storage.PartWriter(parts_dir, part)
    try:
        entries = process_shard(tasks, _worker_steps, cache_key, writer)
    finally:
        wrote = writer.close()
    stats = {step.name: dict(step.stats) for step in _worker_steps}
    for step in _worker_steps:
        step.stats.clear()
    return ShardResult(rank, entries, part if wrote else None, stats, len(tasks))


def files_per_shard(files: int, workers: int) -> int:
    """About 8 shards per worker (load balance, frequent progress), at most MAX_FILES_PER_SHARD each."""
    return max(1, min(MAX_FILES_PER_SHARD, math.ceil(files / max(1, workers * 8))))


def _execute(
    tasks: list[FileTask],
    config: NormalizeConfig,
    cache_key: str,
    parts_dir: Path,
    run_id: str,
    workers: int,
    on_progress: Callable[[int], None],
) -> list[ShardResult]:
    """Run every shard, in-process for one worker, else in a process pool."""
    if not tasks:
        return []
    world_size = math.ceil(len(tasks) / files_per_shard(len(tasks), workers))
    jobs = [(rank, shard_tasks(tasks, rank, world_size), f"p{run_id}-{rank:05d}") for rank in range(world_size)]
    results: list[ShardResult] = []
    if workers <= 1:
        _init_worker(config, cache_key, parts_dir)
        for job in jobs:
            results.append(_run_shard_job(job))
            on_progress(results[-1].files)
        return results
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    with context.Pool(workers, initializer=_init_worker, initargs=(config, cache_key, parts_dir)) as pool:
        for result in pool.imap_unordered(_run_shard_job, jobs):
            results.append(result)
            on_progress(result.files)
    results.sort(key=lambda r: r.rank)
    return results


# ---------------------------------------------------------------- merge


def _dedup_items(
    index: list[dict[str, Any]], reader: storage.SegmentReader, counts: Counter[str], compactor: _Compactor | None
) -> Iterator[Any]:
    from newsstance.normalize import dedup

    for entry in index:
        if not entry["records"]:
            continue
        data = reader.read(entry, "dd")
        if compactor:
            compactor.add(entry, "dd", data)
        for line in data.splitlines():
            item = orjson.loads(line)
            counts[f"role:{item['role']}"] += 1
            counts["truncated"] += item["truncated"]
            yield dedup.DedupItem(
                id=item["id"],
                identity=item["identity"],
                text_sha256=item["text_sha256"],
                length=item["length"],
                truncated=item["truncated"],
                signature=storage.decode_signature(item),
            )


class _Compactor:
    """Rewrites live segments into one fresh part while the merge streams them anyway."""

    def __init__(self, parts_dir: Path, name: str):
        self.writer = storage.PartWriter(parts_dir, name)
        self.locations: dict[str, dict[str, list[int]]] = {}

    def add(self, entry: dict[str, Any], kind: str, data: bytes) -> None:
        location = self.locations.setdefault(entry["path"], {})
        if kind == "dd":
            location["dd"] = self.writer.write(b"", data)["dd"]
        else:
            location["rec"] = self.writer.write(data, b"")["rec"]

    def apply(self, index: list[dict[str, Any]]) -> None:
        self.writer.close()
        for entry in index:
            location = self.locations.get(entry["path"])
            if location:
                entry.update(location, part=self.writer.name)


def _needs_compaction(parts_dir: Path, index: list[dict[str, Any]]) -> bool:
    live: Counter[str] = Counter()
    for entry in index:
        if entry.get("part"):
            live[entry["part"]] += entry["rec"][1] + entry["dd"][1]
    total = 0
    for part in live:
        for kind in ("rec", "dd"):
            path = parts_dir / f"{part}.{kind}.jsonl"
            total += path.stat().st_size if path.is_file() else 0
    dead = total - sum(live.values())
    return dead > COMPACT_MIN_DEAD_BYTES and dead > sum(live.values())


def merge(
    index: list[dict[str, Any]],
    parts_dir: Path,
    staging: storage.Staging,
    shard_size: int,
    progress: bool,
    compactor: _Compactor | None = None,
) -> tuple[dict[str, dict[str, Any]], Counter[str]]:
    """Cluster duplicates, then write article shards and the quarantine file into `staging`.

    Returns the output files' hashes and the counts for the summary.
    """
    from tqdm import tqdm

    from newsstance.normalize import dedup
    from newsstance.records import validator

    counts: Counter[str] = Counter()
    with storage.SegmentReader(parts_dir) as reader:
        results = dedup.cluster(_dedup_items(index, reader, counts, compactor))
        duplicates = {rid: r for rid, r in results.items() if r.duplicate_of is not None and r.duplicate_of != rid}
        article_validator = validator("article.schema.json")
        outputs: dict[str, dict[str, Any]] = {}
        shard: storage.HashingWriter | None = None
        quarantine = storage.HashingWriter(staging.file(storage.QUARANTINE_NAME))
        total = sum(entry["records"] for entry in index)
        bar = tqdm(
            total=total, desc="write", unit="rec", file=sys.stderr, disable=not progress or total < 10_000, leave=False
        )
        for entry in index:
            for item in entry["quarantine"]:
                quarantine.write_line(orjson.dumps(item) + b"\n")
                counts[f"quarantine:{item['reason']}"] += 1
            if not entry["records"]:
                continue
            data = reader.read(entry, "rec")
            if compactor:
                compactor.add(entry, "rec", data)
            for line in data.splitlines(keepends=True):
                if shard is None or shard.records >= shard_size:
                    if shard is not None:
                        outputs[shard.path.name] = shard.close()
                    shard = storage.HashingWriter(staging.file(storage.ARTICLES_PATTERN.format(len(outputs))))
                result = duplicates.get(orjson.loads(line)["id"]) if duplicates else None
                if result is not None:
                    line = _mark_duplicate(line, result, article_validator)
                    counts["duplicates"] += 1
                shard.write_line(line)
                counts["articles"] += 1
            bar.update(entry["records"])
        bar.close()
        if shard is None:  # an empty corpus still gets its (empty) first shard
            shard = storage.HashingWriter(staging.file(storage.ARTICLES_PATTERN.format(0)))
        outputs[shard.path.name] = shard.close()
        outputs[storage.QUARANTINE_NAME] = quarantine.close()
    if compactor:
        compactor.apply(index)
    return outputs, counts


def _mark_duplicate(line: bytes, result: Any, article_validator: Any) -> bytes:
    record = orjson.loads(line)
    record["duplicate_of"] = result.duplicate_of
    jaccard = result.jaccard
    record["provenance"]["near_duplicate_jaccard"] = None if jaccard is None else round(float(jaccard), 4)
    errors = article_validator.errors(record)
    if errors:  # dedup only sets two fields with known-good values: a failure here is a bug
        raise RuntimeError(f"record {record['id']} invalid after dedup: {errors[0]}")
    return orjson.dumps(record) + b"\n"


# ---------------------------------------------------------------- the run


class _LazyBar:
    """A tqdm bar (stderr) created on the first update: after the worker pool has forked, so
    no tqdm monitor thread exists at fork time."""

    def __init__(self, total: int, enabled: bool):
        self.total = total
        self.enabled = enabled
        self._bar: Any = None

    def update(self, count: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc="normalize", unit="file", file=sys.stderr, disable=not self.enabled)
        self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _parse_crawl_time(value: str | datetime | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return parse_timestamp(value.isoformat()) if isinstance(value, datetime) else None
    moment = parse_timestamp(value)
    if moment is None:
        raise UserError(f"--crawl-time {value!r} is not a date and time (use ISO 8601, e.g. 2025-03-12T10:15:00Z)")
    return moment


def _resolve_inputs(inputs: Iterable[Path | str] | None, root: Path) -> list[Path]:
    paths = [Path(p) for p in inputs] if inputs else [root / "corpus" / "raw"]
    resolved = []
    for path in paths:
        absolute = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not absolute.exists():
            raise UserError(f"input not found: {path}")
        resolved.append(absolute)
    return resolved


def _root_label(corpus_root: Path) -> str:
    """The corpus root as recorded in the manifest: project-relative when possible."""
    try:
        return corpus_root.relative_to(project_root()).as_posix()
    except ValueError:
        return str(corpus_root)


def _manifest(
    summary: Summary,
    corpus_root: Path,
    settings: dict[str, Any],
    index: list[dict[str, Any]],
    outputs: dict[str, dict[str, Any]],
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
        "corpus_root": _root_label(corpus_root),
        "settings": settings,
        "summary": summary.as_dict(),
        "outputs": outputs,
        "files": files,
    }


def run_normalize(
    inputs: Iterable[Path | str] | None = None,
    out_dir: Path | str | None = None,
    *,
    crawl_time: str | datetime | None = None,
    workers: int = 1,
    max_bytes: int = DEFAULT_MAX_BYTES,
    config: NormalizeConfig | Path | str | None = None,
    shard_size: int = DEFAULT_SHARD_SIZE,
    progress: bool = False,
    corpus_root: Path | str | None = None,
) -> Summary:
    """Normalise raw pages into `out_dir` (default corpus/raw -> corpus/normalized); idempotent.

    Unchanged files are not reparsed (their cached results are reused); duplicates are
    re-clustered over the full set whenever anything changed.
    """
    started = time.monotonic()
    root = project_root()
    paths = _resolve_inputs(inputs, root)
    out = Path(out_dir) if out_dir else root / "corpus" / "normalized"
    out = (out if out.is_absolute() else Path.cwd() / out).resolve()
    if isinstance(config, NormalizeConfig):
        cfg = (
            config
            if max_bytes == DEFAULT_MAX_BYTES
            else NormalizeConfig(config.chrome, config.default_language, max_bytes)
        )
    else:
        cfg = load_config(Path(config) if config else None, max_bytes=max_bytes)
    if workers < 1:
        raise UserError(f"--workers must be at least 1, got {workers}")
    if shard_size < 1:
        raise UserError(f"shard size must be at least 1, got {shard_size}")
    cli_time = _parse_crawl_time(crawl_time)
    if corpus_root is not None:
        corpus_root = Path(corpus_root).resolve()
        outside = [p for p in paths if p != corpus_root and corpus_root not in p.parents]
        if outside:
            raise UserError(f"input {outside[0]} is not inside --corpus-root {corpus_root}")
    else:
        corpus_root = common_root(paths, root / "corpus" / "raw")
    from newsstance.normalize.dedup import SIGNATURE_VERSION

    cache_key = f"{_code_fingerprint()}|{cfg.fingerprint()}|{SIGNATURE_VERSION}"
    settings = {"cache_key": cache_key, "shard_size": shard_size}
    summary = Summary(out_dir=out, corpus_root=corpus_root)

    with storage.locked(out):
        storage.replay_journal(out)
        previous = storage.load_index(out)
        old_manifest = storage.load_manifest(out)
        storage.remove_stale(out, {e["part"] for e in previous.values() if e.get("part")})
        planner = CrawlPlanner(corpus_root, cli_time)
        from newsstance.normalize import sources

        found = sources.discover(paths, corpus_root, out)
        tasks = plan_tasks(found.paths, corpus_root, planner, previous)
        summary.files = len(tasks)
        summary.warnings = [*found.notes, *planner.warnings]
        parts_dir = out / storage.CACHE_DIR / storage.PARTS_DIR
        run_id = f"{int(time.time() * 1000):x}{os.getpid():x}"

        bar = _LazyBar(len(tasks), progress)
        try:
            results = _execute(tasks, cfg, cache_key, parts_dir, run_id, workers, bar.update)
        except BaseException:
            storage.remove_stale(out, {e["part"] for e in previous.values() if e.get("part")})
            raise
        finally:
            bar.close()
        index = [entry for result in results for entry in result.entries]
        for result in results:
            for step, stats in result.stats.items():
                merged = summary.step_stats.setdefault(step, {})
                for key, value in stats.items():
                    merged[key] = merged.get(key, 0) + value
        new_paths = {e["path"] for e in index}
        old_files = old_manifest.get("files", {}) if isinstance(old_manifest.get("files"), dict) else {}
        summary.reparsed = sum(1 for e in index if not e.get("cached"))
        summary.new = sum(1 for p in new_paths if p not in old_files)
        summary.modified = sum(
            1 for e in index if e["path"] in old_files and old_files[e["path"]].get("sha256") != e["sha256"]
        )
        summary.deleted = sum(1 for p in old_files if p not in new_paths)
        for entry in index:
            entry.pop("cached", None)

        same_setup = old_manifest.get("settings") == settings and old_manifest.get("corpus_root") == _root_label(
            corpus_root
        )
        if summary.reparsed == 0 and summary.changed == 0 and same_setup and storage.outputs_intact(out, old_manifest):
            storage.remove_stale(out, {e["part"] for e in index if e.get("part")})
            _fill_from_manifest(summary, old_manifest)
            summary.up_to_date = True
            summary.seconds = time.monotonic() - started
            return summary

        staging = storage.Staging(out, run_id)
        try:
            compactor = _Compactor(parts_dir, f"c{run_id}") if _needs_compaction(parts_dir, index) else None
            outputs, counts = merge(index, parts_dir, staging, shard_size, progress, compactor)
            summary.articles = counts["articles"]
            summary.duplicates = counts["duplicates"]
            summary.truncated = counts["truncated"]
            summary.roles = {role: counts[f"role:{role}"] for role in ROLES}
            summary.quarantined = {
                k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("quarantine:")
            }
            with staging.file(storage.INDEX_NAME).open("wb") as handle:
                for entry in index:
                    handle.write(orjson.dumps(entry) + b"\n")
            manifest = _manifest(summary, corpus_root, settings, index, outputs)
            staging.file(storage.MANIFEST_NAME).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
            targets = {name: name for name in outputs}
            targets[storage.INDEX_NAME] = f"{storage.CACHE_DIR}/{storage.INDEX_NAME}"
            targets[storage.MANIFEST_NAME] = storage.MANIFEST_NAME
            staging.commit(targets)
        except BaseException:
            if not (out / storage.JOURNAL_NAME).exists():  # else the swap began: the next run completes it
                staging.discard()
                storage.remove_stale(out, {e["part"] for e in previous.values() if e.get("part")})
            raise
        storage.remove_stale(out, {e["part"] for e in index if e.get("part")})
    summary.seconds = time.monotonic() - started
    return summary


def _fill_from_manifest(summary: Summary, manifest: dict[str, Any]) -> None:
    recorded = manifest.get("summary", {})
    summary.articles = recorded.get("articles", 0)
    summary.roles = recorded.get("roles", summary.roles)
    summary.duplicates = recorded.get("duplicates", 0)
    summary.truncated = recorded.get("truncated", 0)
    summary.quarantined = recorded.get("quarantined", {})
