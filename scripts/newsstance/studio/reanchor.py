"""`studio push --update` and `import-annotations`: annotations follow an article's text.

When normalisation changes an article's text, its Label Studio task still shows the old one and
every annotation, prediction and gold record points into it. For each such article this module
aligns old -> new text (`newsstance.align`), rewrites the task's text, its annotations' and
predictions' result items, and re-anchors the local `annotations.jsonl` and `gold.jsonl` records.
A span that cannot be placed exactly becomes a conflict (stage `align`) carrying the span and
both texts; the other spans move on. A gold record with such a span is taken out of the gold file
whole and kept in its conflict, so adjudication or review decides it again.

An article's record locates its raw text (`provenance`: path, sha256, line/record index); mapping
raw -> normalised offsets is the same alignment, which is what `import-annotations` uses for
annotations made on a raw or differently cleaned text.
"""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import orjson

from newsstance.align import Alignment, move_entities
from newsstance.conflicts import ALIGN, IMPORT, Conflict, read_lines, replace_conflicts
from newsstance.errors import UserError
from newsstance.ids import text_sha256
from newsstance.records import Record, read_jsonl, write_jsonl
from newsstance.scheme import ENTITIES_NAME, MENTION_STANCE_NAME, Scheme, load_scheme

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from newsstance.studio.client import Connection
    from newsstance.studio.identities import Identities


def align_conflict(stage: str, article_id: str, reason: str, old_text: str, new_text: str, **detail: Any) -> Conflict:
    """One span (or record) that could not follow the text: both texts go with it."""
    return {
        "stage": stage,
        "kind": "unplaced_span",
        "annotation_id": detail.pop("annotation_id", None),
        "article_id": article_id,
        "reason": reason,
        "detail": {**detail, "old_text": old_text, "new_text": new_text},
    }


