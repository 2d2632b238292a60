"""`newsstance studio pull` and `newsstance studio import`: Label Studio JSON export -> annotation records.

Both commands take the same path: the raw export is first saved unmodified under
`annotations/exports/`, then every Label Studio annotation becomes one record of
`schema/annotation.schema.json` in `annotations/annotations.jsonl`.

Only the full JSON export is read (JSON_MIN misaligns per-region choices, CONLL drops nested
spans and annotator ids). Spans are verified against the task text in code points; offsets
that only fit as UTF-16 units (tools that count like JavaScript) are converted, padding
whitespace is trimmed, and the mention stance is joined to its span by region id. What cannot
be reconciled goes to `annotations/conflicts.jsonl`, one JSON object per problem:

    {"kind": ..., "annotation_id": int, "article_id": str|null, "task_id": int|null,
     "project_id": int|null, "reason": "one line", "detail": {...}, "stage": "pull"}

`kind` is one of CONFLICT_KINDS. The record of an annotation with span-level conflicts is still
written without the offending span (or stance); an annotation whose task text does not match
its article (kinds `task`, `text_hash`) gets no record at all. Lines of other stages (no
`"stage": "pull"`) are kept untouched when the file is rewritten.

Exports of other versions and tools are read leniently where the meaning is clear (a UTF-8 BOM,
`{"tasks": [...]}` as the tasks API returns it, `completed_by` as a user object, digit-string ids,
missing timestamps/`lead_time`/`was_cancelled`, result items with extra keys or without
`value.text`); everything else about an annotation becomes a conflict, never a crash. An
annotation id seen twice in one export keeps its first occurrence and reports the others.
Drafts and predictions are not annotations and are ignored.

Incremental: a state file remembers each annotation's `updated_at`; a later pull converts only
new or updated annotations, keeps the others' records as they are, and removes (and reports)
annotations deleted in Label Studio (an annotation without timestamps is compared by a hash of
its content instead). Output stays one record per annotation.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson
from tqdm import tqdm

from newsstance.errors import UserError
from newsstance.ids import text_sha256
from newsstance.paths import project_root, state_dir
from newsstance.records import atomic_write, read_jsonl, write_json, write_jsonl
from newsstance.scheme import ENTITIES_NAME, MENTION_STANCE_NAME, Scheme, load_scheme, record_validator
from newsstance.studio.project import DEFAULT_PROJECT, require_project

if TYPE_CHECKING:
    from newsstance.studio.client import Connection

STAGE = "pull"
CONFLICT_KINDS = (
    "task",  # the task lacks a usable text / article id / hash: no record
    "text_hash",  # task text differs from the pushed article or the corpus article: no record
    "span",  # offsets cannot be reconciled with the text, or the span is empty: span dropped
    "label",  # unknown or multiple labels/choices: span or stance dropped
    "region",  # per-region choice whose region is missing, or an ambiguous region id: stance dropped
    "control",  # result of a control the scheme does not define: result dropped
    "stance",  # several answers to one document stance question: answer dropped
    "record",  # the converted record fails the schema or has an unreadable field
)
_ARTICLE_ID = re.compile(r"^[0-9a-f]{16}$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_NON_BMP = re.compile("[\U00010000-\U0010ffff]")


# --- small pure helpers --------------------------------------------------------------------------


class SpanProblem(Exception):
    def __init__(self, reason: str, detail: dict[str, Any] | None = None):
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or {}


@lru_cache(maxsize=8)
def utf16_to_codepoint(text: str) -> dict[int, int] | None:
    """UTF-16 unit offset -> code-point offset at every character boundary; None when they coincide.

    Built only for spans that do not fit in code points (cached for the few texts in flight)."""
    if not _NON_BMP.search(text):
        return None
    mapping, units = {}, 0
    for index, char in enumerate(text):
        mapping[units] = index
        units += 2 if ord(char) > 0xFFFF else 1
    mapping[units] = len(text)
    return mapping


def _squash(text: str) -> str:
    return " ".join(text.split())


def _candidates(text: str, start: int, end: int) -> Iterator[tuple[int, int, str | None]]:
    """Offsets read as code points first, then (only if needed) as UTF-16 units."""
    yield start, end, None
    utf16 = utf16_to_codepoint(text)
    if utf16 is not None and start in utf16 and end in utf16 and (utf16[start], utf16[end]) != (start, end):
        yield utf16[start], utf16[end], "utf16"


def reconcile_span(text: str, start: Any, end: Any, span_text: str | None) -> tuple[int, int, str, str | None]:
    """Code-point offsets and text of a span, trimmed of whitespace; raises SpanProblem.

    Returns (start, end, text, fix) where fix says what was repaired ("utf16", "trimmed" or None).
    """
    if type(start) is not int or type(end) is not int:
        raise SpanProblem("span offsets missing or not integers", {"start": start, "end": end})
    for cp_start, cp_end, fix in _candidates(text, start, end):
        if not 0 <= cp_start < cp_end <= len(text):
            continue
        piece = text[cp_start:cp_end]
        if span_text is not None and piece != span_text and _squash(piece) != _squash(span_text):
            continue
        new_start, new_end = cp_start, cp_end
        while new_start < new_end and text[new_start].isspace():
            new_start += 1
        while new_end > new_start and text[new_end - 1].isspace():
            new_end -= 1
        if new_start >= new_end:
            raise SpanProblem("span covers only whitespace", {"start": start, "end": end, "text": span_text})
        if fix is None and (new_start, new_end) != (cp_start, cp_end):
            fix = "trimmed"
        return new_start, new_end, text[new_start:new_end], fix
    in_range = isinstance(start, int) and 0 <= start < end <= len(text)
    raise SpanProblem(
        "span text does not match text[start:end] in code points or UTF-16 units"
        if in_range
        else f"span offsets {start}..{end} are outside the text (length {len(text)})",
        {"start": start, "end": end, "span_text": span_text, "text_at_offsets": text[start:end] if in_range else None},
    )


def utc_iso(value: Any) -> str | None:
    """ISO 8601 in UTC ending in Z; None stays None; unreadable raises ValueError."""
    if value in (None, ""):
        return None
    moment = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def annotator_name(completed_by: Any, users: dict[int, str]) -> str:
    """The annotator's email when known, else their Label Studio user id.

    Older exports and other tools write `completed_by` as a user object instead of an id."""
    if isinstance(completed_by, dict):
        if completed_by.get("email"):
            return str(completed_by["email"])
        completed_by = completed_by.get("id")
    if isinstance(completed_by, int) and completed_by in users:
        return users[completed_by]
    return str(completed_by) if completed_by not in (None, "") else "unknown"


def int_id(value: Any) -> int | None:
    """A Label Studio id as int (digit strings too, as some tools write them); anything else None."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return None


