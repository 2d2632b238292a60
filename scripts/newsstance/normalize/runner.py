"""`run_normalize`: plan a run over a corpus, run the engine's stages, commit the outputs.

Planning (here, under the output folder's lock) lists the inputs and diffs them against the
previous index: unchanged files keep their parse results, changed ones become extract tasks.
The stages (`engine`) run under the chosen datatrove executor; the last one, `Commit`,
star-merges duplicates, writes the article shards and quarantine into staging with
`duplicate_of` marked, and swaps them in through the journal (`storage`).
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import shutil
import sys
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from datatrove.pipeline.base import PipelineStep as DatatroveStep

from newsstance.errors import UserError
from newsstance.normalize import dedup, engine, storage
from newsstance.normalize.config import DEFAULT_MAX_BYTES, DEFAULT_SHARD_SIZE, NormalizeConfig, load_config
from newsstance.normalize.crawltime import CrawlPlanner, is_metadata_file
from newsstance.normalize.dates import parse_timestamp
from newsstance.normalize.model import PARSER_VERSION, SCHEMA_VERSION, CrawlContext, FileTask
from newsstance.normalize.steps import input_sha256, read_error_detail
from newsstance.paths import project_root

ROLES = storage.ROLES
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
    notes: list[str] = field(default_factory=list)
    stage_cpu: dict[str, float] = field(default_factory=dict)
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
        if self.stage_cpu:
            lines.append("CPU          " + ", ".join(f"{stage} {cpu:.1f}s" for stage, cpu in self.stage_cpu.items()))
        lines.extend(self.notes)
        lines.extend(f"warning: {w}" for w in self.warnings)
        return lines


def _show(path: Path) -> str:
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- inputs and planning


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


def is_url(path: str | Path) -> bool:
    return isinstance(path, str) and "://" in path


def common_root(paths: Sequence[Path | str], default_root: Path | None = None) -> Path | str:
    """The folder provenance paths (and so article ids) are relative to.

    The project's `corpus/raw` when every input lies inside it, so that normalising
    `corpus/raw` or `corpus/raw/sample` gives the same ids; else the inputs' common folder.
    """
    if any(is_url(p) for p in paths):
        return _url_root([str(p) for p in paths])
    local = [Path(p) for p in paths]
    folders = [p if p.is_dir() else p.parent for p in local]
    if default_root is not None:
        default_root = default_root.resolve()
        if all(f == default_root or default_root in f.parents for f in folders):
            return default_root
    return Path(os.path.commonpath([str(f) for f in folders]))


def _url_root(urls: list[str]) -> str:
    """The common folder of fsspec URLs (one file system)."""
    import fsspec

    protocols = {url.split("://", 1)[0] for url in urls}
    if len(protocols) != 1:
        raise UserError(f"inputs mix file systems ({', '.join(sorted(protocols))}): normalise them separately")
    protocol = protocols.pop()
    fs, _ = fsspec.core.url_to_fs(urls[0])
    inner = [fs._strip_protocol(url).rstrip("/") for url in urls]
    folders = [p if fs.isdir(p) else p.rsplit("/", 1)[0] for p in inner]
    return _url(protocol, os.path.commonpath(folders))


def _url(protocol: str, inner: str) -> str:
    return f"{protocol}://{inner}" if protocol == "memory" else f"{protocol}://{inner.lstrip('/')}"


def _skip(name: str) -> bool:
    return name.startswith(".") or is_metadata_file(name)


def discover(inputs: Sequence[Path | str], exclude: Path) -> list[str]:
    """Raw files under the inputs, sorted: local absolute paths or fsspec URLs. Hidden files,
    sidecars, manifests and `exclude` (the output folder) are skipped.

    The one place that lists inputs (safe discovery in `normalize.sources` may replace it)."""
    found: set[str] = set()
    for path in inputs:
        if is_url(path):
            found.update(_discover_url(str(path)))
            continue
        path = Path(path)
        if path.is_file():
            if not _skip(path.name):
                found.add(str(path))
            continue
        for folder, dirs, files in os.walk(path):
            base = Path(folder)
            dirs[:] = sorted(d for d in dirs if not d.startswith(".") and (base / d) != exclude)
            found.update(str(base / name) for name in files if not _skip(name))
    return sorted(found)


def _discover_url(url: str) -> list[str]:
    import fsspec

    fs, inner = fsspec.core.url_to_fs(url)
    protocol = url.split("://", 1)[0]
    if fs.isfile(inner):
        names = [inner]
    else:
        names = [
            name
            for name in fs.find(inner, withdirs=False)
            if not any(part.startswith(".") for part in name[len(inner) :].split("/"))
            and not _skip(name.rsplit("/", 1)[-1])
        ]
    return [_url(protocol, name) for name in names]


def _relative(path: str, corpus_root: Path | str) -> str:
    if is_url(path):
        root = str(corpus_root).rstrip("/")
        return path[len(root) :].lstrip("/")
    return Path(path).relative_to(corpus_root).as_posix()


def plan_tasks(files: Sequence[str], corpus_root: Path | str, planner: CrawlPlanner) -> list[FileTask]:
    """One FileTask per raw file, with its crawl context, sorted by provenance path (the order of the output)."""
    tasks = []
    for path in files:
        rel = _relative(path, corpus_root)
        if is_url(path):
            tasks.append(FileTask(path, rel, *_url_context(path, planner)))
            continue
        try:
            stat = os.stat(path)
        except OSError:
            stat = os.stat_result((0,) * 10)
        tasks.append(FileTask(path, rel, stat.st_size, planner.context(Path(path), stat)))
    return sorted(tasks, key=lambda task: task.rel)


def _url_context(url: str, planner: CrawlPlanner) -> tuple[int, CrawlContext]:
    """Size and crawl context of a remote input: --crawl-time, else the file system's modification time."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(url)
    try:
        info = fs.info(inner)
    except OSError:
        info = {}
    moment = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(moment, int | float):
        mtime = datetime.fromtimestamp(int(moment), tz=UTC)
    elif isinstance(moment, datetime):
        mtime = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    else:
        mtime = datetime.fromtimestamp(0, tz=UTC)
    if planner.cli_time is not None:
        return int(info.get("size") or 0), CrawlContext(planner.cli_time, "cli", mtime)
    return int(info.get("size") or 0), CrawlContext(None, None, mtime)


