"""Offline: scheme rules as conflicts, honest adjudication methods, the one conflicts file,
pseudonymous annotators, alignment, and exports refused before they are copied."""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import orjson
import pytest

from newsstance.align import Alignment, move_entities
from newsstance.conflicts import read_conflicts, read_lines, replace_conflicts
from newsstance.errors import UserError
from newsstance.gold.adjudicate import adjudicate, run_adjudicate
from newsstance.ids import text_sha256
from newsstance.records import read_jsonl, write_jsonl
from newsstance.scheme import load_scheme, overlap_violations
from newsstance.studio.identities import email_of
from newsstance.studio.pull import import_export

TEXT = "The Portvale Harbour Authority met Velt Energy in Portvale on Monday about the Tidewater Dam."
SHA = hashlib.sha256(TEXT.encode()).hexdigest()
ROOT = Path(__file__).resolve().parents[2]


def ent(piece: str, label: str, nth: int = 0, stance: str | None = None) -> dict:
    start = -1
    for _ in range(nth + 1):
        start = TEXT.index(piece, start + 1)
    return {"start": start, "end": start + len(piece), "label": label, "text": piece, "stance": stance}


def record(aid: int, annotator: str, *entities: dict, dam: str = "favor", article: str = "a" * 16) -> dict:
    return {
        "annotation_id": aid,
        "task_id": 1,
        "project_id": 1,
        "article_id": article,
        "text_sha256": SHA,
        "annotator": annotator,
        "created_at": None,
        "updated_at": None,
        "lead_time": None,
        "cancelled": False,
        "ground_truth": False,
        "entities": [{**e, "region_id": None} for e in entities],
        "stances": {"tidewater_dam": dam, "carbon_levy": "not_about"},
        "scheme_version": "1.0.0",
    }


@pytest.fixture(scope="module")
def scheme():
    return load_scheme()


# --- overlap rule -------------------------------------------------------------------------------


def test_overlap_rules_per_scheme() -> None:
    outer, inner, crossing = ent("Portvale Harbour Authority", "ORG"), ent("Portvale", "GPE"), ent("Harbour", "LOC")
    cross = {"start": inner["start"] + 3, "end": outer["end"] + 4, "label": "MISC"}
    same_twice = [ent("Velt Energy", "ORG"), ent("Velt Energy", "ORG")]
    assert len(overlap_violations([outer, inner, crossing], "none")) == 2  # inner and crossing share nothing
    assert overlap_violations([outer, inner, ent("Velt Energy", "ORG")], "nested") == []
    assert len(overlap_violations([outer, cross], "nested")) == 1
    assert overlap_violations([outer, cross], "any") == []
    assert len(overlap_violations(same_twice, "any")) == 1  # one span marked twice is always reported
    assert overlap_violations([ent("Portvale", "GPE"), ent("Portvale", "GPE", 1)], "none") == []


def test_adjudication_never_writes_overlapping_gold(scheme) -> None:
    overlapping = (ent("Portvale Harbour Authority", "ORG"), ent("Portvale", "GPE"))
    gold, [entry] = adjudicate([record(1, "annotator-1", *overlapping)], scheme)
    assert gold == [] and entry["reason"] == "overlapping_spans" and entry["gold_written"] is False
    assert len(entry["detail"]["spans"]) == 1


# --- honest methods -----------------------------------------------------------------------------


def test_methods_say_what_happened(scheme) -> None:
    marrow, velt = ent("Portvale", "GPE", 1), ent("Velt Energy", "ORG")
    two_disagree = [record(1, "a1", marrow, velt), record(2, "a2", marrow)]
    [gold], [entry] = adjudicate(two_disagree, scheme, "majority")
    # No majority exists between two people: the gold holds only what they agreed on.
    assert gold["method"] == "agreed_items_only" and [e["text"] for e in gold["entities"]] == ["Portvale"]
    assert entry["reason"] == "unresolved_entities"
    three = [record(1, "a1", marrow, velt), record(2, "a2", marrow, velt), record(3, "a3", marrow)]
    assert adjudicate(three, scheme, "majority")[0][0]["method"] == "majority"
    assert adjudicate(three[:2], scheme, "majority")[0][0]["method"] == "unanimous"
    assert adjudicate(three[:1], scheme, "majority")[0][0]["method"] == "single"