def flag(value: Any) -> bool:
    """A boolean field read strictly: the string "false" is not true."""
    if isinstance(value, str):
        return value.strip().lower() in {"true", "1", "yes"}
    return value is True or (isinstance(value, int | float) and value == 1)


def fingerprint(value: Any) -> str:
    """Stable content hash: the change stamp of annotations that carry no timestamps."""
    return "sha256:" + hashlib.sha256(orjson.dumps(value, option=orjson.OPT_SORT_KEYS)).hexdigest()


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _names(value: Any) -> list[Any]:
    """A labels/choices list as written; a bare string counts as a one-element list."""
    if isinstance(value, str):
        return [value]
    return value if isinstance(value, list) else []


def project_of(task: dict[str, Any], annotation: dict[str, Any]) -> int | None:
    """The project id of a task (or of its annotation when the task does not say)."""
    project = int_id(task.get("project"))
    return project if project is not None else int_id(annotation.get("project"))


# --- conversion ----------------------------------------------------------------------------------


@dataclass
class Conversion:
    """One annotation converted: its record (None when unusable) and its conflicts."""

    record: dict[str, Any] | None
    conflicts: list[dict[str, Any]] = field(default_factory=list)
    fixes: dict[str, int] = field(default_factory=dict)


class Converter:
    """Turns (task, annotation) pairs of a JSON export into records, per the scheme."""

    def __init__(
        self, scheme: Scheme, users: dict[int, str] | None = None, article_hashes: dict[str, str] | None = None
    ):
        self.scheme = scheme
        self.users = users or {}
        self.article_hashes = article_hashes
        self.targets = {target.control_name: target.id for target in scheme.stance_targets}
        self.entity_names = frozenset(scheme.entity_names)
        self.stance_names = frozenset(scheme.stance_names)
        self.document_stance_names = frozenset(scheme.document_stance_names)
        self.validator = record_validator("annotation")

    def task_problem(self, task: dict[str, Any]) -> tuple[str, str, dict[str, Any]] | None:
        """(kind, reason, detail) when no annotation of this task can become a record."""
        data = _dict(task.get("data"))
        text, article_id, digest = data.get("text"), data.get("article_id"), data.get("text_sha256")
        if not isinstance(text, str) or not text:
            return "task", "task has no text", {}
        if not isinstance(article_id, str) or not _ARTICLE_ID.match(article_id):
            return "task", "task has no valid data.article_id (not pushed by newsstance?)", {"article_id": article_id}
        if not isinstance(digest, str) or not _SHA256.match(digest):
            return "task", "task has no valid data.text_sha256", {"text_sha256": digest}
        actual = text_sha256(text)
        if actual != digest:
            return (
                "text_hash",
                "the task text differs from the article it was pushed from",
                {"task_text_sha256": actual, "article_text_sha256": digest},
            )
        if (
            self.article_hashes is not None
            and article_id in self.article_hashes
            and self.article_hashes[article_id] != digest
        ):
            return (
                "text_hash",
                "the article's text changed in the corpus since it was pushed",
                {"task_text_sha256": digest, "corpus_text_sha256": self.article_hashes[article_id]},
            )
        return None

    def convert(self, task: dict[str, Any], annotation: dict[str, Any]) -> Conversion:
        data = _dict(task.get("data"))
        base = {
            "annotation_id": annotation.get("id"),
            "article_id": data.get("article_id"),
            "task_id": int_id(task.get("id")),
            "project_id": project_of(task, annotation),
        }

        def conflict(kind: str, reason: str, detail: dict[str, Any] | None = None) -> dict[str, Any]:
            return {"kind": kind, **base, "reason": reason, "detail": detail or {}, "stage": STAGE}

        problem = self.task_problem(task)
        if problem is not None:
            return Conversion(None, [conflict(*problem)])
        text: str = data["text"]
        conflicts: list[dict[str, Any]] = []
        fixes: dict[str, int] = {}

        regions: dict[str, dict[str, Any]] = {}
        entities: list[dict[str, Any]] = []
        mention_stances: dict[str, list[dict[str, Any]]] = {}
        stances: dict[str, str] = {}
        answered: dict[str, int] = {}
        results = annotation.get("result") or []
        if not isinstance(results, list):
            results = [results]
        for result in results:
            if not isinstance(result, dict):
                conflicts.append(conflict("record", "result item is not a JSON object", {"result": result}))
                continue
            from_name, kind = result.get("from_name"), result.get("type")
            value = _dict(result.get("value"))
            if from_name == ENTITIES_NAME and kind == "labels":
                entity = self._entity(result, text, conflict, conflicts, fixes)
                if entity is None:
                    continue
                if entity["region_id"] is not None and entity["region_id"] in regions:
                    conflicts.append(
                        conflict(
                            "region",
                            "two spans share one region id; neither gets a stance",
                            {"region_id": entity["region_id"]},
                        )
                    )
                    regions[entity["region_id"]]["ambiguous"] = True
                    entity["ambiguous"] = True
                regions.setdefault(entity["region_id"], entity)
                entities.append(entity)
            elif from_name == MENTION_STANCE_NAME and kind == "choices":
                if result.get("id") is None:
                    conflicts.append(
                        conflict("region", "per-region stance without a region id", {"region_id": None, "value": value})
                    )
                    continue
                mention_stances.setdefault(str(result.get("id")), []).append(result)
            elif isinstance(from_name, str) and from_name in self.targets and kind == "choices":
                target = self.targets[from_name]
                choices = _names(value.get("choices"))
                answered[target] = answered.get(target, 0) + 1
                if len(choices) != 1 or not isinstance(choices[0], str) or choices[0] not in self.document_stance_names:
                    conflicts.append(
                        conflict(
                            "label",
                            f"{from_name}: {choices!r} is not one of {self.scheme.document_stance_names}",
                            {"choices": choices},
                        )
                    )
                elif answered[target] > 1:
                    conflicts.append(
                        conflict(
                            "stance",
                            f"{from_name} answered more than once",
                            {"choices": [stances.pop(target, None), choices[0]]},
                        )
                    )
                else:
                    stances[target] = choices[0]
            elif kind == "relation":
                conflicts.append(
                    conflict(
                        "control",
                        f"relation {result.get('from_id')!r} -> {result.get('to_id')!r} is not part of the scheme",
                        {"result": result},
                    )
                )
            else:
                conflicts.append(
                    conflict("control", f"result of unknown control {from_name!r} (type {kind!r})", {"result": result})
                )

        dropped_regions = {
            c["detail"].get("region_id"): c
            for c in conflicts
            if c["kind"] in {"span", "label"} and c["detail"].get("region_id") is not None
        }
        for region_id, choice_results in mention_stances.items():
            entity = regions.get(region_id)
            if entity is None:
                choices = [_dict(r.get("value")).get("choices") for r in choice_results]
                if region_id in dropped_regions:  # the span's own conflict carries its stance
                    dropped_regions[region_id]["detail"]["mention_stance"] = choices
                else:
                    conflicts.append(
                        conflict(
                            "region",
                            "per-region stance whose region is missing",
                            {"region_id": region_id, "value": choice_results[0].get("value")},
                        )
                    )
                continue
            if len(choice_results) > 1 or entity.get("ambiguous"):
                conflicts.append(conflict("region", "several stances for one region", {"region_id": region_id}))
                continue
            choices = _names(_dict(choice_results[0].get("value")).get("choices"))
            if len(choices) != 1 or not isinstance(choices[0], str) or choices[0] not in self.stance_names:
                conflicts.append(
                    conflict(
                        "label",
                        f"mention stance {choices!r} is not one of {self.scheme.stance_names}",
                        {"region_id": region_id},
                    )
                )
                continue
            entity["stance"] = choices[0]

        for entity in entities:
            entity.pop("ambiguous", None)
        entities.sort(key=lambda e: (e["start"], e["end"], e["label"], e["region_id"] or ""))
        stamps: dict[str, str | None] = {}
        for name in ("created_at", "updated_at"):
            try:
                stamps[name] = utc_iso(annotation.get(name))
            except (ValueError, OverflowError) as exc:
                stamps[name] = None
                conflicts.append(
                    conflict(
                        "record", f"unreadable {name} {annotation.get(name)!r}: {exc}", {name: annotation.get(name)}
                    )
                )
        created_at, updated_at = stamps["created_at"], stamps["updated_at"]
        lead_time = annotation.get("lead_time")
        record = {
            "annotation_id": annotation.get("id"),
            "task_id": base["task_id"],
            "project_id": base["project_id"],
            "article_id": data["article_id"],
            "text_sha256": data["text_sha256"],
            "annotator": annotator_name(annotation.get("completed_by"), self.users),
            "created_at": created_at,
            "updated_at": updated_at,
            "lead_time": float(lead_time) if type(lead_time) in (int, float) and lead_time >= 0 else None,
            "cancelled": flag(annotation.get("was_cancelled", False)),
            "ground_truth": flag(annotation.get("ground_truth", False)),
            "entities": entities,
            "stances": stances,
            "scheme_version": self.scheme.scheme_version,
        }
        errors = self.validator.errors(record)
        if errors:
            conflicts.append(
                conflict(
                    "record", "converted record fails the annotation schema", {"errors": [str(e) for e in errors[:5]]}
                )
            )
            return Conversion(None, conflicts, fixes)
        return Conversion(record, conflicts, fixes)

    def _entity(
        self, result: dict[str, Any], text: str, conflict: Any, conflicts: list[dict[str, Any]], fixes: dict[str, int]
    ) -> dict[str, Any] | None:
        value = _dict(result.get("value"))
        region_id = None if result.get("id") is None else str(result.get("id"))
        labels = _names(value.get("labels"))
        if len(labels) != 1 or not isinstance(labels[0], str) or labels[0] not in self.entity_names:
            conflicts.append(
                conflict(
                    "label",
                    f"span labels {labels!r} are not one of {self.scheme.entity_names}",
                    {
                        "region_id": region_id,
                        "start": value.get("start"),
                        "end": value.get("end"),
                        "text": value.get("text"),
                        "labels": labels,
                    },
                )
            )
            return None
        span_text = value.get("text") if isinstance(value.get("text"), str) and value.get("text") else None
        try:
            start, end, span, fix = reconcile_span(text, value.get("start"), value.get("end"), span_text)
        except SpanProblem as problem:
            conflicts.append(
                conflict("span", problem.reason, {"region_id": region_id, "label": labels[0], **problem.detail})
            )
            return None
        if fix:
            fixes[fix] = fixes.get(fix, 0) + 1
        return {"start": start, "end": end, "label": labels[0], "text": span, "stance": None, "region_id": region_id}


