"""`studio import` of Label Studio exports as other versions, clients and hand edits write them.

Each variant must end as a correct record, a conflicts entry with a reason, or a one-line
UserError - never a traceback and never a silently lost annotation. Fixtures are fictional;
expected offsets come from Python string indexes on the fixture text.
"""

from __future__ import annotations

import copy
import gzip
from pathlib import Path
from typing import Any

import orjson
import pytest

from newsstance.errors import UserError
from newsstance.ids import text_sha256
from newsstance.records import read_jsonl
from newsstance.scheme import record_validator
from newsstance.studio.identities import email_of
from newsstance.studio.pull import import_export

TEXT = "Councillor Brin Hollow of Westmere praised the Quarry Guild on Tuesday."


def span(part: str) -> tuple[int, int]:
    start = TEXT.index(part)
    return start, start + len(part)


def label(rid: str | None, part: str, name: str = "PERSON", **extra: Any) -> dict[str, Any]:
    start, end = span(part)
    return {
        "id": rid,
        "from_name": "entities",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": part, "labels": [name]},
        **extra,
    }


def mention(rid: str, part: str, stance: str) -> dict[str, Any]:
    start, end = span(part)
    return {
        "id": rid,
        "from_name": "mention_stance",
        "to_name": "text",
        "type": "choices",
        "value": {"start": start, "end": end, "text": part, "choices": [stance]},
    }


def doc(target: str, value: Any) -> dict[str, Any]:
    return {
        "id": f"d-{target}",
        "from_name": f"stance_{target}",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": value if isinstance(value, list) else [value]},
    }


def annotation(aid: Any, result: Any, **over: Any) -> dict[str, Any]:
    ann = {
        "id": aid,
        "completed_by": 7,
        "result": result,
        "was_cancelled": False,
        "ground_truth": False,
        "created_at": "2031-05-01T09:58:00.000001Z",
        "updated_at": "2031-05-01T10:00:00.123456Z",
        "lead_time": 12.5,
        "project": 3,
    }
    ann.update(over)
    return ann


def task(
    tid: Any, annotations: Any, *, article_id: str | None = "a" * 16, text: str | None = TEXT, **over: Any
) -> dict[str, Any]:
    data: dict[str, Any] = {"title": "Fictional"}
    if text is not None:
        data.update(text=text, text_sha256=text_sha256(text))
    if article_id is not None:
        data["article_id"] = article_id
    return {"id": tid, "project": 3, "annotations": annotations, "predictions": [], "data": data, **over}


@pytest.fixture()
def paths(tmp_path: Path) -> dict[str, Path]:
    return {
        "export": tmp_path / "downloads" / "project-3.json",
        "out": tmp_path / "ann" / "annotations.jsonl",
        "conflicts": tmp_path / "ann" / "conflicts.jsonl",
        "exports": tmp_path / "ann" / "exports",
        "state": tmp_path / "state" / "pull.json",
    }


def run(paths: dict[str, Path], export: Any = None, raw: bytes | None = None) -> Any:
    if export is not None or raw is not None:
        paths["export"].parent.mkdir(parents=True, exist_ok=True)
        paths["export"].write_bytes(raw if raw is not None else orjson.dumps(export))
    return import_export(
        paths["export"],
        out=paths["out"],
        conflicts=paths["conflicts"],
        exports_dir=paths["exports"],
        state_path=paths["state"],
        articles_glob=str(paths["out"].parent / "no-corpus-*.jsonl"),
        progress=False,
    )


def records(paths: dict[str, Path]) -> dict[int, dict[str, Any]]:
    found = {rec["annotation_id"]: rec for rec in read_jsonl(paths["out"])} if paths["out"].exists() else {}
    validator = record_validator("annotation")
    for rec in found.values():
        assert validator.errors(rec) == []
        for entity in rec["entities"]:
            assert TEXT[entity["start"] : entity["end"]] == entity["text"]
    return found


def conflicts(paths: dict[str, Path]) -> list[dict[str, Any]]:
    """Pull conflicts other than `required`: these fixtures leave the document stance questions
    unanswered on purpose (the `required` rule has its own tests in test_scheme_rules.py)."""
    found = list(read_jsonl(paths["conflicts"])) if paths["conflicts"].exists() else []
    return [c for c in found if c["kind"] != "required"]


