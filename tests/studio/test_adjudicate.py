"""Adjudication policies, the accounting invariant, the conflicts file and review tasks."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from newsstance.cli import main
from newsstance.errors import UserError
from newsstance.gold.adjudicate import adjudicate, review_tasks, run_adjudicate, unaccounted_annotation_ids
from newsstance.scheme import load_scheme, record_validator

TEXT = (
    "Prime Minister Ilse Marrow told the Greenway Party in Caldmere on Monday that the Tidewater Dam "
    "would be finished before the Caldmere Climate Summit, while Norvandian farmers on the River Sarn protested."
)
SHA = hashlib.sha256(TEXT.encode()).hexdigest()
OLD_SHA = hashlib.sha256(b"an older version of the article").hexdigest()


def span(part: str, label: str, stance: str | None = None) -> dict:
    start = TEXT.index(part)
    return {"start": start, "end": start + len(part), "label": label, "text": part, "stance": stance, "region_id": None}


def art(number: int) -> str:
    return f"{number:016x}"


def ann(
    aid: int,
    annotator: str,
    article: int = 1,
    *,
    dam: str | None = "favor",
    levy: str | None = "not_about",
    entities: tuple = (),
    cancelled: bool = False,
    ground_truth: bool = False,
    sha: str = SHA,
    updated_at: str = "2031-05-01T10:00:00Z",
) -> dict:
    stances = {k: v for k, v in (("tidewater_dam", dam), ("carbon_levy", levy)) if v is not None}
    return {
        "annotation_id": aid,
        "task_id": article,
        "project_id": 1,
        "article_id": art(article),
        "text_sha256": sha,
        "annotator": annotator,
        "created_at": updated_at,
        "updated_at": updated_at,
        "lead_time": 3.0,
        "cancelled": cancelled,
        "ground_truth": ground_truth,
        "entities": list(entities),
        "stances": stances,
        "scheme_version": "1.0.0",
    }


@pytest.fixture(scope="module")
def scheme():
    return load_scheme()


def by_article(gold: list[dict]) -> dict[str, dict]:
    return {record["article_id"]: record for record in gold}


def spans_of(record: dict) -> set[tuple]:
    return {(e["text"], e["label"], e["stance"]) for e in record["entities"]}


MARROW = span("Ilse Marrow", "PERSON", "favor")
CALDMERE = span("Caldmere", "GPE", "neutral")
SARN = span("River Sarn", "LOC", None)


def three_way() -> list[dict]:
    """Three annotators: dam favor/favor/against; Marrow by all, Caldmere by two, Sarn by one."""
    return [
        ann(1, "ana", dam="favor", entities=(MARROW, CALDMERE, SARN)),
        ann(2, "ben", dam="favor", entities=(MARROW, CALDMERE)),
        ann(3, "cy", dam="against", entities=(MARROW,)),
    ]


def test_majority_decides_two_of_three(scheme) -> None:
    gold, conflicts = adjudicate(three_way(), scheme, "majority")
    [record] = gold
    assert record["method"] == "majority"
    assert record["stances"] == {"tidewater_dam": "favor", "carbon_levy": "not_about"}
    assert spans_of(record) == {("Ilse Marrow", "PERSON", "favor"), ("Caldmere", "GPE", "neutral")}
    assert record["annotation_ids"] == [1, 2, 3]
    assert conflicts == []


def test_unanimous_policy_sends_disagreements_to_conflicts(scheme) -> None:
    gold, conflicts = adjudicate(three_way(), scheme, "unanimous")
    assert gold == []  # the dam stance is 2:1, so no gold record
    [entry] = conflicts
    assert entry["kind"] == "adjudication" and entry["reason"] == "unresolved_stance"
    assert entry["gold_written"] is False and entry["annotation_ids"] == [1, 2, 3]
    stance_item = next(i for i in entry["detail"]["items"] if i["item"] == "stance")
    assert stance_item["target"] == "tidewater_dam"
    assert [(v["annotator"], v["value"]) for v in stance_item["votes"]] == [
        ("ana", "favor"),
        ("ben", "favor"),
        ("cy", "against"),
    ]
    entity_items = {
        (i["text"], tuple(i["marked_by"]), tuple(i["not_marked_by"]))
        for i in entry["detail"]["items"]
        if i["item"] == "entity"
    }
    assert entity_items == {("Caldmere", (1, 2), (3,)), ("River Sarn", (1,), (2, 3))}
    # the decided part is kept in the conflict so a reviewer loses nothing
    assert spans_of(entry["detail"]) == {("Ilse Marrow", "PERSON", "favor")}
    assert entry["detail"]["stances"] == {"carbon_levy": "not_about"}


def test_unanimous_agreement_gives_unanimous_gold(scheme) -> None:
    records = [ann(1, "ana", entities=(MARROW,)), ann(2, "ben", entities=(MARROW,))]
    for policy in ("majority", "unanimous"):
        [record], conflicts = adjudicate(records, scheme, policy)
        assert record["method"] == "unanimous" and conflicts == []


def test_tie_is_a_conflict(scheme) -> None:
    records = [ann(1, "ana", dam="favor", entities=(MARROW,)), ann(2, "ben", dam="against", entities=(CALDMERE,))]
    gold, [entry] = adjudicate(records, scheme, "majority")
    assert gold == [] and entry["reason"] == "unresolved_stance"
    assert {i["item"] for i in entry["detail"]["items"]} == {"stance", "entity"}
    assert entry["detail"]["entities"] == []  # 1:1 on both spans: neither kept nor dropped


def test_entity_tie_keeps_gold_but_records_the_items(scheme) -> None:
    records = [ann(1, "ana", entities=(MARROW, SARN)), ann(2, "ben", entities=(MARROW,))]
    [record], [entry] = adjudicate(records, scheme, "majority")
    assert spans_of(record) == {("Ilse Marrow", "PERSON", "favor")}
    assert entry["reason"] == "unresolved_entities" and entry["gold_written"] is True
    [item] = entry["detail"]["items"]
    assert (item["text"], item["marked_by"], item["not_marked_by"]) == ("River Sarn", [1], [2])


def test_mention_stance_by_majority_among_markers(scheme) -> None:
    favor, against = span("Caldmere", "GPE", "favor"), span("Caldmere", "GPE", "against")
    records = [
        ann(1, "ana", entities=(span("Ilse Marrow", "PERSON", "favor"), favor)),
        ann(2, "ben", entities=(span("Ilse Marrow", "PERSON", "favor"), against)),
        ann(3, "cy", entities=(span("Ilse Marrow", "PERSON", "against"),)),
    ]
    [record], [entry] = adjudicate(records, scheme, "majority")
    # Marrow: favor 2:1 among three markers. Caldmere: kept 2:1, stance 1:1 among its two markers -> unresolved.
    assert spans_of(record) == {("Ilse Marrow", "PERSON", "favor"), ("Caldmere", "GPE", None)}
    [item] = entry["detail"]["items"]
    assert item["item"] == "mention_stance" and item["text"] == "Caldmere"
    assert [(v["annotation_id"], v["value"]) for v in item["votes"]] == [(1, "favor"), (2, "against")]


def test_label_disagreement_on_one_span_is_two_unresolved_items(scheme) -> None:
    records = [
        ann(1, "ana", entities=(span("Tidewater Dam", "MISC"),)),
        ann(2, "ben", entities=(span("Tidewater Dam", "LOC"),)),
    ]
    [record], [entry] = adjudicate(records, scheme, "majority")
    assert record["entities"] == []
    assert sorted(i["label"] for i in entry["detail"]["items"]) == ["LOC", "MISC"]


def test_ground_truth_wins_over_the_majority(scheme) -> None:
    records = [*three_way(), ann(4, "reviewer", dam="against", levy="neutral", entities=(SARN,), ground_truth=True)]
    [record], conflicts = adjudicate(records, scheme, "majority")
    assert record["method"] == "ground_truth"
    assert record["stances"] == {"tidewater_dam": "against", "carbon_levy": "neutral"}
    assert spans_of(record) == {("River Sarn", "LOC", None)}
    assert record["annotation_ids"] == [1, 2, 3, 4]
    assert conflicts == []


def test_agreeing_ground_truths_win_disagreeing_ones_conflict(scheme) -> None:
    agreeing = [ann(1, "ana", dam="against"), ann(2, "rev1", ground_truth=True), ann(3, "rev2", ground_truth=True)]
    [record], _ = adjudicate(agreeing, scheme)
    assert record["method"] == "ground_truth" and record["stances"]["tidewater_dam"] == "favor"
    disagreeing = [
        ann(1, "ana"),
        ann(2, "rev1", ground_truth=True, entities=(MARROW,)),
        ann(3, "rev2", ground_truth=True, entities=(CALDMERE,)),
    ]
    gold, [entry] = adjudicate(disagreeing, scheme)
    assert gold == []
    assert entry["reason"] == "ground_truth_disagreement" and entry["detail"]["ground_truth_ids"] == [2, 3]
    assert entry["annotation_ids"] == [1, 2, 3]
    assert {i["text"] for i in entry["detail"]["items"]} == {"Ilse Marrow", "Caldmere"}


def test_cancelled_annotations_are_skipped_but_accounted_for(scheme) -> None:
    records = [ann(1, "ana", dam="favor"), ann(2, "ben", dam="against", cancelled=True)]
    [record], [entry] = adjudicate(records, scheme, "unanimous")
    assert record["method"] == "single" and record["annotation_ids"] == [1]
    assert (entry["reason"], entry["annotation_id"]) == ("cancelled", 2)
    assert unaccounted_annotation_ids(records, [record], [entry]) == set()


def test_a_second_annotation_by_the_same_annotator_replaces_the_first(scheme) -> None:
    records = [
        ann(1, "ana", dam="against", updated_at="2031-04-01T00:00:00Z"),
        ann(2, "ana", dam="favor"),
        ann(3, "ben", dam="favor"),
    ]
    [record], conflicts = adjudicate(records, scheme, "unanimous")
    assert record["method"] == "unanimous" and record["stances"]["tidewater_dam"] == "favor"
    assert record["annotation_ids"] == [1, 2, 3] and conflicts == []


def test_text_hash_must_agree(scheme) -> None:
    records = [ann(1, "ana"), ann(2, "ben", sha=OLD_SHA)]
    gold, [entry] = adjudicate(records, scheme)
    assert gold == [] and entry["reason"] == "text_changed"
    assert entry["detail"]["text_sha256"] == {SHA: [1], OLD_SHA: [2]}


def test_min_annotators(scheme) -> None:
    records = [
        ann(1, "ana", article=1),
        ann(2, "ana", article=2),
        ann(3, "ben", article=2),
        ann(4, "rev", article=3, ground_truth=True),
    ]
    gold, entries = adjudicate(records, scheme, min_annotators=2)
    assert {r["article_id"]: r["method"] for r in gold} == {art(2): "unanimous", art(3): "ground_truth"}
    [entry] = entries
    assert (entry["article_id"], entry["reason"]) == (art(1), "too_few_annotators")
    gold, entries = adjudicate(records, scheme)  # default: one annotator is enough
    assert by_article(gold)[art(1)]["method"] == "single" and entries == []


def test_missing_answer_is_not_a_vote(scheme) -> None:
    records = [ann(1, "ana", levy=None), ann(2, "ben", levy="against"), ann(3, "cy", levy="against")]
    [record], _ = adjudicate(records, scheme, "majority")
    assert record["stances"]["carbon_levy"] == "against" and record["method"] == "majority"
    gold, [entry] = adjudicate([ann(1, "ana", levy=None), ann(2, "ben", levy=None)], scheme)
    assert gold == [] and entry["detail"]["items"][0]["unanswered_by"] == [1, 2]


def mixed_case() -> tuple[list[dict], list[dict]]:
    """Annotations covering every outcome, and the pull's own conflict entries."""
    annotations = [
        *three_way(),  # article 1: majority gold
        ann(10, "ana", 2, dam="favor"),
        ann(11, "ben", 2, dam="against"),  # article 2: tie
        ann(20, "ana", 3),
        ann(21, "ben", 3, sha=OLD_SHA),  # article 3: text changed
        ann(30, "ana", 4, cancelled=True),  # article 4: only cancelled
        ann(40, "rev1", 5, ground_truth=True, dam="against"),
        ann(41, "rev2", 5, ground_truth=True),  # GT conflict
        ann(50, "ana", 6, entities=(MARROW,)),  # article 6: single, pull conflict
    ]
    pull = [
        {
            "kind": "span",
            "annotation_id": 50,
            "article_id": art(6),
            "task_id": 6,
            "project_id": 1,
            "reason": "text[15:21] does not match the span text",
            "detail": {"start": 15, "end": 21},
            "stage": "pull",
        },
        {
            "kind": "text_hash",
            "annotation_id": 99,
            "article_id": art(7),
            "task_id": 7,
            "project_id": 1,
            "reason": "the article's text changed in the corpus since it was pushed",
            "detail": {},
            "stage": "pull",
        },
    ]
    return annotations, pull