# --- files ---------------------------------------------------------------------------------------


def default_out() -> Path:
    return project_root() / "annotations" / "annotations.jsonl"


def default_state_path(out: Path) -> Path:
    key = hashlib.sha256(str(out.resolve()).encode()).hexdigest()[:16]
    return state_dir() / "studio" / "pull" / f"{key}.json"


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-") or "project"


def save_raw_export(raw: bytes, exports_dir: Path, name: str) -> Path:
    """Write the export byte for byte to `<exports_dir>/<name>-<UTC timestamp>.json`."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = exports_dir / f"{_slug(name)}-{stamp}.json"
    counter = 1
    while path.exists():
        path = exports_dir / f"{_slug(name)}-{stamp}-{counter}.json"
        counter += 1
    with atomic_write(path) as handle:
        handle.write(raw)
    return path


def users_sidecar(export_path: Path) -> Path:
    """`<export stem>.users` (JSON): not `*.json`, so globbing the exports finds only exports."""
    return export_path.with_name(export_path.stem + ".users")


def read_users(export_path: Path) -> dict[int, str]:
    """id -> email saved next to an export by `pull` (so `import` names annotators the same way)."""
    try:
        data = orjson.loads(users_sidecar(export_path).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    users = {int_id(k): v for k, v in _dict(_dict(data).get("users")).items() if v}
    return {user_id: str(email) for user_id, email in users.items() if user_id is not None}


def corpus_hashes(articles_glob: str | None) -> dict[str, str] | None:
    """article id -> text_sha256 of the normalised corpus, or None when there is no corpus here."""
    from newsstance.studio.push import article_paths

    paths = article_paths(articles_glob)
    if not paths:
        return None
    return {
        rec["id"]: rec["text_sha256"]
        for path in paths
        for rec in read_jsonl(path)
        if isinstance(rec.get("id"), str) and isinstance(rec.get("text_sha256"), str)
    }


def parse_export(raw: bytes, where: str) -> list[dict[str, Any]]:
    """The task list of a full JSON export; also `{"tasks": [...]}` (the tasks API) and a UTF-8 BOM."""
    try:
        tasks = orjson.loads(raw.removeprefix(b"\xef\xbb\xbf"))
    except orjson.JSONDecodeError as exc:
        raise UserError(f"{where}: not valid JSON ({exc})") from None
    if isinstance(tasks, dict) and isinstance(tasks.get("tasks"), list):
        tasks = tasks["tasks"]
    if not isinstance(tasks, list) or any(not isinstance(t, dict) or "data" not in t for t in tasks):
        raise UserError(f"{where}: not a Label Studio JSON export (a list of tasks with `data`)")
    if any("annotations" not in t for t in tasks):
        raise UserError(f"{where}: tasks lack `annotations` - export as JSON (not JSON_MIN, CSV or CONLL)")
    if any(t["annotations"] is not None and not isinstance(t["annotations"], list) for t in tasks):
        raise UserError(f"{where}: a task's `annotations` is not a list - not a Label Studio JSON export")
    return tasks


# --- ingestion (shared by pull and import) -------------------------------------------------------


@dataclass
class PullResult:
    export_path: Path
    out: Path
    conflicts_path: Path
    project_ids: list[int | None]
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
            f"{self.new} new, {self.updated} updated, {self.unchanged} unchanged, {len(self.deleted)} deleted "
            f"annotation(s); {self.conflicts} conflict(s) from this pull -> {self.conflicts_path}; "
            f"span fixes: {fixes}; {self.records} record(s) in {self.out} ({self.seconds:.1f} s)"
        )


def _read_existing(path: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(path)) if path.is_file() else []


def ingest_export(
    raw: bytes,
    export_path: Path,
    *,
    out: Path,
    conflicts_path: Path,
    state_path: Path,
    scheme: Scheme,
    users: dict[int, str],
    article_hashes: dict[str, str] | None,
    project_id: int | None = None,
    full: bool = False,
    progress: bool = True,
) -> PullResult:
    """Convert an export and merge it into `out` and `conflicts_path` incrementally."""
    started = time.perf_counter()
    tasks = parse_export(raw, str(export_path))
    pairs = [(task, ann) for task in tasks for ann in task.get("annotations") or []]
    scope = {int_id(task.get("project")) for task in tasks} | ({project_id} if project_id is not None else set())
    scope |= {project_of(task, ann) for task, ann in pairs if isinstance(ann, dict)}
    scope = scope or {None}
    id_counts: dict[int, int] = {}
    for _, annotation in pairs:
        annotation_id = int_id(annotation.get("id")) if isinstance(annotation, dict) else None
        if annotation_id is not None:
            id_counts[annotation_id] = id_counts.get(annotation_id, 0) + 1
    duplicated = {aid for aid, count in id_counts.items() if count > 1}

    try:
        state = _dict(_dict(orjson.loads(state_path.read_bytes())).get("annotations"))
    except (OSError, orjson.JSONDecodeError):
        state = {}
    records = {rec["annotation_id"]: rec for rec in _read_existing(out)}
    all_conflicts = _read_existing(conflicts_path)
    ours = [c for c in all_conflicts if c.get("stage") == STAGE]
    conflicted_ids = {int_id(c.get("annotation_id")) for c in ours} - {None}

    converter = Converter(scheme, users, article_hashes)
    result = PullResult(export_path, out, conflicts_path, sorted(scope, key=lambda p: (p is None, p or 0)))
    reconverted: set[int] = set()
    new_conflicts: list[dict[str, Any]] = []
    seen: set[int] = set()
    first_task: dict[int, Any] = {}
    for task, annotation in tqdm(pairs, desc="convert", unit="annotation", disable=not progress or len(pairs) < 2000):
        problem = _unusable_annotation(task, annotation, first_task)
        if problem is not None:
            new_conflicts.append(problem)
            continue
        annotation["id"] = annotation_id = int(annotation["id"])
        seen.add(annotation_id)
        first_task[annotation_id] = task.get("id")
        stamp = annotation.get("updated_at") or annotation.get("created_at") or fingerprint(annotation)
        known = _dict(state.get(str(annotation_id)))
        present = annotation_id in records or annotation_id in conflicted_ids
        if not full and known.get("updated_at") == stamp and present and annotation_id not in duplicated:
            result.unchanged += 1
            continue
        if known or annotation_id in records:
            result.updated += 1
        else:
            result.new += 1
        reconverted.add(annotation_id)
        conversion = converter.convert(task, annotation)
        records.pop(annotation_id, None)
        if conversion.record is not None:
            records[annotation_id] = conversion.record
        new_conflicts += conversion.conflicts
        for fix, count in conversion.fixes.items():
            result.fixes[fix] = result.fixes.get(fix, 0) + count
        state[str(annotation_id)] = {"updated_at": stamp, "project_id": project_of(task, annotation)}

    gone = {aid for aid, rec in records.items() if rec.get("project_id") in scope and aid not in seen}
    gone |= {
        int(aid)
        for aid, info in state.items()
        if int_id(aid) is not None and _dict(info).get("project_id") in scope and int(aid) not in seen
    }
    for annotation_id in gone:
        records.pop(annotation_id, None)
        state.pop(str(annotation_id), None)
    result.deleted = sorted(gone)

    replaced = reconverted | gone

    def regenerated(conflict: dict[str, Any]) -> bool:
        """Pull conflicts this run writes again: of re-converted annotations, or id-less ones of this scope."""
        if conflict.get("stage") != STAGE:
            return False
        annotation_id = conflict.get("annotation_id")
        if isinstance(annotation_id, int) and not isinstance(annotation_id, bool):
            return annotation_id in replaced
        return conflict.get("project_id") in scope

    kept = [c for c in all_conflicts if not regenerated(c)]
    ordered = sorted(
        records.values(), key=lambda r: (r.get("project_id") is None, r.get("project_id") or 0, r["annotation_id"])
    )
    result.records = write_jsonl(out, ordered)
    write_jsonl(conflicts_path, kept + new_conflicts)
    write_json(state_path, {"out": str(out), "annotations": state})
    result.conflicts = len(new_conflicts)
    result.seconds = time.perf_counter() - started
    return result


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
    return (
        out,
        conflicts or out.parent / "conflicts.jsonl",
        exports_dir or out.parent / "exports",
        state_path or default_state_path(out),
    )


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
    progress: bool = True,
) -> PullResult:
    """Download the project's full JSON export, keep it raw, convert it (see module docstring)."""
    out, conflicts, exports_dir, state_path = _resolve_paths(out, conflicts, exports_dir, state_path)
    client = conn.client()
    info = require_project(client, conn, project)
    chunks = []
    with (
        conn.errors("exporting the project"),
        tqdm(desc="export", unit="B", unit_scale=True, disable=not progress) as bar,
    ):
        for chunk in client.projects.exports.download_sync(info["id"], export_type="JSON", download_all_tasks=True):
            chunks.append(chunk)
            bar.update(len(chunk))
    raw = b"".join(chunks)
    export_path = save_raw_export(raw, exports_dir, project)
    with conn.errors("listing users"):
        users = {int(u.id): str(u.email) for u in client.users.list() if u.email}
    write_json(users_sidecar(export_path), {"url": conn.url, "users": {str(k): v for k, v in users.items()}})
    return ingest_export(
        raw,
        export_path,
        out=out,
        conflicts_path=conflicts,
        state_path=state_path,
        scheme=load_scheme(),
        users=users,
        article_hashes=corpus_hashes(articles_glob),
        project_id=int(info["id"]),
        full=full,
        progress=progress,
    )