def unchanged_entry(task: FileTask, entry: dict[str, Any] | None, cache_key: str) -> bool:
    """The previous result still holds: same code/config/crawl key and the same bytes (or, for an
    unreadable file, the same error)."""
    if not entry or entry.get("key") != engine.entry_key(cache_key, task):
        return False
    try:
        sha256: str | None = input_sha256(task.path)
        detail = None
    except OSError as exc:
        sha256, detail = None, read_error_detail(exc)
    if sha256 is None:
        return entry.get("sha256") is None and [q.get("detail") for q in entry.get("quarantine", [])] == [detail]
    return bool(entry.get("sha256") == sha256)


# ---------------------------------------------------------------- commit stage


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
        summary = _summary_dict(run, index, counts, len(meta), storage.load_manifest(out))
        manifest = _manifest(summary, run, index, outputs)
        staging.file(storage.MANIFEST_NAME).write_bytes(orjson.dumps(manifest, option=orjson.OPT_INDENT_2))
        targets = {name: name for name in outputs}
        targets[storage.INDEX_NAME] = f"{storage.CACHE_DIR}/{storage.INDEX_NAME}"
        targets[storage.MANIFEST_NAME] = storage.MANIFEST_NAME
        staging.commit(targets)
    except BaseException:
        staging.discard()
        raise
    storage.remove_stale(out, {e["part"] for e in index if e.get("part")})


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


def _mark_duplicate(line: bytes, canonical_id: str, jaccard: float, article_validator: Any) -> bytes:
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


# ---------------------------------------------------------------- the run