def test_every_annotation_is_accounted_for(scheme) -> None:
    annotations, pull = mixed_case()
    gold, entries = adjudicate(annotations, scheme, "majority", pull_conflicts=pull)
    assert unaccounted_annotation_ids(annotations, gold, [*pull, *entries]) == set()
    assert {r["article_id"]: r["method"] for r in gold} == {art(1): "majority", art(6): "single"}
    reasons = sorted((e["article_id"], e["reason"]) for e in entries)
    assert reasons == [
        (art(2), "unresolved_stance"),
        (art(3), "text_changed"),
        (art(4), "cancelled"),
        (art(5), "ground_truth_disagreement"),
        (art(6), "pull_conflict"),
    ]
    pulled = next(e for e in entries if e["reason"] == "pull_conflict")
    assert pulled["gold_written"] is True and pulled["detail"]["pull_annotation_ids"] == [50]
    assert all(e["kind"] == "adjudication" and e["stage"] == "adjudicate" for e in entries)
    # the invariant check is not vacuous: dropping one entry leaves its ids unaccounted
    assert unaccounted_annotation_ids(annotations, gold, [*pull, *entries[1:]]) == {10, 11}


def test_gold_validates_against_the_schema_file(scheme) -> None:
    annotations, pull = mixed_case()
    gold, _ = adjudicate(annotations, scheme, "majority", pull_conflicts=pull)
    check = record_validator("gold")
    assert gold and all(check.errors(record) == [] for record in gold)