def test_user_objects_timestamps_and_flags_of_other_versions(paths: dict[str, Path]) -> None:
    paths["export"].parent.mkdir(parents=True)
    paths["export"].with_name("project-3.users").write_bytes(orjson.dumps({"users": {"9": "cy@newsstance.test"}}))
    export = [
        task(
            1,
            [
                annotation(
                    11,
                    [label("r1", "Brin Hollow")],
                    completed_by={"id": 8, "email": "bo@newsstance.test"},
                    created_at="2031-05-01T09:58:00+00:00",
                    updated_at="2031-05-01T12:00:00+02:00",
                ),
                annotation(12, [], completed_by={"id": 9}, created_at=None, updated_at=None, lead_time=None),
                annotation(13, [doc("carbon_levy", "favor")], was_cancelled="false", ground_truth="false"),
                annotation(14, [label("r1", "Westmere", "GPE")], updated_at="last tuesday"),
            ],
        )
    ]
    for key in ("created_at", "lead_time", "was_cancelled", "ground_truth"):
        del export[0]["annotations"][3][key]
    run(paths, export)
    recs = records(paths)
    assert set(recs) == {11, 12, 13, 14}
    assert email_of(recs[11]["annotator"], paths["out"].parent) == "bo@newsstance.test"
    assert all("@" not in rec["annotator"] for rec in recs.values())
    assert (recs[11]["created_at"], recs[11]["updated_at"]) == ("2031-05-01T09:58:00Z", "2031-05-01T10:00:00Z")
    assert (
        email_of(recs[12]["annotator"], paths["out"].parent) == "cy@newsstance.test"
    )  # id-only user object, named by the sidecar
    assert (recs[12]["created_at"], recs[12]["updated_at"], recs[12]["lead_time"]) == (None, None, None)
    assert recs[12]["entities"] == [] and recs[12]["cancelled"] is False  # empty but submitted: kept
    assert (recs[13]["cancelled"], recs[13]["ground_truth"]) == (False, False)
    assert (recs[14]["created_at"], recs[14]["updated_at"], recs[14]["lead_time"]) == (None, None, None)
    assert [e["text"] for e in recs[14]["entities"]] == ["Westmere"]
    [bad_stamp] = conflicts(paths)
    assert (bad_stamp["kind"], bad_stamp["annotation_id"]) == ("record", 14)
    assert "last tuesday" in bad_stamp["reason"]


def test_result_items_of_other_clients(paths: dict[str, Path]) -> None:
    extra = {"origin": "manual", "score": 0.4, "readonly": False, "parentID": None, "meta": {"text": ["note"]}}
    no_text = label("r2", "Westmere", "GPE")
    del no_text["value"]["text"]
    null_text = label("r3", "Quarry Guild", "ORG")
    null_text["value"]["text"] = None
    two = label("r4", "Tuesday", "EVENT")
    two["value"]["labels"] = ["EVENT", "MISC"]
    relation = {"from_id": "r1", "to_id": "r3", "type": "relation", "direction": "right", "labels": []}
    textarea = {"id": "t1", "from_name": "notes", "to_name": "text", "type": "textarea", "value": {"text": ["hm"]}}
    rating = {"id": "g1", "from_name": "quality", "to_name": "text", "type": "rating", "value": {"rating": 4}}
    nested_choice = doc("tidewater_dam", [["favor"]])
    export = [
        task(
            1,
            [
                annotation(
                    21,
                    [
                        label("r1", "Brin Hollow", **extra),
                        mention("r1", "Brin Hollow", "favor"),
                        no_text,
                        null_text,
                        two,
                        relation,
                        textarea,
                        rating,
                        nested_choice,
                        "not an object",
                        doc("carbon_levy", "against"),
                    ],
                )
            ],
        )
    ]
    run(paths, export)
    rec = records(paths)[21]
    assert {(e["text"], e["label"], e["stance"]) for e in rec["entities"]} == {
        ("Brin Hollow", "PERSON", "favor"),
        ("Westmere", "GPE", None),
        ("Quarry Guild", "ORG", None),
    }
    assert rec["stances"] == {"carbon_levy": "against"}
    found = sorted((c["kind"], c["reason"].split()[0]) for c in conflicts(paths))
    assert found == [
        ("control", "relation"),
        ("control", "result"),
        ("control", "result"),
        ("label", "span"),
        ("label", "stance_tidewater_dam:"),
        ("record", "result"),
    ]


def test_spans_without_region_ids_are_not_ambiguous(paths: dict[str, Path]) -> None:
    run(paths, [task(1, [annotation(31, [label(None, "Brin Hollow"), label(None, "Westmere", "GPE")])])])
    assert [e["text"] for e in records(paths)[31]["entities"]] == ["Brin Hollow", "Westmere"]
    assert conflicts(paths) == []