def test_summary_counts_each_method_for_the_card(tmp_path: Path, scheme) -> None:
    source = tmp_path / "annotations.jsonl"
    marrow, velt = ent("Portvale", "GPE", 1), ent("Velt Energy", "ORG")
    write_jsonl(
        source,
        [
            record(1, "a1", marrow, velt),
            record(2, "a2", marrow),
            record(3, "a1", marrow, article="b" * 16),
            record(4, "a1", velt, article="c" * 16),
            record(5, "a2", velt, article="c" * 16),
        ],
    )
    gold, _ = run_adjudicate(source, tmp_path / "gold.jsonl", tmp_path / "conflicts.jsonl", scheme)
    summary = orjson.loads((tmp_path / "adjudication.json").read_bytes())
    assert summary["methods"]["agreed_items_only"] == 1 and summary["methods"]["single"] == 1
    assert summary["methods"]["unanimous"] == 1 and summary["methods"]["majority"] == 0
    assert sum(summary["methods"].values()) == len(gold)


def test_adjudicate_with_no_annotations_writes_nothing(tmp_path: Path, scheme) -> None:
    gold_path = tmp_path / "gold.jsonl"
    gold_path.write_bytes(b'{"kept": true}\n')
    empty = tmp_path / "annotations.jsonl"
    empty.write_bytes(b"")
    with pytest.raises(UserError, match="no annotations"):
        run_adjudicate(empty, gold_path, tmp_path / "conflicts.jsonl", scheme)
    assert gold_path.read_bytes() == b'{"kept": true}\n' and not (tmp_path / "conflicts.jsonl").exists()


def test_gold_for_a_changed_or_missing_article_is_a_conflict(scheme) -> None:
    records = [record(1, "a1", ent("Velt Energy", "ORG")), record(2, "a1", article="b" * 16)]
    corpus = {"a" * 16: text_sha256(TEXT + " Updated.")}
    gold, entries = adjudicate(records, scheme, corpus=corpus)
    assert gold == []
    assert sorted(e["reason"] for e in entries) == ["article_missing", "text_changed"]


# --- the conflicts file -------------------------------------------------------------------------


def test_legacy_lines_are_migrated_and_other_stages_kept(tmp_path: Path) -> None:
    path = tmp_path / "conflicts.jsonl"
    legacy_adjudication = b'{"kind":"adjudication","annotation_id":null,"article_id":"bbbbbbbbbbbbbbbb","reason":"x"}'
    legacy_pull = b'{"kind":"span","annotation_id":7,"article_id":"aaaaaaaaaaaaaaaa","reason":"y"}'
    current = b'{"stage":"align","kind":"unplaced_span","annotation_id":8,"article_id":"cccccccccccccccc","reason":"z"}'
    path.write_bytes(b"\n".join([legacy_adjudication, legacy_pull, current]) + b"\n")
    assert [line.stage for line in read_lines(path)] == ["adjudicate", "pull", "align"]
    new = {"stage": "pull", "kind": "label", "annotation_id": 9, "article_id": None, "reason": "w", "detail": {}}
    replace_conflicts(path, [new], replaced=lambda e: e["stage"] == "pull")
    lines = path.read_bytes().splitlines()
    assert current in lines  # another stage's current line: byte for byte
    assert [orjson.loads(line)["stage"] for line in lines] == ["adjudicate", "align", "pull"]
    assert [c["annotation_id"] for c in read_conflicts(path, "pull")] == [9]


# --- alignment ----------------------------------------------------------------------------------


def test_alignment_follows_a_changed_cleaner() -> None:
    old = "Menu | Login\nMayor Ana Ruiz spoke.\nVelt Energy replied.\nAna Ruiz left."
    new = old.replace("Menu | Login\n", "").replace("\n", "\n\n")
    alignment = Alignment(old, new)
    spans = [(old.index(p), old.index(p) + len(p)) for p in ("Ana Ruiz", "Velt Energy")]
    spans.append((old.rindex("Ana Ruiz"), old.rindex("Ana Ruiz") + len("Ana Ruiz")))
    entities = [{"start": s, "end": e, "label": "X", "text": old[s:e]} for s, e in spans]
    moved, lost = move_entities(alignment, entities)
    assert lost == [] and [new[e["start"] : e["end"]] for e in moved] == [e["text"] for e in entities]
    assert moved[2]["start"] == new.rindex("Ana Ruiz")  # the second mention stays the second
    gone = alignment.span(old.index("Menu"), old.index("Menu") + 4)
    assert not gone.placed and "changed characters" in gone.how