def write_lines(path: Path, records: list) -> Path:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))
    return path


def test_conflicts_file_keeps_pull_entries_and_reruns_are_idempotent(tmp_path: Path, scheme) -> None:
    annotations, pull = mixed_case()
    source = write_lines(tmp_path / "annotations.jsonl", annotations)
    pull_bytes = b"".join(orjson.dumps(e, option=orjson.OPT_INDENT_2).replace(b"\n", b"") + b"\n" for e in pull)
    conflicts = tmp_path / "conflicts.jsonl"
    conflicts.write_bytes(pull_bytes)
    gold_path = tmp_path / "gold.jsonl"
    run_adjudicate(source, gold_path, conflicts, scheme)
    first_conflicts, first_gold = conflicts.read_bytes(), gold_path.read_bytes()
    assert first_conflicts.startswith(pull_bytes)  # the pull's lines, byte for byte, first
    lines = [orjson.loads(line) for line in first_conflicts.splitlines()]
    assert sum(e["kind"] == "adjudication" for e in lines) == 5
    run_adjudicate(source, gold_path, conflicts, scheme)
    assert conflicts.read_bytes() == first_conflicts and gold_path.read_bytes() == first_gold
    # a resolved conflict disappears on the next run instead of lingering
    write_lines(source, [a for a in annotations if a["article_id"] != art(2)])
    run_adjudicate(source, gold_path, conflicts, scheme)
    assert art(2) not in conflicts.read_text() and conflicts.read_bytes().startswith(pull_bytes)