class _LazyBar:
    """A tqdm bar (stderr) created on the first update: after the worker pool has forked, so
    no tqdm monitor thread exists at fork time."""

    def __init__(self, total: int, enabled: bool, files_per_rank: list[int]):
        self.total = total
        self.enabled = enabled
        self.files_per_rank = files_per_rank
        self._bar: Any = None

    def update(self, rank: int) -> None:
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc="normalize", unit="file", file=sys.stderr, disable=not self.enabled)
        self._bar.update(self.files_per_rank[rank])

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


def _resolve_inputs(inputs: Iterable[Path | str] | None, root: Path) -> list[Path | str]:
    paths = list(inputs) if inputs else [root / "corpus" / "raw"]
    resolved: list[Path | str] = []
    for path in paths:
        if is_url(path):
            import fsspec

            fs, inner = fsspec.core.url_to_fs(str(path))
            if not fs.exists(inner):
                raise UserError(f"input not found: {path}")
            resolved.append(str(path))
            continue
        path = Path(path)
        absolute = (path if path.is_absolute() else Path.cwd() / path).resolve()
        if not absolute.exists():
            raise UserError(f"input not found: {path}")
        resolved.append(absolute)
    return resolved


def _root_label(corpus_root: Path | str) -> str:
    """The corpus root as recorded in the manifest: project-relative when possible."""
    if isinstance(corpus_root, str):
        return corpus_root
    try:
        return corpus_root.relative_to(project_root()).as_posix()
    except ValueError:
        return str(corpus_root)


@dataclass
class _Plan:
    kept: list[dict[str, Any]]
    changed: list[FileTask]
    files: int


