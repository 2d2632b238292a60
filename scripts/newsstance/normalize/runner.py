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
import math
import os
import pickle
import shutil
import sys
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from newsstance.errors import UserError
from newsstance.normalize import dedup, engine, remote, storage
from newsstance.normalize.commit import PREVIOUS_FILE, Commit, commit
from newsstance.normalize.config import DEFAULT_MAX_BYTES, DEFAULT_SHARD_SIZE, NormalizeConfig, load_config
from newsstance.normalize.crawltime import CrawlPlanner, is_metadata_file
from newsstance.normalize.dates import parse_timestamp
from newsstance.normalize.model import PARSER_VERSION, CrawlContext, FileTask
from newsstance.normalize.steps import input_sha256, read_error_detail
from newsstance.paths import project_root

ROLES = storage.ROLES


# ---------------------------------------------------------------- summary


@dataclass
class Summary:
    """What a run did; `render()` gives the lines the CLI prints."""

    out_dir: Path | str
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


def _show(path: Path | str) -> str:
    if isinstance(path, str):
        return path
    try:
        return path.resolve().relative_to(Path.cwd().resolve()).as_posix() or "."
    except ValueError:
        return str(path)


# ---------------------------------------------------------------- inputs and planning


# Modules that run after (or beside) parsing: a change to them leaves every parse result valid,
# so upgrading the commit or the CLI does not reparse a million pages.
NOT_PARSING = frozenset({"runner.py", "commit.py", "outfile.py", "cli.py", "remote.py", "silver.py"})


def _code_fingerprint() -> str:
    """Cached parse results are reused only with the same parsing code, schema and dedup module."""
    package = Path(__file__).resolve().parent
    files = [*sorted(p for p in package.rglob("*.py") if p.name not in NOT_PARSING), package.parent / "ids.py"]
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


def discover(inputs: Sequence[Path | str], exclude: Path, root: Path | str | None = None) -> list[str]:
    """Raw inputs, sorted: local absolute paths or fsspec URLs. Hidden files, sidecars, manifests
    and `exclude` (the output folder) are skipped."""
    return discover_inputs(inputs, exclude, root)[0]


def discover_inputs(
    inputs: Sequence[Path | str], exclude: Path, root: Path | str | None = None
) -> tuple[list[str], list[str]]:
    """(inputs, notes). Local folders are walked by `sources.discover`: special files and links out
    of `root` are listed (the load step quarantines them unopened), symlinked folders inside `root`
    are walked once each; the notes name folders reached twice (aliases, loops)."""
    from newsstance.normalize import sources

    found: set[str] = set()
    local = [Path(path) for path in inputs if not is_url(path)]
    for path in inputs:
        if is_url(path):
            found.update(_discover_url(str(path)))
    notes: list[str] = []
    if local:
        local_root = Path(root) if root is not None and not is_url(root) else Path(os.path.commonpath(local))
        discovery = sources.discover(local, local_root, exclude)
        found.update(str(path) for path in discovery.paths)
        notes = discovery.notes
    return sorted(found), notes


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
    source = TaskSource(files, corpus_root, planner)
    return [source.task(number) for number in source.order]


class TaskSource:
    """The inputs' tasks in provenance-path order, built one at a time on demand: only the
    relative paths are sorted up front, so planning a million inputs never holds a million tasks
    (each with its stat and crawl context)."""

    def __init__(self, files: Sequence[str], corpus_root: Path | str, planner: CrawlPlanner):
        self.files, self.corpus_root, self.planner = files, corpus_root, planner
        self.trusted_before = time.time_ns() - storage.RACY_NS
        prefix = str(corpus_root).rstrip("/") + "/"
        self.rels = [
            path[len(prefix) :] if path.startswith(prefix) and not is_url(path) else _relative(path, corpus_root)
            for path in files
        ]
        # 8 bytes per input, where a list of ints held ~36: every task forked later maps it too
        self.order = array("L", sorted(range(len(files)), key=self.rels.__getitem__))

    def size(self, number: int) -> int:
        """The input's size in bytes now (0 when it cannot be read: the extract step says why)."""
        path = self.files[number]
        if is_url(path):
            return 0
        try:
            return os.stat(path).st_size
        except OSError:
            return 0

    def holds(self, number: int, entry: dict[str, Any], cache_key: str) -> bool:
        """Fast path of `unchanged_entry` for a local input whose stat is the one recorded with
        `entry`: True when the entry's key is the input's (no task or crawl context is built);
        False means only "decide with the full task"."""
        path = self.files[number]
        if is_url(path):
            return False
        try:
            st = os.stat(path)
        except OSError:
            return False
        trusted = storage.trusted_stat(st, self.trusted_before)
        if trusted is None or entry.get("stat") != list(trusted):
            return False
        return bool(entry.get("key") == engine.crawl_entry_key(cache_key, self.planner.key(path, st)))

    def task(self, number: int) -> FileTask:
        path, rel = self.files[number], self.rels[number]
        if is_url(path):
            return FileTask(path, rel, *_url_context(path, self.planner))
        try:
            stat = os.stat(path)
        except OSError:
            stat = os.stat_result((0,) * 10)
        context = self.planner.context(path, stat)
        return FileTask(path, rel, stat.st_size, context, storage.trusted_stat(stat, self.trusted_before))