def article(number: int, text: str = TEXT) -> dict:
    return {
        "id": art(number),
        "title": f"Dam vote {number}",
        "text": text,
        "text_sha256": hashlib.sha256(text.encode()).hexdigest(),
    }


def test_review_tasks_show_every_competing_annotation(scheme) -> None:
    annotations, pull = mixed_case()
    _, entries = adjudicate(annotations, scheme, "majority", pull_conflicts=pull)
    articles = [article(n) for n in range(1, 8)]
    tasks = review_tasks([*pull, *entries], annotations, articles, scheme)
    by_id = {t["data"]["article_id"]: t for t in tasks}
    assert art(1) not in by_id and art(4) not in by_id  # resolved / only cancelled: nothing to review
    assert sorted(by_id) == [art(2), art(3), art(5), art(6), art(7)]
    tie = by_id[art(2)]
    assert tie["data"]["text"] == TEXT and tie["data"]["text_sha256"] == SHA and tie["data"]["title"] == "Dam vote 2"
    versions = [p["model_version"] for p in tie["predictions"]]
    assert versions[:2] == ["ana (annotation 10)", "ben (annotation 11)"]
    dam = [
        r["value"]["choices"]
        for p in tie["predictions"][:2]
        for r in p["result"]
        if r["from_name"] == "stance_tidewater_dam"
    ]
    assert dam == [["favor"], ["against"]]
    # the annotation on an older text is left out (its offsets would point at the wrong words)
    changed = by_id[art(3)]
    assert [p["model_version"] for p in changed["predictions"]] == ["ana (annotation 20)"]
    assert "older text" in changed["data"]["review_reason"]