def _plan(tasks: list[FileTask], previous: dict[str, dict[str, Any]], cache_key: str) -> _Plan:
    kept, changed = [], []
    for task in tasks:
        entry = previous.get(task.rel)
        if entry is not None and unchanged_entry(task, entry, cache_key):
            kept.append(entry)
        else:
            changed.append(task)
    return _Plan(kept, changed, len(tasks))


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
    executor: str = "local",
    engine_options: engine.EngineOptions | None = None,
) -> Summary:
    """Normalise raw pages into `out_dir` (default corpus/raw -> corpus/normalized); idempotent.

    Unchanged files are not reparsed (their cached results are reused); duplicates are
    re-clustered over the full set whenever anything changed. `executor` picks the datatrove
    executor (local, slurm, ray); the records are the same whichever runs them.
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
    options = engine_options or engine.EngineOptions()
    options.executor, options.workers = executor, workers
    if executor not in engine.EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(engine.EXECUTORS)}, got {executor!r}")
    cli_time = _parse_crawl_time(crawl_time)
    if corpus_root is not None:
        corpus_root = corpus_root if is_url(corpus_root) else Path(corpus_root).resolve()
        outside = [p for p in paths if not _inside(p, corpus_root)]
        if outside:
            raise UserError(f"input {outside[0]} is not inside --corpus-root {corpus_root}")
    else:
        corpus_root = common_root(paths, root / "corpus" / "raw")
    cache_key = f"{_code_fingerprint()}|{cfg.fingerprint()}|{dedup.SIGNATURE_VERSION}"
    settings = {"cache_key": cache_key, "shard_size": shard_size}
    summary = Summary(out_dir=out, corpus_root=Path(corpus_root) if not is_url(corpus_root) else Path("."))
    try:
        with storage.locked(out):
            storage.replay_journal(out)
            previous = storage.load_index(out)
            old_manifest = storage.load_manifest(out)
            live_before = {e["part"] for e in previous.values() if e.get("part")}
            storage.remove_stale(out, live_before)
            planner = CrawlPlanner(Path(corpus_root) if not is_url(corpus_root) else Path("/"), cli_time)
            clock = _StageClock()
            plan = _plan(plan_tasks(discover(paths, out), corpus_root, planner), previous, cache_key)
            del previous  # the stages read the index from the work folder: keep one copy at a time
            clock.lap("plan")
            summary.files = plan.files
            summary.warnings = planner.warnings
            old_files = old_manifest.get("files", {}) if isinstance(old_manifest.get("files"), dict) else {}
            current = {e["path"] for e in plan.kept} | {t.rel for t in plan.changed}
            same_setup = old_manifest.get("settings") == settings and old_manifest.get("corpus_root") == _root_label(
                corpus_root
            )
            if (
                not plan.changed
                and current == set(old_files)
                and same_setup
                and storage.outputs_intact(out, old_manifest)
            ):
                _fill_from_manifest(summary, old_manifest)
                summary.up_to_date = True
                summary.seconds = time.monotonic() - started
                return summary
            del old_manifest, old_files, current
            run_id = f"{int(time.time() * 1000):x}{os.getpid():x}"
            work = out / storage.CACHE_DIR / storage.RUNS_DIR / run_id
            tasks = engine.tasks_for(len(plan.changed), workers, executor)
            _write_work(work, plan, tasks, run_id, out, corpus_root, settings, shard_size, progress, executor)
            plan.kept = []
            if executor == "slurm":
                _submit_slurm(work, options, plan, tasks, cfg, cache_key, run_id, summary)
                return summary
            try:
                _run_stages(work, options, tasks, plan, cfg, cache_key, run_id, progress, clock)
            except BaseException:
                if not (out / storage.JOURNAL_NAME).exists():  # else the swap began: the next run completes it
                    storage.remove_stale(out, live_before)
                raise
            summary.step_stats = engine.stage_counts(work / engine.LOGS_DIR / "extract")
            shutil.rmtree(work, ignore_errors=True)
            _fill_from_manifest(summary, storage.load_manifest(out), changes=True)
            summary.stage_cpu = clock.stages
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UserError(
                f"no space left on the device while normalizing into {out}; the previous output is intact"
            ) from None
        raise
    summary.seconds = time.monotonic() - started
    return summary


def _inside(path: Path | str, root: Path | str) -> bool:
    if is_url(path) or is_url(root):
        return str(path).startswith(str(root).rstrip("/"))
    path, root = Path(path), Path(root)
    return path == root or root in path.parents


def _write_work(
    work: Path,
    plan: _Plan,
    tasks: int,
    run_id: str,
    out: Path,
    corpus_root: Path | str,
    settings: dict[str, Any],
    shard_size: int,
    progress: bool,
    executor: str,
) -> None:
    (work / engine.PLAN_DIR).mkdir(parents=True)
    (work / engine.ENTRIES_DIR).mkdir()
    for rank in range(tasks):
        with (work / engine.PLAN_DIR / f"{rank:05d}.pkl").open("wb") as handle:
            pickle.dump(engine.shard(plan.changed, rank, tasks), handle)
    with (work / engine.INDEX_FILE).open("wb") as handle:
        for entry in plan.kept:
            handle.write(orjson.dumps(entry) + b"\n")
    run = {
        "run_id": run_id,
        "out_dir": str(out),
        "parts_dir": str(out / storage.CACHE_DIR / storage.PARTS_DIR),
        "corpus_root_label": _root_label(corpus_root),
        "settings": settings,
        "shard_size": shard_size,
        "progress": progress,
        "reparsed": len(plan.changed),
        "take_lock": executor == "slurm",
    }
    (work / engine.RUN_FILE).write_bytes(orjson.dumps(run))


def _stage_pipelines(
    work: Path, cfg: NormalizeConfig, cache_key: str, run_id: str
) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    parts_dir = work.parents[1] / storage.PARTS_DIR
    return (
        engine.extract_pipeline(work, parts_dir, run_id, cache_key, cfg),
        [engine.Collect(str(work))],
        [engine.BandPairs(str(work))],
        [Commit(str(work))],
    )


def _run_stages(
    work: Path,
    options: engine.EngineOptions,
    tasks: int,
    plan: _Plan,
    cfg: NormalizeConfig,
    cache_key: str,
    run_id: str,
    progress: bool,
    clock: _StageClock,
) -> None:
    """Local and Ray: the parallel stages through the executor, the one-task stages in this process."""
    extract, _, bands_stage, _ = _stage_pipelines(work, cfg, cache_key, run_id)
    bands, _ = dedup.lsh_bands(dedup.THRESHOLD, dedup.NUM_PERM)
    files_per_rank = [len(engine.shard(plan.changed, rank, tasks)) for rank in range(tasks)]
    bar = _LazyBar(len(plan.changed), progress, files_per_rank)
    options.progress = bar.update
    try:
        if tasks:
            engine.make_executor(options, extract, tasks, work / engine.LOGS_DIR / "extract", "extract").run()
            _check_complete(work, tasks, "extract")
    finally:
        bar.close()
    clock.lap("extract")
    options.progress = None
    engine.Collect(str(work)).run()
    clock.lap("collect")
    band_tasks = engine.band_tasks(bands, options.workers, options.executor)
    engine.make_executor(options, bands_stage, band_tasks, work / engine.LOGS_DIR / "bands", "bands").run()
    _check_complete(work, bands, "bands", folder=engine.PAIRS_DIR, pattern="{:02d}.npy")
    clock.lap("bands")
    commit(work)
    clock.lap("commit")


class _StageClock:
    """CPU seconds per stage: this process plus the worker processes it reaped."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self._last = self._now()

    @staticmethod
    def _now() -> float:
        import resource

        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.process_time() + children.ru_utime + children.ru_stime

    def lap(self, stage: str) -> None:
        now = self._now()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self._last
        self._last = now


