"""`newsstance studio pull` and `newsstance studio import`: state, files and network around `convert`.

Both commands take the same path: the raw export is checked whole (streaming, so a truncated or
invalid file is refused before anything is copied), kept gzip-compressed under
`annotations/exports/` (one file per pull, the newest `keep_exports` kept), then converted task by
task into `annotations/annotations.jsonl` (records) and `annotations/conflicts.jsonl`
(`newsstance.conflicts`, stage `pull`). Memory holds one task of the export at a time plus the
records, never the export.

Incremental pull: Label Studio bumps a task's `updated_at` whenever one of its annotations is
created, updated or deleted. A pull lists only the tasks updated since the last pull's watermark
(the newest `updated_at` it saw, minus a second of slack), exports just those task ids, and
reconciles their annotations: converted when new or changed, removed (and reported) when gone.
A pull is full - the whole project exported, every annotation not in it deleted - on `--full`,
the first time, when the project has fewer tasks than before (deleted tasks leave no trace in the
task list), and every `full_every`-th pull as a check that nothing was missed.

Import reconciles the annotations of the projects its file covers; an annotation without
timestamps is compared by a hash of its content. Output stays one record per annotation.
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, cast

import ijson
import orjson
from tqdm import tqdm

from newsstance.conflicts import PULL, ConflictLine, read_lines, replace_conflicts
from newsstance.errors import UserError
from newsstance.paths import ANNOTATIONS_JSONL, CONFLICTS_JSONL, EXPORTS_DIR, in_project, state_dir
from newsstance.records import atomic_write, corpus_hashes, read_jsonl, write_json
from newsstance.scheme import Scheme, load_scheme
from newsstance.studio.convert import Converter, fingerprint, int_id, project_of
from newsstance.studio.identities import Identities, private_path
from newsstance.studio.project import DEFAULT_PROJECT, require_project

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from newsstance.studio.client import Connection

STAGE = PULL
DEFAULT_KEEP_EXPORTS = 10  # raw exports kept per project name (older ones are deleted)
DEFAULT_FULL_EVERY = 20  # every n-th pull is full, to catch anything an incremental pull missed
IDS_PER_EXPORT = 500  # task ids per export request (they travel in the query string)
SLACK = timedelta(seconds=1)
_LS_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"  # the format Label Studio's datetime filter accepts


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


# --- files ---------------------------------------------------------------------------------------


def default_out() -> Path:
    return in_project(ANNOTATIONS_JSONL)


def default_state_path(out: Path) -> Path:
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    return state_dir() / "studio" / "pull" / f"{key}.json"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "project"


def export_name(path: Path) -> str:
    """`<name>-<stamp>` of a saved export (`.json.gz`) or of any export file (`.json`)."""
    name = path.name
    for suffix in (".json.gz", ".json"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def users_sidecar(export_path: Path) -> Path:
    """`<export name>.users` (JSON, id -> e-mail; private): not `*.json*`, so export globs skip it."""
    return export_path.with_name(export_name(export_path) + ".users")


def save_raw_export(source: Path, exports_dir: Path, name: str, keep: int = DEFAULT_KEEP_EXPORTS) -> Path:
    """Gzip `source` byte for byte to `<exports_dir>/<name>-<UTC timestamp>.json.gz`; prune old ones."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    path = exports_dir / f"{_slug(name)}-{stamp}.json.gz"
    counter = 1
    while path.exists():
        path = exports_dir / f"{_slug(name)}-{stamp}-{counter}.json.gz"
        counter += 1
    with (
        atomic_write(path) as handle,
        source.open("rb") as raw,
        gzip.GzipFile(fileobj=handle, mode="wb", compresslevel=6, mtime=0) as packed,
    ):
        shutil.copyfileobj(raw, packed, 1 << 20)
    prune_exports(exports_dir, _slug(name), keep)
    return path