def import_export(
    path: Path,
    *,
    out: Path | None = None,
    conflicts: Path | None = None,
    exports_dir: Path | None = None,
    state_path: Path | None = None,
    articles_glob: str | None = None,
    full: bool = False,
    progress: bool = True,
) -> PullResult:
    """Offline twin of `pull`: ingest an export file someone downloaded from Label Studio."""
    out, conflicts, exports_dir, state_path = _resolve_paths(out, conflicts, exports_dir, state_path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UserError(f"export not found: {path}") from None
    except OSError as exc:
        raise UserError(f"cannot read export {path}: {exc.strerror or exc}") from None
    users = read_users(path)
    if path.resolve().parent != exports_dir.resolve():
        saved = save_raw_export(raw, exports_dir, path.stem)
        if users_sidecar(path).is_file():
            shutil.copyfile(users_sidecar(path), users_sidecar(saved))
        path = saved
    return ingest_export(
        raw,
        path,
        out=out,
        conflicts_path=conflicts,
        state_path=state_path,
        scheme=load_scheme(),
        users=users,
        article_hashes=corpus_hashes(articles_glob),
        full=full,
        progress=progress,
    )


def count_by_kind(conflicts: Iterable[dict[str, Any]]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for conflict in conflicts:
        counts[conflict["kind"]] = counts.get(conflict["kind"], 0) + 1
    return counts