# fields object stores give a version of an object's bytes: a new write gets a new value
VERSION_FIELDS = ("ETag", "etag", "md5Hash", "generation", "content_md5", "VersionId", "version_id", "blob_id")


def object_version(info: dict[str, Any]) -> tuple[int | str, ...] | None:
    """(size, field, value) of a remote object when its store gives a version of its bytes (S3
    and Azure ETag, GCS md5Hash/generation, the Hub's blob id): a re-run trusts it instead of
    downloading the object to hash it, as a local file's stat is trusted."""
    for name in VERSION_FIELDS:
        value = info.get(name)
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip('"'):
            return int(info.get("size") or 0), name, str(value)
    return None


def _url_context(url: str, planner: CrawlPlanner) -> tuple[int, CrawlContext, tuple[int | str, ...] | None]:
    """Size, crawl context (--crawl-time, else the file system's modification time) and object
    version (see `object_version`) of a remote input."""
    import fsspec

    fs, inner = fsspec.core.url_to_fs(url)
    try:
        info = fs.info(inner)
    except OSError:
        info = {}
    version = object_version(info)
    moment = info.get("mtime") or info.get("LastModified") or info.get("created")
    if isinstance(moment, int | float):
        mtime = datetime.fromtimestamp(int(moment), tz=UTC)
    elif isinstance(moment, datetime):
        mtime = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    else:
        mtime = datetime.fromtimestamp(0, tz=UTC)
    if planner.cli_time is not None:
        return int(info.get("size") or 0), CrawlContext(planner.cli_time, "cli", mtime), version
    return int(info.get("size") or 0), CrawlContext(None, None, mtime), version


def unchanged_entry(task: FileTask, entry: dict[str, Any] | None, cache_key: str) -> bool:
    """The previous result still holds: same code/config/crawl key and the same bytes (or, for an
    unreadable file, the same error). The bytes are hashed only when the file's stat differs from
    the one recorded with the entry (or none was recorded: see `storage.trusted_stat`); a remote
    object's when its version differs (`object_version`)."""
    if not entry or entry.get("key") != engine.entry_key(cache_key, task):
        return False
    if task.stat is not None and entry.get("stat") == list(task.stat):
        return True
    try:
        sha256: str | None = input_sha256(task.path, task.rel)  # safe: never opens a FIFO or leaves the root
        detail = None
    except OSError as exc:
        sha256, detail = None, read_error_detail(exc)
    if sha256 is None:
        return entry.get("sha256") is None and [q.get("detail") for q in entry.get("quarantine", [])] == [detail]
    return bool(entry.get("sha256") == sha256)


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
    kept: int  # index entries reused, written to the work folder's index as they were planned
    changed: array  # numbers (into `source.files`) of the inputs to parse, in path order
    source: TaskSource
    previous: int  # usable entries in the previous index
    files_per_rank: list[int] = field(default_factory=list)
    new: int | None = None  # inputs the previous index did not have (None: there was no index)
    deleted: int = 0  # previous index entries whose input is gone

    @property
    def files(self) -> int:
        return len(self.source.order)

    @property
    def changed_count(self) -> int:
        return len(self.changed)