def prune_exports(exports_dir: Path, slug: str, keep: int) -> list[Path]:
    """Delete all but the newest `keep` raw exports of one name (and their `.users` sidecars)."""
    if keep < 1:
        raise UserError(f"--keep-exports must be at least 1, got {keep}")
    pattern = re.compile(re.escape(slug) + r"-\d{8}T\d{6,12}Z(-\d+)?\.json(\.gz)?$")
    saved = sorted((p for p in exports_dir.glob(f"{slug}-*.json*") if pattern.match(p.name)), key=os.path.getmtime)
    removed = saved[:-keep]
    for path in removed:
        path.unlink(missing_ok=True)
        users_sidecar(path).unlink(missing_ok=True)
    return removed


def read_users(export_path: Path) -> dict[int, str]:
    """id -> e-mail saved next to an export by `pull` (so `import` names annotators the same way)."""
    try:
        data = orjson.loads(users_sidecar(export_path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    users = {int_id(k): v for k, v in _dict(_dict(data).get("users")).items() if v}
    return {user_id: str(email) for user_id, email in users.items() if user_id is not None}


def write_users(export_path: Path, url: str | None, users: dict[int, str]) -> None:
    path = users_sidecar(export_path)
    write_json(path, {"url": url, "users": {str(k): v for k, v in users.items()}})
    with contextlib.suppress(OSError):
        os.chmod(path, 0o600)


# --- reading an export, streaming ----------------------------------------------------------------


def _open_export(path: Path) -> IO[bytes]:
    """The export's bytes (gunzipped when saved by us), positioned after a UTF-8 BOM."""
    handle = cast(IO[bytes], gzip.GzipFile(path, "rb") if path.name.endswith(".gz") else path.open("rb"))
    if handle.read(3) != b"\xef\xbb\xbf":
        handle.seek(0)
    return handle


def _tasks_prefix(handle: IO[bytes], where: str) -> str:
    """ijson prefix of the task objects: a list, or `{"tasks": [...]}` as the tasks API returns it."""
    start = handle.tell()
    head = handle.read(4096).lstrip()
    handle.seek(start)
    if head.startswith(b"["):
        return "item"
    if head.startswith(b"{"):
        return "tasks.item"
    raise UserError(f"{where}: not valid JSON (empty or not a list of tasks)")


def iter_tasks(path: Path, where: str | None = None) -> Iterator[dict[str, Any]]:
    """Task objects of an export, one at a time (structure errors are UserErrors)."""
    where = where or str(path)
    with _open_export(path) as handle:
        prefix = _tasks_prefix(handle, where)
        try:
            yield from ijson.items(handle, prefix, use_float=True)
        except ijson.JSONError as exc:
            raise UserError(f"{where}: not valid JSON - truncated or damaged ({str(exc).splitlines()[0]})") from None


@dataclass
class ExportScan:
    """What a whole-file check of an export found (the conversion pass relies on it)."""

    tasks: int = 0
    annotations: int = 0
    projects: set[int | None] = field(default_factory=set)
    task_ids: set[int] = field(default_factory=set)
    duplicated_ids: set[int] = field(default_factory=set)
    newest_update: datetime | None = None  # the newest task `updated_at` in the export
    task_updates: dict[int, str] = field(default_factory=dict)  # task id -> `updated_at` (ISO)


def scan_export(path: Path, where: str | None = None) -> ExportScan:
    """Read the whole export once, streaming: refuse anything that is not a full JSON export."""
    where = where or str(path)
    scan, counts = ExportScan(), dict[int, int]()
    found_list = False
    try:
        with _open_export(path) as handle:
            prefix = _tasks_prefix(handle, where)
            for item_prefix, event, _ in ijson.parse(handle):
                if item_prefix == ("" if prefix == "item" else "tasks") and event == "start_array":
                    found_list = True
                    break
    except ijson.JSONError as exc:
        raise UserError(f"{where}: not valid JSON ({str(exc).splitlines()[0]})") from None
    except OSError as exc:
        raise UserError(f"cannot read export {path}: {exc.strerror or exc}") from None
    if not found_list:
        raise UserError(f"{where}: not a Label Studio JSON export (a list of tasks with `data`)")
    try:
        for task in iter_tasks(path, where):
            if not isinstance(task, dict) or "data" not in task:
                raise UserError(f"{where}: not a Label Studio JSON export (a list of tasks with `data`)")
            if "annotations" not in task:
                raise UserError(f"{where}: tasks lack `annotations` - export as JSON (not JSON_MIN, CSV or CONLL)")
            annotations = task["annotations"]
            if annotations is not None and not isinstance(annotations, list):
                raise UserError(f"{where}: a task's `annotations` is not a list - not a Label Studio JSON export")
            scan.tasks += 1
            updated = _ls_time(task.get("updated_at"))
            if updated is not None and (scan.newest_update is None or updated > scan.newest_update):
                scan.newest_update = updated
            task_id = int_id(task.get("id"))
            if task_id is not None:
                scan.task_ids.add(task_id)
                scan.task_updates[task_id] = updated.isoformat() if updated is not None else ""
            scan.projects.add(int_id(task.get("project")))
            for annotation in annotations or []:
                scan.annotations += 1
                annotation_id = int_id(annotation.get("id")) if isinstance(annotation, dict) else None
                if isinstance(annotation, dict):
                    scan.projects.add(project_of(task, annotation))
                if annotation_id is not None:
                    counts[annotation_id] = counts.get(annotation_id, 0) + 1
    except OSError as exc:
        raise UserError(f"cannot read export {path}: {exc.strerror or exc}") from None
    scan.duplicated_ids = {aid for aid, count in counts.items() if count > 1}
    return scan


# --- ingestion (shared by pull and import) -------------------------------------------------------


@dataclass
class PullResult:
    export_path: Path | None  # the raw copy kept (None: nothing was fetched)
    out: Path
    conflicts_path: Path
    project_ids: list[int | None]
    mode: str = "full"  # "full", "incremental" or "import"
    tasks_fetched: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: list[int] = field(default_factory=list)
    conflicts: int = 0
    records: int = 0
    fixes: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def summary(self) -> str:
        fixes = ", ".join(f"{n} {what}" for what, n in sorted(self.fixes.items())) or "none"
        return (
            f"{self.mode} pull of {self.tasks_fetched} task(s): "
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {len(self.deleted)} deleted "
            f"annotation(s); {self.conflicts} conflict(s) from this pull -> {self.conflicts_path}; "
            f"span fixes: {fixes}; {self.records} record(s) in {self.out} ({self.seconds:.1f} s)"
        )


@dataclass(frozen=True)
class Scope:
    """Whose annotations an export speaks for: absent ones were deleted in Label Studio.

    A full export speaks for whole projects; an incremental one only for the tasks it asked for."""

    projects: frozenset[int | None]
    task_ids: frozenset[int] | None = None  # None: every task of `projects`

    def covers(self, project_id: Any, task_id: Any) -> bool:
        if project_id not in self.projects:
            return False
        return self.task_ids is None or task_id in self.task_ids


@dataclass(frozen=True, slots=True)
class KeptRecord:
    """A record held between reading and rewriting the records file: its JSON line and the keys
    the merge needs (a parsed dict costs ~4x the memory of its line)."""

    project_id: int | None
    task_id: int | None
    emailed: bool  # written before annotators were pseudonymous
    line: bytes

    @classmethod
    def of(cls, record: dict[str, Any], line: bytes | None = None) -> KeptRecord:
        return cls(
            int_id(record.get("project_id")),
            int_id(record.get("task_id")),
            "@" in str(record.get("annotator", "")),
            # orjson's bytes keep its 8 KB starting buffer; a copy is the line's own size.
            bytes(memoryview(line if line is not None else orjson.dumps(record))),
        )


def _read_records(path: Path) -> dict[int, KeptRecord]:
    if not path.is_file():
        return {}
    kept: dict[int, KeptRecord] = {}
    for record in read_jsonl(path):
        kept[int(record["annotation_id"])] = KeptRecord.of(record)
    return kept


def _load_state(state_path: Path) -> dict[str, Any]:
    try:
        return _dict(orjson.loads(state_path.read_bytes()))
    except (OSError, orjson.JSONDecodeError):
        return {}


@dataclass
class _Ingest:
    """One ingestion in progress: the state and records it rewrites, and what it found so far."""

    state: dict[str, Any]  # annotation id (str) -> {"updated_at", "project_id", "task_id"} of the last pull
    records: dict[int, KeptRecord]
    result: PullResult
    reconverted: set[int] = field(default_factory=set)
    new_conflicts: list[dict[str, Any]] = field(default_factory=list)
    seen: set[int] = field(default_factory=set)
    first_task: dict[int, Any] = field(default_factory=dict)  # annotation id -> the task it was first seen in


def ingest_export(
    source: Path,
    export_path: Path | None,
    *,
    out: Path,
    conflicts_path: Path,
    state_path: Path,
    scheme: Scheme,
    identities: Identities,
    article_hashes: dict[str, str] | None,
    scan: ExportScan,
    scope: Scope,
    full: bool = False,
    progress: bool = True,
    mode: str = "full",
    extra_state: dict[str, Any] | None = None,
) -> PullResult:
    """Convert an export (checked by `scan_export`) and merge it into `out` and the conflicts file."""
    started = time.perf_counter()
    state_file = _load_state(state_path)
    state = _dict(state_file.get("annotations"))
    records = _read_records(out)
    existing_conflicts = read_lines(conflicts_path)
    conflicted_ids = {int_id(line.entry.get("annotation_id")) for line in existing_conflicts if line.stage == STAGE}
    conflicted_ids.discard(None)

    converter = Converter(scheme, identities, article_hashes)
    result = PullResult(
        export_path, out, conflicts_path, sorted(scope.projects, key=lambda p: (p is None, p or 0)), mode=mode
    )
    result.tasks_fetched = scan.tasks
    run = _Ingest(state, records, result)
    _convert_export(run, source, export_path, scan, converter, conflicted_ids, full=full, progress=progress)
    gone = _drop_deleted(run, scope)
    _write_ingested(run, scope, gone, existing_conflicts, identities, state_path, state_file, extra_state)
    result.conflicts = len(run.new_conflicts)
    result.seconds = time.perf_counter() - started
    return result


def _convert_export(
    run: _Ingest,
    source: Path,
    export_path: Path | None,
    scan: ExportScan,
    converter: Converter,
    conflicted_ids: set[int | None],
    *,
    full: bool,
    progress: bool,
) -> None:
    """Stream the export task by task (never held whole), converting each annotation that needs it."""
    bar = tqdm(
        total=scan.annotations, desc="convert", unit="annotation", disable=not progress or scan.annotations < 2000
    )
    for task in iter_tasks(source, str(export_path or source)):
        for annotation in task.get("annotations") or []:
            bar.update(1)
            problem = _unusable_annotation(task, annotation, run.first_task)
            if problem is not None:
                run.new_conflicts.append(problem)
                continue
            _ingest_annotation(run, task, annotation, converter, conflicted_ids, scan.duplicated_ids, full=full)
    bar.close()


def _ingest_annotation(
    run: _Ingest,
    task: dict[str, Any],
    annotation: dict[str, Any],
    converter: Converter,
    conflicted_ids: set[int | None],
    duplicated: set[int],
    *,
    full: bool,
) -> None:
    """Convert one keyed annotation unless its change stamp says the kept record is still its own."""
    annotation["id"] = annotation_id = int(annotation["id"])
    run.seen.add(annotation_id)
    run.first_task[annotation_id] = task.get("id")
    stamp = annotation.get("updated_at") or annotation.get("created_at") or fingerprint(annotation)
    known = _dict(run.state.get(str(annotation_id)))
    present = annotation_id in run.records or annotation_id in conflicted_ids
    if annotation_id in run.records and run.records[annotation_id].emailed:
        present = False  # pulled before annotators were pseudonymous: convert again
    if not full and known.get("updated_at") == stamp and present and annotation_id not in duplicated:
        return
    if known or annotation_id in run.records:
        run.result.updated += 1
    else:
        run.result.new += 1
    run.reconverted.add(annotation_id)
    conversion = converter.convert(task, annotation)
    run.records.pop(annotation_id, None)
    if conversion.record is not None:
        run.records[annotation_id] = KeptRecord.of(conversion.record)
    run.new_conflicts += conversion.conflicts
    for fix, count in conversion.fixes.items():
        run.result.fixes[fix] = run.result.fixes.get(fix, 0) + count
    run.state[str(annotation_id)] = {
        "updated_at": stamp,
        "project_id": project_of(task, annotation),
        "task_id": int_id(task.get("id")),
    }


def _drop_deleted(run: _Ingest, scope: Scope) -> set[int]:
    """Forget annotations the export speaks for but no longer holds (deleted in Label Studio); count the rest."""
    gone = {  # negative ids: annotations imported from elsewhere (`import-annotations`), never pulled
        aid
        for aid, rec in run.records.items()
        if aid not in run.seen and aid >= 0 and scope.covers(rec.project_id, rec.task_id)
    }
    gone |= {
        int(aid)
        for aid, info in run.state.items()
        if int_id(aid) is not None
        and int(aid) not in run.seen
        and scope.covers(_dict(info).get("project_id"), _dict(info).get("task_id"))
    }
    for annotation_id in gone:
        run.records.pop(annotation_id, None)
        run.state.pop(str(annotation_id), None)
    run.result.deleted = sorted(gone)
    # Unchanged = every annotation of these projects this run left as it was, fetched or not.
    run.result.unchanged = sum(
        1
        for aid, info in run.state.items()
        if _dict(info).get("project_id") in scope.projects and int_id(aid) not in run.reconverted
    )
    return gone


def _write_ingested(
    run: _Ingest,
    scope: Scope,
    gone: set[int],
    existing_conflicts: list[ConflictLine],
    identities: Identities,
    state_path: Path,
    state_file: dict[str, Any],
    extra_state: dict[str, Any] | None,
) -> None:
    """Rewrite records, this scope's pull conflicts, identities and state, each file whole and atomically."""
    replaced = run.reconverted | gone

    def regenerated(conflict: dict[str, Any]) -> bool:
        """Pull conflicts this run writes again: of re-converted annotations, or id-less ones of this scope."""
        if conflict.get("stage") != STAGE:
            return False
        annotation_id = conflict.get("annotation_id")
        if isinstance(annotation_id, int) and not isinstance(annotation_id, bool):
            return annotation_id in replaced
        return scope.covers(conflict.get("project_id"), conflict.get("task_id"))

    out = run.result.out
    ordered = sorted(
        run.records.items(), key=lambda item: (item[1].project_id is None, item[1].project_id or 0, item[0])
    )
    with atomic_write(out) as handle:
        for _, kept in ordered:
            handle.write(kept.line + b"\n")
    run.result.records = len(ordered)
    replace_conflicts(run.result.conflicts_path, run.new_conflicts, replaced=regenerated, existing=existing_conflicts)
    identities.save()
    write_json(state_path, {**state_file, **(extra_state or {}), "out": str(out), "annotations": run.state})


def _unusable_annotation(task: dict[str, Any], annotation: Any, first_task: dict[int, Any]) -> dict[str, Any] | None:
    """A `record` conflict for an annotation that cannot even be keyed: no object, no id, or an id seen before."""
    annotation_id = int_id(annotation.get("id")) if isinstance(annotation, dict) else None
    if not isinstance(annotation, dict):
        reason = "annotation is not a JSON object"
    elif annotation_id is None:
        reason = "annotation without an integer id"
    elif annotation_id in first_task:
        reason = (
            f"annotation id {annotation_id} appears again (task {task.get('id')!r}; kept the one in task "
            f"{first_task[annotation_id]!r}) - exports of different servers merged?"
        )
    else:
        return None
    data = _dict(task.get("data"))
    return {
        "kind": "record",
        "annotation_id": annotation_id,
        "article_id": data.get("article_id"),
        "task_id": int_id(task.get("id")),
        "project_id": project_of(task, _dict(annotation)),
        "reason": reason,
        "detail": {} if annotation_id is not None else {"id": _dict(annotation).get("id")},
        "stage": STAGE,
    }


def _resolve_paths(
    out: Path | None, conflicts: Path | None, exports_dir: Path | None, state_path: Path | None
) -> tuple[Path, Path, Path, Path]:
    out = out or default_out()
    default_conflicts = in_project(CONFLICTS_JSONL) if out == default_out() else out.parent / CONFLICTS_JSONL.name
    return (
        out,
        conflicts or default_conflicts,
        exports_dir or (in_project(EXPORTS_DIR) if out == default_out() else out.parent / EXPORTS_DIR.name),
        state_path or default_state_path(out),
    )


# --- pull ----------------------------------------------------------------------------------------


def _ls_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    if isinstance(value, str) and value:
        with contextlib.suppress(ValueError):
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            return moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def changed_tasks(client: LabelStudio, project_id: int, since: datetime) -> dict[int, str]:
    """task id -> `updated_at` (ISO) of the project's tasks updated after `since`."""
    query = {
        "filters": {
            "conjunction": "and",
            "items": [
                {
                    "filter": "filter:tasks:updated_at",
                    "operator": "greater",
                    "type": "Datetime",
                    "value": since.astimezone(UTC).strftime(_LS_TIME),
                }
            ],
        }
    }
    stamps: dict[int, str] = {}
    # `include` trims each task to two fields: listing 1,000 tasks takes ~1.4 s instead of ~5 s with
    # `fields=task_only` (the SDK's own default, `fields=all`, is slower still).
    listing: Iterable[object] = client.tasks.list(
        project=project_id, fields=None, include="id,updated_at", query=json.dumps(query), page_size=1000
    )
    for task in listing:
        dump = getattr(task, "model_dump", None)
        data: dict[str, Any] = dump() if callable(dump) else dict(cast(dict[str, Any], task))
        moment = _ls_time(data.get("updated_at"))
        stamps[int(data["id"])] = moment.isoformat() if moment is not None else ""
    return stamps


def server_time(client: LabelStudio, project_id: int) -> datetime | None:
    """The server's clock (HTTP `Date`, to the second, rounded down) before this pull lists anything."""
    response = client.projects.with_raw_response.get(project_id)
    with contextlib.suppress(TypeError, ValueError, IndexError):
        return parsedate_to_datetime(str(response.headers.get("date"))).astimezone(UTC)
    return None


def _download(client: LabelStudio, project_id: int, target: IO[bytes], ids: list[int] | None, bar: tqdm) -> None:
    """Write the JSON export (of `ids` only, when given) to `target` as one JSON list."""
    if ids is None:
        for chunk in client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True):
            target.write(chunk)
            bar.update(len(chunk))
        return
    # The export endpoint filters on `ids[]` (the SDK's `ids` argument is not read by 1.23);
    # batches keep the query string short, and their lists are spliced into one.
    target.write(b"[")
    first = True
    for start in range(0, len(ids), IDS_PER_EXPORT):
        batch = [str(i) for i in ids[start : start + IDS_PER_EXPORT]]
        raw = b"".join(
            client.projects.exports.download_sync(
                project_id,
                export_type="JSON",
                download_all_tasks=True,
                request_options={"additional_query_parameters": {"ids[]": batch}},
            )
        )
        bar.update(len(raw))
        body = raw.strip().removeprefix(b"\xef\xbb\xbf")
        if not (body.startswith(b"[") and body.endswith(b"]")):
            raise UserError("Label Studio returned an export that is not a JSON list")
        inner = body[1:-1].strip()
        if inner:
            target.write((b"" if first else b",") + inner)
            first = False
    target.write(b"]")


@dataclass
class _PullPlan:
    """What one pull fetches, and what it remembers of the last pull of the same project."""

    key: str  # server URL, project id and creation time: a recreated project starts afresh
    project_id: int
    memory: dict[str, Any]  # the last pull's state of this project
    task_count: int
    watermark: datetime | None
    reason: str | None  # why the pull is full; None: incremental
    known: dict[str, str]  # task id -> `updated_at` as of the last pull
    started_at: datetime
    server_now: datetime | None
    listed: dict[int, str] = field(default_factory=dict)  # changed task id -> `updated_at`
    ids: list[int] | None = None  # the task ids to export; None: the whole project


def _full_reason(
    memory: dict[str, Any], watermark: datetime | None, task_count: int, full: bool, full_every: int
) -> str | None:
    """Why this pull must export the whole project; None when an incremental one is safe."""
    return (
        "--full"
        if full
        else "first pull"
        if watermark is None
        else "tasks were deleted"
        if task_count < int(memory.get("task_count") or 0)
        else f"periodic check (every {full_every} pulls)"
        if int(memory.get("pulls_since_full") or 0) + 1 >= full_every
        else None
    )


def _plan_pull(
    conn: Connection, client: LabelStudio, info: dict[str, Any], state: dict[str, Any], full: bool, full_every: int
) -> _PullPlan:
    """Decide full or incremental and, when incremental, list the tasks changed since the watermark."""
    project_id = int(info["id"])
    key = f"{conn.url}#{project_id}#{info.get('created_at')}"
    memory = _dict(_dict(state.get("projects")).get(key))
    task_count = int(info.get("task_number") or 0)
    watermark = _ls_time(memory.get("watermark"))
    reason = _full_reason(memory, watermark, task_count, full, full_every)
    known = {str(k): str(v) for k, v in _dict(memory.get("tasks")).items()}
    started_at = datetime.now(UTC)
    with conn.errors("reading the server's clock"):
        server_now = server_time(client, project_id)
    plan = _PullPlan(key, project_id, memory, task_count, watermark, reason, known, started_at, server_now)
    if reason is None:
        assert watermark is not None
        # A write still in flight when the last pull listed could carry a stamp up to the watermark;
        # it can only be that recent if the watermark was within SLACK of the server's clock then.
        last_seen = _ls_time(memory.get("server_time"))
        since = watermark if last_seen is not None and watermark < last_seen - SLACK else watermark - SLACK
        with conn.errors("listing changed tasks"):
            plan.listed = changed_tasks(client, project_id, since)
        # The slack re-lists tasks touched just before the last pull; their stamps tell if they changed.
        plan.ids = sorted(task_id for task_id, stamp in plan.listed.items() if known.get(str(task_id)) != stamp)
    return plan


def _fetch(conn: Connection, client: LabelStudio, plan: _PullPlan, handle: int, progress: bool) -> None:
    """Download the planned export into the open temp file `handle` (closed when done)."""
    with (
        os.fdopen(handle, "wb") as target,
        conn.errors("exporting the project"),
        tqdm(desc="export", unit="B", unit_scale=True, disable=not progress) as bar,
    ):
        _download(client, plan.project_id, target, plan.ids, bar)


def _keep_raw_export(
    conn: Connection, client: LabelStudio, temp: Path, exports_dir: Path, project: str, keep: int, ids: list[int] | None
) -> tuple[Path | None, dict[int, str]]:
    """Save the raw export with its users sidecar (so a later `import` names annotators alike)."""
    with conn.errors("listing users"):
        users = {int(u.id): str(u.email) for u in client.users.list() if u.email}
    if ids == []:  # nothing changed: no raw copy (it would push real exports out of the retention)
        return None, users
    export_path = save_raw_export(temp, exports_dir, project, keep)
    write_users(export_path, conn.url, users)
    return export_path, users


def _next_memory(plan: _PullPlan, scan: ExportScan) -> dict[str, Any]:
    """This project's pull state for the next pull: watermark, server clock and task stamps."""
    # The next pull asks for tasks updated after this: never later than when this one began
    # (a change made while exporting is fetched again rather than missed).
    seen = [m for m in (*(_ls_time(v) for v in plan.listed.values()), scan.newest_update) if m is not None]
    newest = min(max(seen), plan.started_at) if seen else (plan.watermark or plan.started_at - SLACK)
    known = plan.known
    if plan.ids is None:
        known = {str(task_id): stamp for task_id, stamp in scan.task_updates.items()}
    else:
        known.update({str(task_id): plan.listed[task_id] for task_id in plan.ids})
    memory = plan.memory
    return {
        "watermark": newest.isoformat(),
        "server_time": plan.server_now.isoformat() if plan.server_now is not None else None,
        "tasks": known,
        "task_count": plan.task_count,
        "pulls_since_full": 0 if plan.ids is None else int(memory.get("pulls_since_full") or 0) + 1,
        "last_full_reason": plan.reason if plan.ids is None else memory.get("last_full_reason"),
    }


def pull(
    conn: Connection,
    *,
    project: str = DEFAULT_PROJECT,
    out: Path | None = None,
    conflicts: Path | None = None,
    exports_dir: Path | None = None,
    state_path: Path | None = None,
    articles_glob: str | None = None,
    full: bool = False,
    full_every: int = DEFAULT_FULL_EVERY,
    keep_exports: int = DEFAULT_KEEP_EXPORTS,
    progress: bool = True,
) -> PullResult:
    """Fetch what changed since the last pull (or everything), keep it raw, convert it."""
    if full_every < 1:
        raise UserError(f"--full-every must be at least 1, got {full_every}")
    out, conflicts, exports_dir, state_path = _resolve_paths(out, conflicts, exports_dir, state_path)
    client = conn.client()
    info = require_project(client, conn, project)
    state = _load_state(state_path)
    plan = _plan_pull(conn, client, info, state, full, full_every)
    exports_dir.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=".pull-", suffix=".json", dir=exports_dir)
    temp = Path(temp_name)
    try:
        _fetch(conn, client, plan, handle, progress)
        scan = scan_export(temp, f"export of project {project!r}")
        export_path, users = _keep_raw_export(conn, client, temp, exports_dir, project, keep_exports, plan.ids)
        scope = Scope(frozenset({plan.project_id}), None if plan.ids is None else frozenset(plan.ids))
        memory = _next_memory(plan, scan)
        result = ingest_export(
            temp,
            export_path,
            out=out,
            conflicts_path=conflicts,
            state_path=state_path,
            scheme=load_scheme(),
            identities=Identities(private_path(out.parent), users),
            article_hashes=corpus_hashes(articles_glob),
            scan=scan,
            scope=scope,
            full=full,
            progress=progress,
            mode="full" if plan.ids is None else "incremental",
            extra_state={"projects": {**_dict(state.get("projects")), plan.key: memory}},
        )
    finally:
        temp.unlink(missing_ok=True)
    return result