def test_tasks_made_by_hand_drafts_and_full_predictions(paths: dict[str, Path]) -> None:
    prediction = {"id": 5, "model_version": "x", "result": [label("p1", "Westmere", "GPE")], "score": 0.5}
    draft = {"id": 41, "user": 7, "result": [label("d1", "Westmere", "GPE")], "lead_time": 3.0}
    export = [
        task(1, [annotation(41, [label("r1", "Brin Hollow")])], predictions=[prediction], drafts=[draft]),
        task(2, [annotation(42, [label("r1", "Brin Hollow")])], article_id=None),
        task(3, [annotation(43, [])], text=None),
        task(4, [], drafts=[draft]),
        task(5, None),
        task(6, [annotation(44, [label("r1", "Brin Hollow")])], data="just a string"),
    ]
    run(paths, export)
    assert set(records(paths)) == {41}  # drafts and predictions are not annotations
    reasons = {c["annotation_id"]: (c["kind"], c["reason"]) for c in conflicts(paths)}
    assert set(reasons) == {42, 43, 44}
    assert all(kind == "task" for kind, _ in reasons.values())
    assert "article_id" in reasons[42][1] and "text" in reasons[43][1]


def test_region_of_another_annotation_is_a_conflict(paths: dict[str, Path]) -> None:
    export = [
        task(
            1, [annotation(51, [label("r1", "Brin Hollow")]), annotation(52, [mention("r1", "Brin Hollow", "against")])]
        )
    ]
    run(paths, export)
    recs = records(paths)
    assert recs[51]["entities"][0]["stance"] is None and recs[52]["entities"] == []
    [conflict] = conflicts(paths)
    assert (conflict["kind"], conflict["annotation_id"], conflict["detail"]["region_id"]) == ("region", 52, "r1")


def test_duplicate_annotation_ids_keep_first_and_report_idempotently(paths: dict[str, Path]) -> None:
    export = [
        task(1, [annotation(61, [label("r1", "Brin Hollow")])]),
        task(2, [annotation(61, [label("r1", "Westmere", "GPE")])], article_id="b" * 16),
    ]
    run(paths, export)
    assert [e["text"] for e in records(paths)[61]["entities"]] == ["Brin Hollow"]
    [dup] = conflicts(paths)
    assert (dup["kind"], dup["annotation_id"], dup["task_id"]) == ("record", 61, 2)
    run(paths)
    assert len(conflicts(paths)) == 1 and set(records(paths)) == {61}


def test_unkeyable_annotations_are_reported_once_per_import(paths: dict[str, Path]) -> None:
    export = [
        task(1, [annotation(None, []), "garbage", annotation("71", [label("r1", "Brin Hollow")])], id="1", project="3")
    ]
    run(paths, export)
    rec = records(paths)[71]  # digit-string ids as some tools write them
    assert (rec["task_id"], rec["project_id"]) == (1, 3)
    first = sorted(c["reason"] for c in conflicts(paths))
    assert first == ["annotation is not a JSON object", "annotation without an integer id"]
    run(paths)
    assert sorted(c["reason"] for c in conflicts(paths)) == first


def test_annotations_without_timestamps_are_reconverted_when_edited(paths: dict[str, Path]) -> None:
    export = [task(1, [annotation(81, [label("r1", "Brin Hollow")], created_at=None, updated_at=None)])]
    run(paths, export)
    again = run(paths)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 1)
    edited = copy.deepcopy(export)
    edited[0]["annotations"][0]["result"][0]["value"]["labels"] = ["NORP"]
    third = run(paths, edited)
    assert (third.updated, records(paths)[81]["entities"][0]["label"]) == (1, "NORP")


def test_bom_and_tasks_object_are_read(paths: dict[str, Path]) -> None:
    export = [task(1, [annotation(91, [label("r1", "Brin Hollow")])])]
    run(paths, raw=b"\xef\xbb\xbf" + orjson.dumps(export))
    assert set(records(paths)) == {91}
    saved = sorted(paths["exports"].glob("*.json.gz"))
    assert gzip.decompress(saved[0].read_bytes()).startswith(b"\xef\xbb\xbf")  # the raw copy stays byte for byte
    run(paths, {"tasks": [task(1, [annotation(92, [label("r1", "Westmere", "GPE")])])], "total": 1})
    assert set(records(paths)) == {92}  # 91 is gone from project 3: reported as deleted


@pytest.mark.parametrize(
    "raw",
    [
        b'{"tasks": "nope"}',
        b'[{"id": 1, "data": {"text": "x"}, "annotations": {"id": 3}}]',
        b"\xef\xbb\xbf",
        b"",
    ],
)
def test_malformed_files_are_user_errors(paths: dict[str, Path], raw: bytes) -> None:
    with pytest.raises(UserError) as caught:
        run(paths, raw=raw)
    assert "\n" not in str(caught.value)
    assert not paths["out"].exists()


def test_folder_instead_of_file_is_a_user_error(paths: dict[str, Path]) -> None:
    paths["export"].mkdir(parents=True)
    with pytest.raises(UserError, match="cannot read"):
        run(paths)
