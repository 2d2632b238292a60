"""Label Studio JSON export -> annotation records: pure conversion, no files, no network.

Only the full JSON export is read (JSON_MIN misaligns per-region choices, CONLL drops nested
spans and annotator ids). Spans are verified against the task text in code points; offsets
that only fit as UTF-16 units (tools that count like JavaScript) are converted, padding
whitespace is trimmed, and the mention stance is joined to its span by region id. What cannot
be reconciled becomes a conflict entry (see `newsstance.conflicts`), one per problem:

    {"kind": ..., "annotation_id": int, "article_id": str|null, "task_id": int|null,
     "project_id": int|null, "reason": "one line", "detail": {...}, "stage": "pull"}

`kind` is one of CONFLICT_KINDS. The record of an annotation with span-level conflicts is still
written without the offending span (or stance); an annotation whose task text does not match
its article (kinds `task`, `text_hash`) gets no record at all. Scheme rules people must fix in
Label Studio (`overlap`: spans sharing characters against the scheme's `span_overlap`;
`required`: an unanswered document stance question) are reported while the record keeps what
the annotator wrote: choosing which of two overlapping spans to keep is a person's call, and
adjudication refuses gold that breaks the rules, so `build` never meets them.

Exports of other versions and tools are read leniently where the meaning is clear (`completed_by`
as a user object, digit-string ids, missing timestamps/`lead_time`/`was_cancelled`, result items
with extra keys or without `value.text`); everything else about an annotation becomes a conflict,
never a crash. Annotators are named by pseudonymous ids (`newsstance.studio.identities`).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Protocol

import orjson

from newsstance.conflicts import PULL
from newsstance.ids import text_sha256
from newsstance.scheme import ENTITIES_NAME, MENTION_STANCE_NAME, Scheme, overlap_violations, record_validator
from newsstance.studio.identities import Identities

STAGE = PULL
CONFLICT_KINDS = (
    "task",  # the task lacks a usable text / article id / hash: no record
    "text_hash",  # task text differs from the pushed article or the corpus article: no record
    "span",  # offsets cannot be reconciled with the text, or the span is empty: span dropped
    "label",  # unknown or multiple labels/choices: span or stance dropped
    "region",  # per-region choice whose region is missing, or an ambiguous region id: stance dropped
    "control",  # result of a control the scheme does not define: result dropped
    "stance",  # several answers to one document stance question: answer dropped
    "record",  # the converted record fails the schema or has an unreadable field
    "overlap",  # spans share characters against the scheme's span_overlap: record kept, fix in review
    "required",  # a document stance question is unanswered: record kept, fix in review
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


class MakeConflict(Protocol):
    """`Converter.convert`'s conflict factory: the annotation's ids are bound, the rest is per problem."""

    def __call__(self, kind: str, reason: str, detail: dict[str, Any] | None = None, /) -> dict[str, Any]: ...


@dataclass
class _Parts:
    """What the result items of one annotation gave, while per-region stances wait for their spans."""

    regions: dict[str, dict[str, Any]] = field(default_factory=dict)  # region id -> its (first) span
    entities: list[dict[str, Any]] = field(default_factory=list)
    mention_stances: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # region id -> choice results
    stances: dict[str, str] = field(default_factory=dict)  # target id -> document stance
    answered: dict[str, int] = field(default_factory=dict)  # target id -> answers seen


class Converter:
    """Turns (task, annotation) pairs of a JSON export into records, per the scheme."""

    def __init__(
        self,
        scheme: Scheme,
        identities: Identities | None = None,
        article_hashes: dict[str, str] | None = None,
    ):
        self.scheme = scheme
        self.identities = identities or Identities(None)
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
        """One annotation -> its record and conflicts, phase by phase (each phase adds what it finds)."""
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
        parts = self._read_results(annotation, text, conflict, conflicts, fixes)
        self._join_mention_stances(parts, conflict, conflicts)
        for entity in parts.entities:
            entity.pop("ambiguous", None)
        parts.entities.sort(key=lambda e: (e["start"], e["end"], e["label"], e["region_id"] or ""))
        record = self._record(annotation, data, base, parts, conflict, conflicts)
        if not record["cancelled"]:
            conflicts += self._rule_conflicts(parts.entities, parts.stances, conflict)
        errors = self.validator.errors(record)
        if errors:
            conflicts.append(
                conflict(
                    "record", "converted record fails the annotation schema", {"errors": [str(e) for e in errors[:5]]}
                )
            )
            return Conversion(None, conflicts, fixes)
        return Conversion(record, conflicts, fixes)

    def _read_results(
        self,
        annotation: dict[str, Any],
        text: str,
        conflict: MakeConflict,
        conflicts: list[dict[str, Any]],
        fixes: dict[str, int],
    ) -> _Parts:
        """Sort the result items by control; stances are joined to spans later, once all regions are known."""
        parts = _Parts()
        results = annotation.get("result") or []
        if not isinstance(results, list):
            results = [results]
        for result in results:
            if not isinstance(result, dict):
                conflicts.append(conflict("record", "result item is not a JSON object", {"result": result}))
                continue
            from_name, kind = result.get("from_name"), result.get("type")
            if from_name == ENTITIES_NAME and kind == "labels":
                self._add_entity(parts, result, text, conflict, conflicts, fixes)
            elif from_name == MENTION_STANCE_NAME and kind == "choices":
                _add_mention_stance(parts, result, conflict, conflicts)
            elif isinstance(from_name, str) and from_name in self.targets and kind == "choices":
                self._add_document_stance(parts, from_name, _dict(result.get("value")), conflict, conflicts)
            else:
                conflicts.append(_control_conflict(result, conflict))
        return parts

    def _add_entity(
        self,
        parts: _Parts,
        result: dict[str, Any],
        text: str,
        conflict: MakeConflict,
        conflicts: list[dict[str, Any]],
        fixes: dict[str, int],
    ) -> None:
        """A span; a region id used twice makes both spans ambiguous, so neither can take a stance."""
        entity = self._entity(result, text, conflict, conflicts, fixes)
        if entity is None:
            return
        if entity["region_id"] is not None and entity["region_id"] in parts.regions:
            conflicts.append(
                conflict(
                    "region",
                    "two spans share one region id; neither gets a stance",
                    {"region_id": entity["region_id"]},
                )
            )
            parts.regions[entity["region_id"]]["ambiguous"] = True
            entity["ambiguous"] = True
        parts.regions.setdefault(entity["region_id"], entity)
        parts.entities.append(entity)

    def _add_document_stance(
        self,
        parts: _Parts,
        from_name: str,
        value: dict[str, Any],
        conflict: MakeConflict,
        conflicts: list[dict[str, Any]],
    ) -> None:
        """One answer to a document stance question; a second answer voids both (a person must choose)."""
        target = self.targets[from_name]
        choices = _names(value.get("choices"))
        parts.answered[target] = parts.answered.get(target, 0) + 1
        if len(choices) != 1 or not isinstance(choices[0], str) or choices[0] not in self.document_stance_names:
            conflicts.append(
                conflict(
                    "label",
                    f"{from_name}: {choices!r} is not one of {self.scheme.document_stance_names}",
                    {"choices": choices},
                )
            )
        elif parts.answered[target] > 1:
            conflicts.append(
                conflict(
                    "stance",
                    f"{from_name} answered more than once",
                    {"choices": [parts.stances.pop(target, None), choices[0]]},
                )
            )
        else:
            parts.stances[target] = choices[0]

    def _join_mention_stances(self, parts: _Parts, conflict: MakeConflict, conflicts: list[dict[str, Any]]) -> None:
        """Give each span its per-region stance, which Label Studio exports as a separate result item."""
        dropped_regions = {
            c["detail"].get("region_id"): c
            for c in conflicts
            if c["kind"] in {"span", "label"} and c["detail"].get("region_id") is not None
        }
        for region_id, choice_results in parts.mention_stances.items():
            entity = parts.regions.get(region_id)
            if entity is None:
                _orphan_stance(region_id, choice_results, dropped_regions, conflict, conflicts)
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

    def _record(
        self,
        annotation: dict[str, Any],
        data: dict[str, Any],
        base: dict[str, Any],
        parts: _Parts,
        conflict: MakeConflict,
        conflicts: list[dict[str, Any]],
    ) -> dict[str, Any]:
        """The annotation record (not yet validated); unreadable timestamps become None plus a conflict."""
        stamps = _stamps(annotation, conflict, conflicts)
        created_at, updated_at = stamps["created_at"], stamps["updated_at"]
        lead_time = annotation.get("lead_time")
        return {
            "annotation_id": annotation.get("id"),
            "task_id": base["task_id"],
            "project_id": base["project_id"],
            "article_id": data["article_id"],
            "text_sha256": data["text_sha256"],
            "annotator": self.identities.pseudonym(annotation.get("completed_by")),
            "created_at": created_at,
            "updated_at": updated_at,
            "lead_time": float(lead_time) if isinstance(lead_time, int | float) and lead_time >= 0 else None,
            "cancelled": flag(annotation.get("was_cancelled", False)),
            "ground_truth": flag(annotation.get("ground_truth", False)),
            "entities": parts.entities,
            "stances": parts.stances,
            "scheme_version": self.scheme.scheme_version,
        }

    def _entity(
        self,
        result: dict[str, Any],
        text: str,
        conflict: MakeConflict,
        conflicts: list[dict[str, Any]],
        fixes: dict[str, int],
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

    def _rule_conflicts(
        self, entities: list[dict[str, Any]], stances: dict[str, str], conflict: MakeConflict
    ) -> list[dict[str, Any]]:
        """Scheme rules a person must fix in Label Studio: span overlap and unanswered questions."""
        found = [
            conflict(
                "overlap",
                f"spans {a['start']}:{a['end']} {a['label']} and {b['start']}:{b['end']} {b['label']} "
                f"{'are identical' if (a['start'], a['end']) == (b['start'], b['end']) else 'overlap'} "
                f"(the scheme allows overlap: {self.scheme.span_overlap})",
                {"spans": [_span_detail(a), _span_detail(b)]},
            )
            for a, b in overlap_violations(entities, self.scheme.span_overlap)
        ]
        missing = [target for target in self.scheme.target_ids if target not in stances]
        if missing:
            found.append(
                conflict(
                    "required",
                    f"document stance not answered for {', '.join(missing)}",
                    {"targets": missing},
                )
            )
        return found


def _add_mention_stance(
    parts: _Parts, result: dict[str, Any], conflict: MakeConflict, conflicts: list[dict[str, Any]]
) -> None:
    """Hold a per-region stance until all spans are read: it may come before its region."""
    if result.get("id") is None:
        conflicts.append(
            conflict(
                "region",
                "per-region stance without a region id",
                {"region_id": None, "value": _dict(result.get("value"))},
            )
        )
        return
    parts.mention_stances.setdefault(str(result.get("id")), []).append(result)


def _control_conflict(result: dict[str, Any], conflict: MakeConflict) -> dict[str, Any]:
    """A result of a control the scheme does not define (relations included): dropped, reported."""
    from_name, kind = result.get("from_name"), result.get("type")
    if kind == "relation":
        return conflict(
            "control",
            f"relation {result.get('from_id')!r} -> {result.get('to_id')!r} is not part of the scheme",
            {"result": result},
        )
    return conflict("control", f"result of unknown control {from_name!r} (type {kind!r})", {"result": result})


def _orphan_stance(
    region_id: str,
    choice_results: list[dict[str, Any]],
    dropped_regions: dict[Any, dict[str, Any]],
    conflict: MakeConflict,
    conflicts: list[dict[str, Any]],
) -> None:
    """A per-region stance without its span: told by the span's own conflict when the span was dropped."""
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


def _stamps(
    annotation: dict[str, Any], conflict: MakeConflict, conflicts: list[dict[str, Any]]
) -> dict[str, str | None]:
    """created_at/updated_at in UTC; an unreadable one becomes None and a `record` conflict, not a crash."""
    stamps: dict[str, str | None] = {}
    for name in ("created_at", "updated_at"):
        try:
            stamps[name] = utc_iso(annotation.get(name))
        except (ValueError, OverflowError) as exc:
            stamps[name] = None
            conflicts.append(
                conflict("record", f"unreadable {name} {annotation.get(name)!r}: {exc}", {name: annotation.get(name)})
            )
    return stamps


def _span_detail(entity: Mapping[str, Any]) -> dict[str, Any]:
    return {key: entity.get(key) for key in ("start", "end", "label", "text", "region_id")}