def _plan(source: TaskSource, out: Path, cache_key: str, work: Path) -> _Plan:
    """Split the inputs (in path order) into kept results and changed files, by a merge join with
    the previous index (also in path order): kept entries go straight to the work folder's index,
    changed inputs are remembered by number, so neither the index nor the tasks are held in
    memory. With no previous index at all nothing is built here (every input is parsed). The
    join also counts new and deleted inputs, and lists the previous content hash of each changed
    input that had one (`commit.PREVIOUS_FILE`): the commit counts the modified ones from it."""
    work.mkdir(parents=True, exist_ok=True)
    previous = storage.iter_index_all(out)
    current = next(previous, None)
    if current is None:  # no previous result at all: every input is parsed, no task is built here
        (work / engine.INDEX_FILE).write_bytes(b"")
        return _Plan(0, array("L", source.order), source, 0)
    changed = array("L")
    columns = engine.KeptColumns()
    kept = previous_count = new = deleted = 0
    with (work / engine.INDEX_FILE).open("wb") as handle, (work / PREVIOUS_FILE).open("wb") as before:
        for number in source.order:
            rel = source.rels[number]
            while current is not None and current[1]["path"] < rel:
                previous_count += current[2]
                deleted += 1
                current = next(previous, None)
            if current is None or current[1]["path"] != rel:
                changed.append(number)
                columns.insert_here(kept)
                new += 1
                continue
            line, entry, usable = current
            previous_count += usable
            current = next(previous, None)
            if usable and source.holds(number, entry, cache_key):  # same stat, same key: as it was
                handle.write(line)
                columns.add(entry)
                kept += 1
                continue
            task = source.task(number) if usable else None
            if task is None or not unchanged_entry(task, entry, cache_key):
                changed.append(number)
                columns.insert_here(kept)
                before.write(orjson.dumps([rel, entry.get("sha256")]) + b"\n")
                continue
            stat = list(task.stat) if task.stat else None
            handle.write(line if entry.get("stat") == stat else orjson.dumps({**entry, "stat": stat}) + b"\n")
            columns.add(entry)
            kept += 1
        while current is not None:
            previous_count += current[2]
            deleted += 1
            current = next(previous, None)
    columns.save(work)
    return _Plan(kept, changed, source, previous_count, new=new, deleted=deleted)


@dataclass
class _Request:
    """A run's validated inputs and settings."""

    paths: list[Path | str]
    out: Path
    config: NormalizeConfig
    options: engine.EngineOptions
    cli_time: datetime | None
    corpus_root: Path | str
    settings: dict[str, Any]
    shard_size: int
    progress: bool
    remote: remote.Target | None = None  # `out` is then the URL's local mirror

    @property
    def cache_key(self) -> str:
        return str(self.settings["cache_key"])


def _request(
    inputs: Iterable[Path | str] | None,
    out_dir: Path | str | None,
    crawl_time: str | datetime | None,
    workers: int,
    max_bytes: int,
    config: NormalizeConfig | Path | str | None,
    shard_size: int,
    progress: bool,
    corpus_root: Path | str | None,
    executor: str,
    engine_options: engine.EngineOptions | None,
    remote_cache: Path | str | None,
) -> _Request:
    root = project_root()
    paths = _resolve_inputs(inputs, root)
    target = remote.connect(str(out_dir)) if out_dir is not None and is_url(out_dir) else None
    if target is not None:
        out = remote.mirror_folder(target.url, remote_cache)
    else:
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
    if executor not in engine.EXECUTORS:
        raise UserError(f"--executor must be one of {', '.join(engine.EXECUTORS)}, got {executor!r}")
    options = engine_options or engine.EngineOptions()
    options.executor, options.workers = executor, workers
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
    return _Request(paths, out, cfg, options, cli_time, corpus_root, settings, shard_size, progress, target)