def move_results(
    alignment: Alignment, results: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Label Studio result items with their `value.start/end/text` moved; items that cannot be placed."""
    moved, lost = [], []
    for item in results:
        value = item.get("value") if isinstance(item, dict) else None
        if (
            not isinstance(value, dict)
            or not isinstance(value.get("start"), int)
            or not isinstance(value.get("end"), int)
        ):
            moved.append(item)  # document-level choices and the like carry no offsets
            continue
        move = alignment.span(value["start"], value["end"])
        if not move.placed:
            lost.append({**item, "why": move.how})
            continue
        assert move.start is not None and move.end is not None
        new_value = {**value, "start": move.start, "end": move.end}
        if "text" in value:
            new_value["text"] = alignment.new[move.start : move.end]
        moved.append({**item, "value": new_value})
    return moved, lost


@dataclass
class UpdateResult:
    articles: int = 0
    annotations: int = 0
    predictions: int = 0
    spans_moved: int = 0
    spans_unplaced: int = 0
    records_moved: int = 0
    gold_moved: int = 0
    gold_to_conflicts: int = 0
    conflicts: list[Conflict] = field(default_factory=list)

    def summary(self) -> str:
        return (
            f"{self.articles} changed article(s) updated: {self.annotations} annotation(s), "
            f"{self.predictions} prediction(s), {self.spans_moved} span(s) re-anchored, "
            f"{self.spans_unplaced} could not be placed (-> conflicts); local records {self.records_moved}, "
            f"gold {self.gold_moved} re-anchored, {self.gold_to_conflicts} gold record(s) sent to conflicts"
        )


def _dump(value: Any) -> dict[str, Any]:
    return value.model_dump() if hasattr(value, "model_dump") else dict(value)


def update_task(
    client: LabelStudio, task_id: int, article: Mapping[str, Any], result: UpdateResult
) -> tuple[str, list[Conflict]]:
    """Re-anchor one task's annotations and predictions on the article's new text; returns the old text."""
    task = _dump(client.tasks.get(str(task_id)))
    data = dict(task.get("data") or {})
    old_text, new_text = str(data.get("text") or ""), str(article["text"])
    alignment = Alignment(old_text, new_text)
    conflicts: list[Conflict] = []
    updates: list[tuple[str, int, list[dict[str, Any]]]] = []
    for kind, items in (("annotation", task.get("annotations") or []), ("prediction", task.get("predictions") or [])):
        for item in items:
            item = _dump(item)
            results = list(item.get("result") or [])
            moved, lost = move_results(alignment, results)
            # A region is one span; its per-region choice repeats the offsets under the same id.
            spans = {str(r.get("id")) for r in results if isinstance((r.get("value") or {}).get("start"), int)}
            regions = list({str(r.get("id")): r for r in lost}.values())
            result.spans_moved += len(spans) - len(regions)
            result.spans_unplaced += len(regions)
            for region in regions:
                conflicts.append(
                    align_conflict(
                        ALIGN,
                        str(article["id"]),
                        f"{kind} {item['id']}: span {region['value']['start']}:{region['value']['end']} "
                        f"{(region['value'].get('text') or '')!r} cannot be placed on the new text ({region['why']})",
                        old_text,
                        new_text,
                        annotation_id=int(item["id"]) if kind == "annotation" else None,
                        task_id=task_id,
                        prediction_id=int(item["id"]) if kind == "prediction" else None,
                        results=[r for r in lost if str(r.get("id")) == str(region.get("id"))],
                    )
                )
            if moved != results:
                updates.append((kind, int(item["id"]), [{k: v for k, v in r.items() if k != "why"} for r in moved]))
    data.update(text=new_text, text_sha256=article["text_sha256"])
    client.tasks.update(str(task_id), data=data)
    for kind, item_id, moved in updates:
        if kind == "annotation":
            client.annotations.update(id=item_id, result=moved)
            result.annotations += 1
        else:
            client.predictions.update(id=item_id, result=moved)
            result.predictions += 1
    result.articles += 1
    return old_text, conflicts


def reanchor_local(
    path: Path, texts: Mapping[str, tuple[str, str, str]], *, gold: bool, stage: str = ALIGN
) -> tuple[int, list[Conflict]]:
    """Re-anchor the records of changed articles in an annotations or gold file.

    `texts` maps article id -> (old text, new text, new text_sha256); only records made on the
    old text move. Returns how many moved and the conflicts (gold records that cannot be placed
    whole leave the file and ride in their conflict)."""
    if not path.is_file():
        return 0, []
    old_hashes = {article_id: text_sha256(old) for article_id, (old, _, _) in texts.items()}
    kept: list[Record] = []
    conflicts: list[Conflict] = []
    moved_count = 0
    for record in read_jsonl(path):
        article_id = str(record.get("article_id"))
        if article_id not in texts or record.get("text_sha256") != old_hashes[article_id]:
            kept.append(record)
            continue
        old, new, new_sha = texts[article_id]
        moved, lost = move_entities(Alignment(old, new), record.get("entities") or [])
        if lost and gold:
            conflicts.append(
                align_conflict(
                    stage,
                    article_id,
                    f"gold record: {len(lost)} span(s) cannot be placed on the new text; the record left "
                    f"the gold file and is kept here (re-adjudicate after review)",
                    old,
                    new,
                    gold_record=record,
                    spans=lost,
                )
            )
            continue
        for entity in lost:
            conflicts.append(
                align_conflict(
                    stage,
                    article_id,
                    f"annotation {record.get('annotation_id')}: span {entity['start']}:{entity['end']} "
                    f"{entity.get('text')!r} cannot be placed on the new text ({entity['why']})",
                    old,
                    new,
                    annotation_id=record.get("annotation_id"),
                    span={k: v for k, v in entity.items() if k != "why"},
                )
            )
        kept.append({**record, "entities": moved, "text_sha256": new_sha})
        moved_count += 1
    write_jsonl(path, kept)
    return moved_count, conflicts


def update_changed_articles(
    conn: Connection,
    client: LabelStudio,
    changed: Iterable[Mapping[str, Any]],
    articles: Mapping[str, Mapping[str, Any]],
    *,
    annotations_path: Path,
    gold_path: Path,
    conflicts_path: Path,
) -> UpdateResult:
    """`push --update`: move every changed article's task, annotations, predictions and gold to its new text."""
    result = UpdateResult()
    texts: dict[str, tuple[str, str, str]] = {}
    conflicts: list[Conflict] = []
    for entry in changed:
        article = articles[entry["article_id"]]
        with conn.errors(f"updating task {entry['task_id']} of article {article['id']}"):
            old_text, found = update_task(client, int(entry["task_id"]), article, result)
        texts[str(article["id"])] = (old_text, str(article["text"]), str(article["text_sha256"]))
        conflicts += found
    result.records_moved, found = reanchor_local(annotations_path, texts, gold=False)
    conflicts += found
    result.gold_moved, found = reanchor_local(gold_path, texts, gold=True)
    conflicts += found
    result.gold_to_conflicts = sum(1 for c in found if "gold_record" in c["detail"])
    result.conflicts = conflicts
    done = set(texts)
    replace_conflicts(
        conflicts_path,
        conflicts,
        replaced=lambda entry: entry.get("stage") == ALIGN and entry.get("article_id") in done,
        existing=read_lines(conflicts_path),
    )
    return result


# --- import-annotations --------------------------------------------------------------------------


def foreign_id(*parts: Any) -> int:
    """A stable negative annotation id for an annotation made outside our Label Studio projects
    (Label Studio's ids are positive, so the two never collide and a pull never deletes these)."""
    digest = hashlib.sha256(orjson.dumps(parts, option=orjson.OPT_SORT_KEYS)).digest()
    return -(int.from_bytes(digest[:6], "big") + 1)


def _squash(text: str) -> str:
    return " ".join(text.split())


@dataclass
class ImportResult:
    annotations: int = 0
    spans_moved: int = 0
    spans_unplaced: int = 0
    unmatched: int = 0
    conflicts: list[Conflict] = field(default_factory=list)

    def summary(self, out: Path, conflicts_path: Path) -> str:
        return (
            f"{self.annotations} annotation(s) imported into {out} ({self.spans_moved} span(s) placed on the "
            f"corpus text); {self.spans_unplaced} span(s) and {self.unmatched} document(s) without a corpus "
            f"article -> {conflicts_path}"
        )


def foreign_documents(path: Path, scheme: Scheme) -> Iterable[dict[str, Any]]:
    """Documents of a JSONL file ({text, entities:[{start,end,label,stance?}], stances?, annotator?,
    article_id?, url?}) or of a Label Studio JSON export, as that JSONL form."""
    try:
        head = path.open("rb").read(4096).lstrip(b"\xef\xbb\xbf").lstrip()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    if head.startswith(b"[") or head.startswith(b'{"tasks"'):
        from newsstance.studio.pull import iter_tasks, scan_export

        scan_export(path)
        for task in iter_tasks(path):
            data = task.get("data") or {}
            for annotation in task.get("annotations") or []:
                if not isinstance(annotation, dict) or annotation.get("was_cancelled"):
                    continue
                yield _from_label_studio(task, data, annotation, scheme)
        return
    for number, record in enumerate(read_jsonl(path), start=1):
        if not isinstance(record.get("text"), str) or not isinstance(record.get("entities", []), list):
            raise UserError(f"{path}:{number}: needs `text` (string) and `entities` (list of start/end/label)")
        yield {**record, "source_line": number}


def _from_label_studio(
    task: Mapping[str, Any], data: Mapping[str, Any], annotation: Mapping[str, Any], scheme: Scheme
) -> dict[str, Any]:
    """One annotation of a foreign project in the JSONL form: label spans, per-region stance, choices."""
    results = [r for r in annotation.get("result") or [] if isinstance(r, dict)]
    text_key = next((str(r.get("to_name")) for r in results if r.get("to_name")), "text")
    text = data.get(text_key) if isinstance(data.get(text_key), str) else data.get("text")
    stances_by_region = {
        r.get("id"): (r.get("value") or {}).get("choices", [None])[0]
        for r in results
        if r.get("type") == "choices"
        and (r.get("from_name") == MENTION_STANCE_NAME or "start" in (r.get("value") or {}))
    }
    entities, stances = [], {}
    for r in results:
        value = r.get("value") or {}
        if r.get("type") == "labels" or (r.get("from_name") == ENTITIES_NAME and "labels" in value):
            labels = value.get("labels") or [None]
            entities.append(
                {
                    "start": value.get("start"),
                    "end": value.get("end"),
                    "label": labels[0],
                    "text": value.get("text"),
                    "stance": stances_by_region.get(r.get("id")),
                }
            )
        elif r.get("type") == "choices" and r.get("id") not in stances_by_region:
            target = str(r.get("from_name", "")).removeprefix("stance_")
            if target in scheme.target_ids:
                stances[target] = (value.get("choices") or [None])[0]
    completed_by = annotation.get("completed_by")
    if isinstance(completed_by, dict):
        completed_by = completed_by.get("email") or completed_by.get("id")
    return {
        "text": text,
        "entities": entities,
        "stances": stances,
        "annotator": completed_by,
        "article_id": data.get("article_id"),
        "url": data.get("url"),
        "foreign_id": [task.get("id"), annotation.get("id")],
    }


@dataclass
class _CorpusIndex:
    """Corpus articles by id, by url and by whitespace-squashed text: a foreign document is matched
    by the first that it carries, so annotations made on a re-cleaned text still find their article."""

    by_id: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_url: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    by_text: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    @classmethod
    def of(cls, articles: Iterable[Mapping[str, Any]]) -> _CorpusIndex:
        index = cls()
        for candidate in articles:
            index.by_id[candidate["id"]] = candidate
            if candidate.get("url"):
                index.by_url.setdefault(candidate["url"], candidate)
            index.by_text.setdefault(hashlib.sha256(_squash(candidate["text"]).encode()).hexdigest(), candidate)
        return index

    def match(self, document: Mapping[str, Any], text: str) -> Mapping[str, Any] | None:
        return (
            self.by_id.get(str(document.get("article_id")))
            or self.by_url.get(str(document.get("url")))
            or self.by_text.get(hashlib.sha256(_squash(text).encode()).hexdigest())
        )


def import_annotations(
    path: Path,
    articles: Iterable[Mapping[str, Any]],
    *,
    out: Path,
    conflicts_path: Path,
    identities_path: Path | None = None,
    scheme: Scheme | None = None,
) -> ImportResult:
    """Bring annotations made on another version of the texts onto the corpus by alignment."""
    from newsstance.studio.identities import Identities, private_path

    scheme = scheme or load_scheme()
    index = _CorpusIndex.of(articles)
    identities = Identities(identities_path or private_path(out.parent))
    records = {rec["annotation_id"]: rec for rec in read_jsonl(out)} if out.is_file() else {}
    result = ImportResult()
    conflicts: list[Conflict] = []
    processed: set[int] = set()
    for document in foreign_documents(path, scheme):
        text = str(document.get("text") or "")
        article = index.match(document, text)
        key = document.get("foreign_id") or [text_sha256(text), document.get("annotator"), document.get("source_line")]
        annotation_id = foreign_id(str(path.name), key)
        processed.add(annotation_id)
        if article is None:
            result.unmatched += 1
            conflicts.append(_unmatched_conflict(document, annotation_id))
            continue
        entities = _imported_entities(document, text, article, annotation_id, scheme, result, conflicts)
        records[annotation_id] = _imported_record(document, article, annotation_id, entities, identities, scheme)
        result.annotations += 1
    _write_imported(out, records, identities, conflicts_path, conflicts, processed)
    result.conflicts = conflicts
    return result


def _unmatched_conflict(document: Record, annotation_id: int) -> Conflict:
    """A document no corpus article matches: kept whole in its conflict, so nothing is lost."""
    return {
        "stage": IMPORT,
        "kind": "article",
        "annotation_id": annotation_id,
        "article_id": document.get("article_id"),
        "reason": "no corpus article matches this document (by article_id, url or text)",
        "detail": {"document": document},
    }


def _entity_problem(entity: Mapping[str, Any], text: str, scheme: Scheme) -> str | None:
    """Why a foreign span cannot be trusted on its own text (None: it can): bad offsets, an unknown
    label, or a quoted text that differs from the text at its offsets."""
    start, end = entity.get("start"), entity.get("end")
    label = entity.get("label")
    if type(start) is not int or type(end) is not int or not 0 <= start < end <= len(text):
        return f"offsets {start}..{end} outside the given text"
    if label not in set(scheme.entity_names):
        return f"label {label!r} is not one of {scheme.entity_names}"
    if entity.get("text") is not None and text[start:end] != entity["text"]:
        return f"text[{start}:{end}] is {text[start:end]!r}, not {entity['text']!r}"
    return None


def _imported_entities(
    document: Record,
    text: str,
    article: Mapping[str, Any],
    annotation_id: int,
    scheme: Scheme,
    result: ImportResult,
    conflicts: list[Conflict],
) -> list[Record]:
    """The document's spans moved onto the corpus text; a span that is invalid or cannot be placed
    exactly becomes a conflict (both texts with it) and the others still move."""
    alignment = Alignment(text, article["text"])
    stance_names = set(scheme.stance_names)
    entities = []
    for entity in document.get("entities") or []:
        start, end = entity.get("start"), entity.get("end")
        problem = _entity_problem(entity, text, scheme)
        if problem is None:
            move = alignment.span(start, end)
            if move.placed:
                assert move.start is not None and move.end is not None
                stance = entity.get("stance") if entity.get("stance") in stance_names else None
                entities.append(
                    {
                        "start": move.start,
                        "end": move.end,
                        "label": entity.get("label"),
                        "text": article["text"][move.start : move.end],
                        "stance": stance,
                        "region_id": None,
                    }
                )
                result.spans_moved += 1
                continue
            problem = f"cannot be placed on the corpus text ({move.how})"
        result.spans_unplaced += 1
        conflicts.append(
            align_conflict(
                IMPORT,
                article["id"],
                f"imported span {start}:{end} {entity.get('text')!r}: {problem}",
                text,
                article["text"],
                annotation_id=annotation_id,
                span=entity,
            )
        )
    entities.sort(key=lambda e: (e["start"], e["end"], e["label"]))
    return entities


def _imported_record(
    document: Record,
    article: Mapping[str, Any],
    annotation_id: int,
    entities: list[Record],
    identities: Identities,
    scheme: Scheme,
) -> Record:
    """The local `annotations.jsonl` record: no Label Studio task or project, a pseudonymous
    annotator, and only the document stances the scheme knows."""
    stances = {
        target: value
        for target, value in (document.get("stances") or {}).items()
        if target in scheme.target_ids and value in scheme.document_stance_names
    }
    return {
        "annotation_id": annotation_id,
        "task_id": None,
        "project_id": None,
        "article_id": article["id"],
        "text_sha256": article["text_sha256"],
        "annotator": identities.pseudonym(document.get("annotator")),
        "created_at": None,
        "updated_at": None,
        "lead_time": None,
        "cancelled": False,
        "ground_truth": False,
        "entities": entities,
        "stances": stances,
        "scheme_version": scheme.scheme_version,
    }


def _write_imported(
    out: Path,
    records: Mapping[int, Record],
    identities: Identities,
    conflicts_path: Path,
    conflicts: list[Conflict],
    processed: set[int],
) -> None:
    """Write the records (project ones first, imported ones after), the pseudonyms, and the import
    conflicts; conflicts of earlier imports of these same annotations are replaced, not duplicated."""
    ordered = sorted(
        records.values(), key=lambda r: (r.get("project_id") is None, r.get("project_id") or 0, r["annotation_id"])
    )
    write_jsonl(out, ordered)
    with contextlib.suppress(OSError):
        identities.save()
    replace_conflicts(
        conflicts_path,
        conflicts,
        replaced=lambda entry: entry.get("stage") == IMPORT and entry.get("annotation_id") in processed,
    )