def _check_complete(
    work: Path, tasks: int, stage: str, folder: str = engine.ENTRIES_DIR, pattern: str = "{:05d}.jsonl"
) -> None:
    missing = [rank for rank in range(tasks) if not (work / folder / pattern.format(rank)).is_file()]
    if missing:
        raise RuntimeError(
            f"{len(missing)} {stage} task(s) did not finish (first: {missing[0]}); see {work / engine.LOGS_DIR / stage}"
        )


def _submit_slurm(
    work: Path,
    options: engine.EngineOptions,
    plan: _Plan,
    tasks: int,
    cfg: NormalizeConfig,
    cache_key: str,
    run_id: str,
    summary: Summary,
) -> None:
    """One Slurm job array per stage, chained by dependencies; the commit job takes the lock."""
    engine.quiet_datatrove()
    extract, collect, bands_stage, commit_stage = _stage_pipelines(work, cfg, cache_key, run_id)
    bands, _ = dedup.lsh_bands(dedup.THRESHOLD, dedup.NUM_PERM)
    logs = work / engine.LOGS_DIR
    scripts: list[Path] = []
    os.environ.setdefault("NEWSSTANCE_SLURM_SCRIPTS", str(work / "sbatch"))
    previous = None
    stages = [
        ("extract", extract, max(1, tasks)),
        ("collect", collect, 1),
        ("bands", bands_stage, bands),
        ("commit", commit_stage, 1),
    ]
    executors = []
    for name, pipeline, count in stages:
        if name == "extract" and not tasks:
            continue
        previous = engine.make_executor(options, pipeline, count, logs / name, name, depends=previous)
        executors.append(previous)
    if options.slurm_dry_run:
        with engine.slurm_dry_run(scripts):
            executors[-1].run()
        summary.notes.append(
            f"slurm dry run: {len(scripts)} sbatch script(s) in {scripts[0].parent if scripts else work}"
        )
    else:
        executors[-1].run()
        summary.notes.append(f"submitted to Slurm: {len(executors)} chained jobs; work folder {work}")
    summary.reparsed = len(plan.changed)


def _fill_from_manifest(summary: Summary, manifest: dict[str, Any], changes: bool = False) -> None:
    recorded = manifest.get("summary", {})
    if changes:
        for key in ("new", "modified", "deleted", "reparsed"):
            setattr(summary, key, recorded.get(key, 0))
    summary.articles = recorded.get("articles", 0)
    summary.roles = recorded.get("roles", summary.roles)
    summary.duplicates = recorded.get("duplicates", 0)
    summary.truncated = recorded.get("truncated", 0)
    summary.quarantined = recorded.get("quarantined", {})
