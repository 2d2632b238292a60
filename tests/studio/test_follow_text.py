"""Incremental pull (with deletions), scheme-rule conflicts, annotations that follow a changed text,
and foreign annotations - against the session's real Label Studio."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from newsstance.conflicts import read_conflicts
from newsstance.gold.adjudicate import run_adjudicate
from newsstance.ids import text_sha256
from newsstance.records import read_jsonl, write_jsonl
from newsstance.scheme import load_scheme
from newsstance.studio.pull import pull
from newsstance.studio.push import push_articles
from newsstance.studio.reanchor import import_annotations
from newsstance.studio.review import build_review_tasks

pytestmark = [pytest.mark.labelstudio, pytest.mark.xdist_group("labelstudio")]

# A fictional article as a first cleaner left it, and as a changed cleaner leaves it:
# paragraphs separated by a blank line, and a navigation line removed.
RAW_TEXT = (
    "Share this story | Subscribe\n"
    "Mayor Ana Ruiz of Portvale backed the Tidewater Dam on Monday.\n"
    "Velt Energy said the Kelmar valley would flood. Ana Ruiz disagreed.\n"
    "Portvale votes in May."
)
OLD_TEXT = RAW_TEXT
NEW_TEXT = RAW_TEXT.replace("Share this story | Subscribe\n", "").replace("\n", "\n\n")


def span(text: str, piece: str, nth: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(nth + 1):
        start = text.index(piece, start + 1)
    return start, start + len(piece)


def region(rid: str, text: str, piece: str, label: str, nth: int = 0, stance: str | None = None) -> list[dict]:
    start, end = span(text, piece, nth)
    value = {"start": start, "end": end, "text": piece}
    items = [
        {"id": rid, "from_name": "entities", "to_name": "text", "type": "labels", "value": {**value, "labels": [label]}}
    ]
    if stance:
        items.append(
            {
                "id": rid,
                "from_name": "mention_stance",
                "to_name": "text",
                "type": "choices",
                "value": {**value, "choices": [stance]},
            }
        )
    return items


def stances(dam: str = "favor", levy: str = "not_about") -> list[dict]:
    return [
        {"id": f"d-{t}", "from_name": f"stance_{t}", "to_name": "text", "type": "choices", "value": {"choices": [v]}}
        for t, v in (("tidewater_dam", dam), ("carbon_levy", levy))
    ]


def with_text(article: dict[str, Any], text: str) -> dict[str, Any]:
    return {**article, "text": text, "text_sha256": text_sha256(text)}


def annotate(client: Any, task_id: int, result: list[dict]) -> int:
    return int(client.annotations.create(id=task_id, result=result, ground_truth=False, was_cancelled=False).id)


def run_pull(conn: Any, title: str, work: Path, **options: Any) -> Any:
    return pull(
        conn,
        project=title,
        out=work / "annotations.jsonl",
        exports_dir=work / "exports",
        state_path=work / "pull-state.json",
        articles_glob=str(work / "none-*.jsonl"),
        progress=False,
        **options,
    )


def records_of(work: Path) -> dict[int, dict[str, Any]]:
    return {r["annotation_id"]: r for r in read_jsonl(work / "annotations.jsonl")}


def test_incremental_pull_fetches_changes_and_deletions(ls_conn, ls_client, make_article, unique_title, tmp_path):
    title = unique_title("incr")
    articles = [make_article(f"Story {n}", f"Mayor Ana Ruiz of Portvale spoke on day {n}.") for n in range(4)]
    pushed = push_articles(ls_conn, articles, project=title, progress=False, state_path=tmp_path / "push.json")
    tasks = [pushed.task_ids[a["id"]] for a in articles]
    result = region("r1", articles[0]["text"], "Ana Ruiz", "PERSON") + stances()
    first = [annotate(ls_client, tasks[0], result), annotate(ls_client, tasks[1], result)]

    full = run_pull(ls_conn, title, tmp_path, keep_exports=2)
    assert (full.mode, full.new, sorted(records_of(tmp_path))) == ("full", 2, sorted(first))

    quiet = run_pull(ls_conn, title, tmp_path, keep_exports=2)
    assert (quiet.mode, quiet.tasks_fetched, quiet.new, quiet.updated, quiet.deleted) == ("incremental", 0, 0, 0, [])
    assert sorted(records_of(tmp_path)) == sorted(first)

    edited = region("r1", articles[0]["text"], "Portvale", "GPE") + stances(dam="against")
    ls_client.annotations.update(id=first[0], result=edited)
    ls_client.annotations.delete(id=first[1])  # the task's only annotation: the task drops out of exports
    third = annotate(ls_client, tasks[2], result)
    step = run_pull(ls_conn, title, tmp_path, keep_exports=2)
    assert step.mode == "incremental" and step.tasks_fetched == 3  # only the three touched tasks
    assert (step.new, step.updated, step.deleted) == (1, 1, [first[1]])
    records = records_of(tmp_path)
    assert sorted(records) == sorted([first[0], third])
    assert [(e["text"], e["label"]) for e in records[first[0]]["entities"]] == [("Portvale", "GPE")]
    assert records[first[0]]["stances"]["tidewater_dam"] == "against"

    # A deleted task leaves no trace in the task list: the project shrinking forces a full pull.
    ls_client.tasks.delete(str(tasks[2]))
    after_delete = run_pull(ls_conn, title, tmp_path, keep_exports=2)
    assert after_delete.mode == "full" and after_delete.deleted == [third]
    assert sorted(records_of(tmp_path)) == [first[0]]

    saved = sorted((tmp_path / "exports").glob("*.json.gz"))
    assert len(saved) == 2  # retention
    assert all(isinstance(orjson.loads(gzip.decompress(p.read_bytes())), list) for p in saved)
    # Periodic check: with --full-every 1 every pull is full.
    assert run_pull(ls_conn, title, tmp_path, full_every=1).mode == "full"


def test_overlap_and_missing_choice_are_conflicts_pushed_to_review(
    ls_conn, ls_client, make_article, unique_title, tmp_path
):
    title = unique_title("rules")
    article = make_article("Harbour row", "The Portvale Harbour Authority met Velt Energy in Portvale.")
    corpus = tmp_path / "articles-1.jsonl"
    write_jsonl(corpus, [article])
    pushed = push_articles(ls_conn, [article], project=title, progress=False, state_path=tmp_path / "push.json")
    text = article["text"]
    nested = region("a", text, "Portvale Harbour Authority", "ORG") + region("b", text, "Portvale", "GPE")
    overlap_id = annotate(ls_client, pushed.task_ids[article["id"]], nested + stances())
    unanswered_id = annotate(ls_client, pushed.task_ids[article["id"]], region("c", text, "Velt Energy", "ORG"))
    run_pull(ls_conn, title, tmp_path)
    conflicts = tmp_path / "conflicts.jsonl"
    kinds = {(c["kind"], c["annotation_id"]) for c in read_conflicts(conflicts, "pull")}
    assert ("overlap", overlap_id) in kinds and ("required", unanswered_id) in kinds

    gold, entries = run_adjudicate(tmp_path / "annotations.jsonl", tmp_path / "gold.jsonl", conflicts, load_scheme())
    assert gold == []  # never gold that `build` would refuse
    assert {e["reason"] for e in entries} & {"overlapping_spans", "unresolved_stance"}
    tasks = build_review_tasks(conflicts, tmp_path / "annotations.jsonl", str(corpus))
    assert [t["data"]["article_id"] for t in tasks] == [article["id"]]


def test_push_update_reanchors_annotations_predictions_and_gold(
    ls_conn, ls_client, make_article, unique_title, tmp_path
):
    title = unique_title("follow")
    old = with_text(make_article("Dam vote", OLD_TEXT), OLD_TEXT)
    pushed = push_articles(ls_conn, [old], project=title, progress=False, state_path=tmp_path / "push.json")
    task_id = pushed.task_ids[old["id"]]
    marks = [
        ("p1", "Ana Ruiz", "PERSON", 0, "favor"),
        ("p2", "Portvale", "GPE", 0, None),
        ("p3", "Tidewater Dam", "MISC", 0, "favor"),
        ("p4", "Velt Energy", "ORG", 0, "against"),
        ("p5", "Ana Ruiz", "PERSON", 1, None),
        ("p6", "Portvale", "GPE", 1, None),
    ]
    result = [item for rid, piece, label, nth, st in marks for item in region(rid, OLD_TEXT, piece, label, nth, st)]
    ids = [annotate(ls_client, task_id, result + stances()) for _ in range(2)]
    ls_client.predictions.create(task=task_id, result=region("q1", OLD_TEXT, "Kelmar", "LOC"), model_version="t")
    run_pull(ls_conn, title, tmp_path)
    run_adjudicate(tmp_path / "annotations.jsonl", tmp_path / "gold.jsonl", tmp_path / "conflicts.jsonl", load_scheme())
    [gold_before] = list(read_jsonl(tmp_path / "gold.jsonl"))
    assert len(gold_before["entities"]) == len(marks)

    new = with_text(old, NEW_TEXT)
    update = push_articles(
        ls_conn,
        [new],
        project=title,
        progress=False,
        state_path=tmp_path / "push.json",
        update=True,
        annotations_dir=tmp_path,
    )
    assert update.update is not None and update.update.spans_unplaced == 0 and update.update.conflicts == []
    task = ls_client.tasks.get(str(task_id)).model_dump()
    assert task["data"]["text"] == NEW_TEXT and task["data"]["text_sha256"] == new["text_sha256"]
    for item in [*task["annotations"], *task["predictions"]]:
        for r in item["result"]:
            if "start" in r["value"]:
                assert NEW_TEXT[r["value"]["start"] : r["value"]["end"]] == r["value"]["text"]

    [gold_after] = list(read_jsonl(tmp_path / "gold.jsonl"))  # re-anchored locally, before any pull
    assert gold_after["text_sha256"] == new["text_sha256"]
    assert [(e["text"], e["label"], e["stance"]) for e in gold_after["entities"]] == [
        (e["text"], e["label"], e["stance"]) for e in gold_before["entities"]
    ]
    assert all(NEW_TEXT[e["start"] : e["end"]] == e["text"] for e in gold_after["entities"])
    assert any(e["start"] != b["start"] for e, b in zip(gold_after["entities"], gold_before["entities"], strict=True))

    run_pull(ls_conn, title, tmp_path)
    records = records_of(tmp_path)
    assert sorted(records) == sorted(ids)  # 0 annotations lost
    for record in records.values():
        assert record["text_sha256"] == new["text_sha256"] and len(record["entities"]) == len(marks)
        assert all(NEW_TEXT[e["start"] : e["end"]] == e["text"] for e in record["entities"])
    assert not [c for c in read_conflicts(tmp_path / "conflicts.jsonl") if c["stage"] in ("align", "pull")]

    # A span whose words the new text no longer has goes to conflicts with both texts, nothing moves silently.
    newer = with_text(old, NEW_TEXT.replace("Velt Energy", "Velt Power"))
    again = push_articles(
        ls_conn,
        [newer],
        project=title,
        progress=False,
        state_path=tmp_path / "push.json",
        update=True,
        annotations_dir=tmp_path,
    )
    assert again.update is not None and again.update.spans_unplaced == 2  # one per annotation
    unplaced = [c for c in read_conflicts(tmp_path / "conflicts.jsonl", "align")]
    assert unplaced and all(c["detail"]["old_text"] == NEW_TEXT for c in unplaced)
    assert all(c["detail"]["new_text"] == newer["text"] for c in unplaced)
    assert any("gold_record" in c["detail"] for c in unplaced)  # the gold record left the gold file whole
    assert list(read_jsonl(tmp_path / "gold.jsonl")) == []


def test_import_foreign_annotations_by_alignment(ls_client, make_article, unique_title, tmp_path):
    article = with_text(make_article("Dam vote", NEW_TEXT), NEW_TEXT)
    # JSONL made on the raw text (before cleaning) by another tool.
    foreign = [
        {
            "url": article["url"],
            "text": RAW_TEXT,
            "annotator": "reviewer@elsewhere.test",
            "entities": [
                {"start": s, "end": e, "label": label, "text": RAW_TEXT[s:e]}
                for piece, label, nth in (("Ana Ruiz", "PERSON", 1), ("Kelmar", "LOC", 0), ("Portvale", "GPE", 1))
                for s, e in [span(RAW_TEXT, piece, nth)]
            ],
            "stances": {"tidewater_dam": "favor"},
        }
    ]
    source = tmp_path / "foreign.jsonl"
    write_jsonl(source, foreign)
    out, conflicts = tmp_path / "annotations.jsonl", tmp_path / "conflicts.jsonl"
    result = import_annotations(source, [article], out=out, conflicts_path=conflicts)
    assert (result.annotations, result.spans_moved, result.spans_unplaced) == (1, 3, 0)
    [record] = list(read_jsonl(out))
    assert record["annotation_id"] < 0 and "@" not in record["annotator"]
    placed = {e["text"]: (e["start"], e["end"]) for e in record["entities"]}
    assert all(NEW_TEXT[e["start"] : e["end"]] == e["text"] for e in record["entities"])
    assert placed == {
        "Ana Ruiz": span(NEW_TEXT, "Ana Ruiz", 1),  # the second mention, as marked on the raw text
        "Kelmar": span(NEW_TEXT, "Kelmar"),
        "Portvale": span(NEW_TEXT, "Portvale", 1),
    }
    assert import_annotations(source, [article], out=out, conflicts_path=conflicts).annotations == 1
    assert len(list(read_jsonl(out))) == 1  # idempotent

    # A Label Studio project newsstance did not create: other control and data names.
    config = (
        '<View><Text name="body" value="$body"/><Labels name="ner" toName="body">'
        '<Label value="PERSON"/><Label value="GPE"/></Labels></View>'
    )
    project = ls_client.projects.create(title=unique_title("foreign"), label_config=config)
    made = ls_client.projects.import_tasks(
        id=project.id, request=[{"body": RAW_TEXT, "url": article["url"]}], return_task_ids=True
    )
    start, end = span(RAW_TEXT, "Portvale", 1)
    ls_client.annotations.create(
        id=made.task_ids[0],
        result=[
            {
                "id": "x",
                "from_name": "ner",
                "to_name": "body",
                "type": "labels",
                "value": {"start": start, "end": end, "text": "Portvale", "labels": ["GPE"]},
            }
        ],
        ground_truth=False,
    )
    export = tmp_path / "foreign-export.json"
    export.write_bytes(b"".join(ls_client.projects.exports.download_sync(project.id, export_type="JSON")))
    result = import_annotations(export, [article], out=out, conflicts_path=conflicts)
    assert (result.annotations, result.spans_moved, result.unmatched) == (1, 1, 0)
    imported = [r for r in read_jsonl(out) if r["entities"] and r["entities"][0]["label"] == "GPE"]
    assert [(e["start"], e["end"]) for r in imported for e in r["entities"]] == [span(NEW_TEXT, "Portvale", 1)]