def _up_to_date(plan: _Plan, state: dict[str, Any], request: _Request) -> bool:
    """Nothing to do: no input changed, none appeared or vanished, same settings, outputs intact."""
    return (
        not plan.changed_count
        and plan.kept == plan.previous
        and state.get("settings") == request.settings
        and state.get("corpus_root") == _root_label(request.corpus_root)
        and storage.outputs_intact(request.out, state)
    )


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
    remote_cache: Path | str | None = None,
) -> Summary:
    """Normalise raw pages into `out_dir` (default corpus/raw -> corpus/normalized); idempotent.

    Unchanged files are not reparsed (their cached results are reused); duplicates are
    re-clustered over the full set whenever anything changed. `executor` picks the datatrove
    executor (local, slurm, ray); the records are the same whichever runs them. An fsspec URL
    as `out_dir` is written through a local mirror (under `remote_cache`), see `remote`.
    """
    started = time.monotonic()
    request = _request(
        inputs,
        out_dir,
        crawl_time,
        workers,
        max_bytes,
        config,
        shard_size,
        progress,
        corpus_root,
        executor,
        engine_options,
        remote_cache,
    )
    out, corpus_root, target = request.out, request.corpus_root, request.remote
    summary = Summary(
        out_dir=target.url if target else out,
        corpus_root=Path(corpus_root) if not is_url(corpus_root) else Path("."),
    )
    try:
        with storage.locked(out):
            if target is not None:
                summary.notes.append(remote.prepare(target, out))
            complete = _normalize_locked(request, summary, workers, executor)
            if target is not None and complete:
                summary.notes.append(remote.publish(target, out).line())
    except OSError as exc:
        if exc.errno == errno.ENOSPC:
            raise UserError(
                f"no space left on the device while normalizing into {out}; the previous output is intact"
            ) from None
        raise
    summary.seconds = time.monotonic() - started
    return summary


def _normalize_locked(request: _Request, summary: Summary, workers: int, executor: str) -> bool:
    """The run proper, under the output folder's lock; True when `request.out` then holds the
    complete outputs (False after a Slurm submission: the commit job writes them later)."""
    out, corpus_root = request.out, request.corpus_root
    storage.replay_journal(out)
    live_before = storage.live_parts(out)
    storage.remove_stale(out, live_before)
    clock = _StageClock()
    planner = CrawlPlanner(Path(corpus_root) if not is_url(corpus_root) else Path("/"), request.cli_time)
    found, notes = discover_inputs(request.paths, out, corpus_root)
    if request.remote is not None:  # inputs under the output URL are our own published outputs
        found = [path for path in found if not request.remote.contains(path)]
    run_id = f"{int(time.time() * 1000):x}{os.getpid():x}"
    work = out / storage.CACHE_DIR / storage.RUNS_DIR / run_id
    plan = _plan(TaskSource(found, corpus_root, planner), out, request.cache_key, work)
    clock.lap("plan")
    summary.files = plan.files
    summary.warnings = [*notes, *dict.fromkeys(planner.warnings)]
    state = storage.load_state(out)
    if _up_to_date(plan, state, request):
        shutil.rmtree(work, ignore_errors=True)
        _fill_from_state(summary, state)
        summary.up_to_date = True
        return True
    del state
    tasks = _write_work(work, plan, engine.tasks_for(plan.changed_count, workers, executor), run_id, request)
    summary.warnings = [*notes, *dict.fromkeys(planner.warnings)]  # contexts built while writing the plan
    if executor == "slurm":
        _submit_slurm(work, request.options, plan, tasks, request, run_id, summary)
        return False
    try:
        _run_stages(work, request, tasks, plan, run_id, clock)
    except BaseException:
        if not (out / storage.JOURNAL_NAME).exists():  # else the swap began: the next run completes it
            storage.remove_stale(out, live_before)
        raise
    summary.step_stats = engine.stage_counts(work / engine.LOGS_DIR / "extract")
    shutil.rmtree(work, ignore_errors=True)
    _fill_from_state(summary, storage.load_state(out), changes=True)
    summary.stage_cpu = clock.stages
    return True


def _inside(path: Path | str, root: Path | str) -> bool:
    if is_url(path) or is_url(root):
        return str(path).startswith(str(root).rstrip("/"))
    path, root = Path(path), Path(root)
    return path == root or root in path.parents