def import_export(
    path: Path,
    *,
    out: Path | None = None,
    conflicts: Path | None = None,
    exports_dir: Path | None = None,
    state_path: Path | None = None,
    articles_glob: str | None = None,
    full: bool = False,
    keep_exports: int = DEFAULT_KEEP_EXPORTS,
    progress: bool = True,
) -> PullResult:
    """Offline twin of `pull`: ingest an export file someone downloaded from Label Studio."""
    out, conflicts, exports_dir, state_path = _resolve_paths(out, conflicts, exports_dir, state_path)
    if not path.exists():
        raise UserError(f"export not found: {path}")
    if not path.is_file():
        raise UserError(f"cannot read export {path}: not a regular file")
    scan = scan_export(path)  # refuses a truncated or invalid file before anything is copied
    users = read_users(path)
    saved = path
    if path.resolve().parent != exports_dir.resolve():
        saved = save_raw_export(path, exports_dir, export_name(path), keep_exports)
        if users_sidecar(path).is_file():
            shutil.copyfile(users_sidecar(path), users_sidecar(saved))
    return ingest_export(
        path,
        saved,
        out=out,
        conflicts_path=conflicts,
        state_path=state_path,
        scheme=load_scheme(),
        identities=Identities(private_path(out.parent), users),
        article_hashes=corpus_hashes(articles_glob),
        scan=scan,
        scope=Scope(frozenset(scan.projects or {None})),
        full=full,
        progress=progress,
        mode="import",
    )