def test_offset_map_round_trips_through_json() -> None:
    old = "Line one.\nMayor Ana Ruiz spoke.\nVelt Energy replied."
    new = old.replace("\n", "\n\n")
    stored = orjson.loads(orjson.dumps(Alignment(old, new).offset_map))
    again = Alignment(old, new, stored)
    start = old.index("Velt Energy")
    move = again.span(start, start + len("Velt Energy"))
    assert move.placed and new[move.start : move.end] == "Velt Energy"  # type: ignore[index]


def test_an_edited_span_is_not_placed() -> None:
    old, new = "Velt Energy and Velt Energy met.", "Velt Power and Velt Energy met."
    move = Alignment(old, new).span(0, len("Velt Energy"))
    assert not move.placed  # never silently moved onto the other, unchanged mention


# --- pull-time rules, pseudonyms, exports refused before copying ---------------------------------


def export_with(result: list[dict], completed_by: object = 5) -> list[dict]:
    return [
        {
            "id": 1,
            "project": 2,
            "data": {"text": TEXT, "title": "t", "article_id": "a" * 16, "text_sha256": SHA},
            "annotations": [{"id": 11, "completed_by": completed_by, "result": result}],
        }
    ]


def labels(piece: str, label: str, rid: str) -> dict:
    e = ent(piece, label)
    value = {"start": e["start"], "end": e["end"], "text": piece, "labels": [label]}
    return {"id": rid, "from_name": "entities", "to_name": "text", "type": "labels", "value": value}


def test_pull_reports_overlap_and_unanswered_questions(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_bytes(
        orjson.dumps(
            export_with(
                [labels("Portvale Harbour Authority", "ORG", "a"), labels("Portvale", "GPE", "b")],
                {"id": 5, "email": "ana@elsewhere.test"},
            )
        )
    )
    out = tmp_path / "ann" / "annotations.jsonl"
    import_export(export, out=out, state_path=tmp_path / "state.json", progress=False)
    kinds = sorted(c["kind"] for c in read_conflicts(out.parent / "conflicts.jsonl"))
    assert kinds == ["overlap", "required"]
    [rec] = list(read_jsonl(out))
    assert len(rec["entities"]) == 2  # kept as the annotator wrote it, for review
    assert rec["annotator"] == "annotator-5" and b"@" not in out.read_bytes()
    assert email_of("annotator-5", out.parent) == "ana@elsewhere.test"


@pytest.mark.parametrize("cut", [0.5, 0.97])
def test_truncated_export_is_refused_before_anything_is_copied(tmp_path: Path, cut: float) -> None:
    whole = orjson.dumps(export_with([labels("Velt Energy", "ORG", "a")]) * 3)
    export = tmp_path / "export.json"
    export.write_bytes(whole[: int(len(whole) * cut)])
    out = tmp_path / "ann" / "annotations.jsonl"
    with pytest.raises(UserError, match="not valid JSON"):
        import_export(export, out=out, state_path=tmp_path / "state.json", progress=False)
    assert not (out.parent / "exports").exists() and not out.exists()


def test_pulled_data_is_git_ignored_but_the_sample_gold_is_not() -> None:
    private = [
        "annotations/annotations.jsonl",
        "annotations/gold.jsonl",
        "annotations/conflicts.jsonl",
        "annotations/exports/newsstance-20310101T000000Z.json.gz",
        "annotations/exports/newsstance-20310101T000000Z.users",
        "annotations/annotators.private.json",
    ]
    checked = subprocess.run(
        ["git", "check-ignore", "--no-index", *private, "annotations/sample/gold.jsonl"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if checked.returncode == 128:
        pytest.skip("not a git checkout")
    assert checked.stdout.split() == private