def _write_work(work: Path, plan: _Plan, tasks: int, run_id: str, request: _Request) -> int:
    """The run's work folder (the kept index entries are already there): per-task plans, each a
    contiguous run of the changed inputs in path order, and the run's settings; returns the number
    of tasks. Shares are cut by bytes as well as by count (`byte_shares`): one WARC archive holds
    as much work as thousands of pages, and a task of a hundred archives would run alone at the end."""
    out = request.out
    (work / engine.PLAN_DIR).mkdir(parents=True)
    (work / engine.ENTRIES_DIR).mkdir()
    sizes = [plan.source.size(number) for number in plan.changed]
    plan.files_per_rank = byte_shares(sizes, tasks)
    start = 0
    for rank, size in enumerate(plan.files_per_rank):
        with (work / engine.PLAN_DIR / f"{rank:05d}.pkl").open("wb") as handle:
            pickle.dump([plan.source.task(number) for number in plan.changed[start : start + size]], handle)
        start += size
    run = {
        "run_id": run_id,
        "out_dir": str(out),
        "parts_dir": str(out / storage.CACHE_DIR / storage.PARTS_DIR),
        "corpus_root_label": _root_label(request.corpus_root),
        "settings": request.settings,
        "shard_size": request.shard_size,
        "progress": request.progress,
        "reparsed": plan.changed_count,
        "take_lock": request.options.executor == "slurm",
        "remote": request.remote.url if request.remote else None,  # the Slurm commit job publishes
        "changes": None if plan.new is None else {"new": plan.new, "deleted": plan.deleted},
    }
    (work / engine.RUN_FILE).write_bytes(orjson.dumps(run))
    return len(plan.files_per_rank)


def byte_shares(sizes: Sequence[int], tasks: int) -> list[int]:
    """Files per task for files of `sizes` (in order): contiguous runs of at most
    MAX_FILES_PER_TASK files and about total/tasks bytes each (a file bigger than that is a task
    of its own). At least `tasks` tasks when there are that many files."""
    if not sizes or tasks <= 0:
        return []
    cap = min(engine.MAX_FILES_PER_TASK, math.ceil(len(sizes) / tasks))
    target = max(1, sum(sizes) // tasks)
    shares: list[int] = []
    count = held = 0
    for size in sizes:
        if count and (count >= cap or held + size > target):
            shares.append(count)
            count = held = 0
        count += 1
        held += size
    shares.append(count)
    return shares


def _stage_pipelines(work: Path, request: _Request, run_id: str) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    parts_dir = work.parents[1] / storage.PARTS_DIR
    return (
        engine.extract_pipeline(work, parts_dir, run_id, request.cache_key, request.config),
        [engine.Collect(str(work))],
        [engine.BandPairs(str(work))],
        [Commit(str(work))],
    )


def _run_stages(work: Path, request: _Request, tasks: int, plan: _Plan, run_id: str, clock: _StageClock) -> None:
    """Local and Ray: the parallel stages through the executor, the one-task stages in this process."""
    options, progress = request.options, request.progress
    extract, _, bands_stage, _ = _stage_pipelines(work, request, run_id)
    bands, _ = dedup.lsh_bands(dedup.THRESHOLD, dedup.NUM_PERM)
    bar = _LazyBar(plan.changed_count, progress, plan.files_per_rank)
    options.progress = bar.update
    engine.release_freed_memory()  # before the extract workers are forked
    try:
        if tasks:
            extract_options = replace(options, workers=engine.extract_workers(plan.changed_count, options))
            logs = work / engine.LOGS_DIR / "extract"
            engine.make_executor(extract_options, extract, tasks, logs, "extract").run()
            _check_complete(work, tasks, "extract")
    finally:
        bar.close()
    clock.lap("extract")
    options.progress = None
    engine.Collect(str(work)).run()
    engine.release_freed_memory()  # before the band tasks are forked
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
    work: Path, options: engine.EngineOptions, plan: _Plan, tasks: int, request: _Request, run_id: str, summary: Summary
) -> None:
    """One Slurm job array per stage, chained by dependencies; the commit job takes the lock."""
    engine.quiet_datatrove()
    extract, collect, bands_stage, commit_stage = _stage_pipelines(work, request, run_id)
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
    summary.reparsed = plan.changed_count


def _fill_from_state(summary: Summary, state: dict[str, Any], changes: bool = False) -> None:
    recorded = state.get("summary", {})
    if changes:
        for key in ("new", "modified", "deleted", "reparsed"):
            setattr(summary, key, recorded.get(key, 0))
    summary.articles = recorded.get("articles", 0)
    summary.roles = recorded.get("roles", summary.roles)
    summary.duplicates = recorded.get("duplicates", 0)
    summary.truncated = recorded.get("truncated", 0)
    summary.quarantined = recorded.get("quarantined", {})