def test_review_task_regions_carry_their_mention_stance(scheme) -> None:
    records = [ann(1, "ana", dam="favor", entities=(MARROW, SARN)), ann(2, "ben", dam="against")]
    _, entries = adjudicate(records, scheme)
    [task] = review_tasks(entries, records, {art(1): article(1)}, scheme)
    result = task["predictions"][0]["result"]
    labels = {r["id"]: r for r in result if r["type"] == "labels"}
    stances = [r for r in result if r["from_name"] == "mention_stance"]
    assert len(labels) == 2 and len(stances) == 1  # Sarn has no stance
    region = labels[stances[0]["id"]]  # joined by region id
    assert region["value"]["labels"] == ["PERSON"] and stances[0]["value"]["choices"] == ["favor"]
    for item in labels.values():
        value = item["value"]
        assert TEXT[value["start"] : value["end"]] == value["text"]


def test_review_tasks_need_the_articles(scheme) -> None:
    records = [ann(1, "ana", dam="favor"), ann(2, "ben", dam="against")]
    _, entries = adjudicate(records, scheme)
    with pytest.raises(UserError, match="not among the articles given"):
        review_tasks(entries, records, [], scheme)


def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """The real command in a fresh process (exit code, streams)."""
    return subprocess.run(
        [sys.executable, "-m", "newsstance.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def run_main(args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """The CLI entry point in-process (cheaper than a subprocess): exit code and stderr."""
    monkeypatch.setattr(sys, "argv", ["newsstance", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    return exit_info.value.code, capsys.readouterr().err


def test_adjudicate_command(tmp_path: Path) -> None:
    annotations, _ = mixed_case()
    source = write_lines(tmp_path / "annotations.jsonl", annotations)
    out, conflicts = tmp_path / "gold.jsonl", tmp_path / "conflicts.jsonl"
    result = run_cli(
        "adjudicate",
        "--annotations",
        str(source),
        "--out",
        str(out),
        "--conflicts",
        str(conflicts),
        "--policy",
        "unanimous",
        "--min-annotators",
        "1",
        "--articles",
        str(tmp_path / "no-corpus-*.jsonl"),
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert "gold: single" in result.stdout and "conflict: text_changed" in result.stdout
    gold = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    assert [r["article_id"] for r in gold] == [art(6)]  # article 1 is 2:1 on the dam: not unanimous


@pytest.mark.parametrize(
    "args, content, message",
    [
        ([], None, "annotations file not found"),
        ([], b'{"annotation_id": 1}\n', "not a valid annotation record"),
        (["--policy", "plurality"], b"", "--policy must be one of majority, unanimous"),
        (["--min-annotators", "0"], b"", "--min-annotators must be at least 1"),
        (["--conflicts", "CONFLICTS"], b"", "conflicts.jsonl:1: not valid JSON"),
    ],
)
def test_adjudicate_command_fails_with_one_line(
    tmp_path: Path, args: list[str], content: bytes | None, message: str, monkeypatch, capsys
) -> None:
    source = tmp_path / "annotations.jsonl"
    if content is not None:
        source.write_bytes(content)
    broken = tmp_path / "conflicts.jsonl"
    broken.write_bytes(b"{broken\n")
    args = [str(broken) if a == "CONFLICTS" else a for a in args]
    if "--conflicts" not in args:
        args += ["--conflicts", str(tmp_path / "unused-conflicts.jsonl")]
    code, err = run_main(
        ["adjudicate", "--annotations", str(source), "--out", str(tmp_path / "gold.jsonl"), *args], monkeypatch, capsys
    )
    assert code == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "gold.jsonl").exists()
