"""Offline `studio import` of hand-written Label Studio JSON exports (no server needed).

Every expected offset is computed here with Python string indexes on the fictional text, and
UTF-16 offsets by encoding the prefix - never by the converter under test.
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
from newsstance.studio.convert import CONFLICT_KINDS
from newsstance.studio.identities import email_of
from newsstance.studio.pull import import_export

EMOJI_TEXT = "Minister Tomas Eberly 🙂 met Ilse Marrow 👨🏻‍🚒 of the Farmers Union in Norvand."
NESTED_TEXT = "The Portvale Harbour Authority fined Velt Energy after the Harbour Forum in Portvale."


def span_conflicts(path: Path) -> list[dict]:
    """Pull conflicts other than `required`: these fixtures leave the document stance questions
    unanswered on purpose (the `required` rule has its own tests in test_scheme_rules.py)."""
    return [c for c in read_jsonl(path) if c["kind"] != "required"]


def cp_span(text: str, part: str, occurrence: int = 0) -> tuple[int, int]:
    start = -1
    for _ in range(occurrence + 1):
        start = text.index(part, start + 1)
    return start, start + len(part)


def utf16_span(text: str, part: str) -> tuple[int, int]:
    start, end = cp_span(text, part)
    units = lambda s: len(s.encode("utf-16-le")) // 2  # noqa: E731
    return units(text[:start]), units(text[:end])


def label(rid: str, start: int, end: int, text: str, name: str) -> dict[str, Any]:
    return {
        "id": rid,
        "from_name": "entities",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": text, "labels": [name]},
    }


def mention(rid: str, start: int, end: int, text: str, stance: str) -> dict[str, Any]:
    return {
        "id": rid,
        "from_name": "mention_stance",
        "to_name": "text",
        "type": "choices",
        "value": {"start": start, "end": end, "text": text, "choices": [stance]},
    }


def doc(target: str, value: str) -> dict[str, Any]:
    return {
        "id": f"d-{target}",
        "from_name": f"stance_{target}",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [value]},
    }


def annotation(
    aid: int,
    result: list[dict[str, Any]],
    *,
    user: int = 7,
    cancelled: bool = False,
    ground_truth: bool = False,
    updated: str = "2031-05-01T10:00:00.123456Z",
) -> dict[str, Any]:
    return {
        "id": aid,
        "completed_by": user,
        "result": result,
        "was_cancelled": cancelled,
        "ground_truth": ground_truth,
        "created_at": "2031-05-01T09:58:00.000001Z",
        "updated_at": updated,
        "lead_time": 12.5,
        "task": None,
        "project": 3,
    }


def task(
    tid: int, article_id: str, text: str, annotations: list[dict[str, Any]], sha: str | None = None
) -> dict[str, Any]:
    for ann in annotations:
        ann["task"] = tid
    return {
        "id": tid,
        "project": 3,
        "annotations": annotations,
        "predictions": [],
        "data": {
            "text": text,
            "title": "Fictional",
            "article_id": article_id,
            "text_sha256": sha or text_sha256(text),
            "source": "The Fictional Gazette",
            "url": None,
        },
    }


def build_export() -> list[dict[str, Any]]:
    e_name, e_farm, e_norv = (utf16_span(EMOJI_TEXT, p) for p in ("Ilse Marrow", "Farmers Union", "Norvand"))
    p_auth = cp_span(NESTED_TEXT, "Portvale Harbour Authority")
    p_port = cp_span(NESTED_TEXT, "Portvale")
    p_harb = cp_span(NESTED_TEXT, "Harbour Forum")
    p_velt = cp_span(NESTED_TEXT, "Velt Energy")
    padded = (p_velt[0] - 1, p_velt[1] + 1)
    p_port2 = cp_span(NESTED_TEXT, "Portvale", 1)
    return [
        # UTF-16 offsets after emoji and a ZWJ sequence (as a JavaScript-counting tool writes them).
        task(
            101,
            "a" * 16,
            EMOJI_TEXT,
            [
                annotation(
                    1001,
                    [
                        mention("r2", *e_farm, "Farmers Union", "against"),  # before its region: join by id, not order
                        label("r1", *e_name, "Ilse Marrow", "PERSON"),
                        label("r2", *e_farm, "Farmers Union", "ORG"),
                        label("r3", *e_norv, "Norvand", "GPE"),
                        mention("r1", *e_name, "Ilse Marrow", "favor"),
                        doc("carbon_levy", "favor"),
                    ],
                )
            ],
        ),
        task(
            102,
            "b" * 16,
            NESTED_TEXT,
            [
                annotation(
                    1002,
                    [
                        label("n1", *p_auth, "Portvale Harbour Authority", "ORG"),
                        label("n2", *p_port, "Portvale", "GPE"),  # nested in n1
                        label("n3", *p_harb, "Harbour Forum", "EVENT"),  # overlaps nothing but shares a word
                        label("n4", *padded, NESTED_TEXT[padded[0] : padded[1]], "ORG"),  # whitespace-padded
                        mention("n1", *p_auth, "Portvale Harbour Authority", "against"),
                        mention("n4", *padded, NESTED_TEXT[padded[0] : padded[1]], "neutral"),
                        # n2 and n3 have no mention stance
                        mention("ghost", 0, 3, "The", "favor"),  # its region does not exist
                        label("n5", *p_port2, "Portvale", "CITY"),  # unknown label
                        doc("tidewater_dam", "not_about"),
                    ],
                    user=8,
                ),
                annotation(1003, [], user=9, cancelled=True),
            ],
        ),
        # The task text is not the text that was pushed (hash mismatch): no record, one conflict.
        task(103, "c" * 16, "Edited in Label Studio.", [annotation(1004, [])], sha=text_sha256("Original text.")),
    ]


@pytest.fixture()
def workdir(tmp_path: Path) -> dict[str, Path]:
    return {
        "export": tmp_path / "downloads" / "project-3.json",
        "out": tmp_path / "ann" / "annotations.jsonl",
        "conflicts": tmp_path / "ann" / "conflicts.jsonl",
        "exports": tmp_path / "ann" / "exports",
        "state": tmp_path / "state" / "pull.json",
    }


def run_import(paths: dict[str, Path], export: list[dict[str, Any]] | None = None) -> Any:
    if export is not None:
        paths["export"].parent.mkdir(parents=True, exist_ok=True)
        paths["export"].write_bytes(orjson.dumps(export, option=orjson.OPT_INDENT_2))
    return import_export(
        paths["export"],
        out=paths["out"],
        conflicts=paths["conflicts"],
        exports_dir=paths["exports"],
        state_path=paths["state"],
        articles_glob=str(paths["out"].parent / "no-corpus-*.jsonl"),
        progress=False,
    )


def by_id(path: Path) -> dict[int, dict[str, Any]]:
    return {rec["annotation_id"]: rec for rec in read_jsonl(path)}


def test_import_converts_verifies_and_reports(workdir: dict[str, Path]) -> None:
    result = run_import(workdir, build_export())
    records = by_id(workdir["out"])
    conflicts = span_conflicts(workdir["conflicts"])
    validator = record_validator("annotation")

    assert set(records) == {1001, 1002, 1003}
    for record in records.values():
        assert validator.errors(record) == []
        text = EMOJI_TEXT if record["article_id"] == "a" * 16 else NESTED_TEXT
        for entity in record["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]

    emoji = {e["text"]: (e["start"], e["end"], e["label"], e["stance"]) for e in records[1001]["entities"]}
    assert emoji == {
        "Ilse Marrow": (*cp_span(EMOJI_TEXT, "Ilse Marrow"), "PERSON", "favor"),
        "Farmers Union": (*cp_span(EMOJI_TEXT, "Farmers Union"), "ORG", "against"),
        "Norvand": (*cp_span(EMOJI_TEXT, "Norvand"), "GPE", None),
    }
    assert records[1001]["stances"] == {"carbon_levy": "favor"}
    assert records[1001]["annotator"] == "annotator-7"  # pseudonymous, never an e-mail
    assert records[1001]["created_at"] == "2031-05-01T09:58:00.000001Z"
    assert result.fixes.get("utf16") == 3

    nested = {(e["start"], e["end"]): (e["label"], e["stance"]) for e in records[1002]["entities"]}
    assert nested == {
        cp_span(NESTED_TEXT, "Portvale Harbour Authority"): ("ORG", "against"),
        cp_span(NESTED_TEXT, "Portvale"): ("GPE", None),
        cp_span(NESTED_TEXT, "Harbour Forum"): ("EVENT", None),
        cp_span(NESTED_TEXT, "Velt Energy"): ("ORG", "neutral"),  # trimmed, stance still joined
    }
    assert records[1002]["stances"] == {"tidewater_dam": "not_about"}
    assert records[1003]["cancelled"] is True and records[1003]["entities"] == []
    assert all(not r["ground_truth"] for r in records.values())

    kinds = sorted((c["kind"], c["annotation_id"]) for c in conflicts)
    # n2 nested in n1 breaks the scheme's `span_overlap: none`: reported, both spans kept for review
    assert kinds == [("label", 1002), ("overlap", 1002), ("region", 1002), ("text_hash", 1004)]
    assert all(c["kind"] in CONFLICT_KINDS and c["reason"] and c["stage"] == "pull" for c in conflicts)
    region = next(c for c in conflicts if c["kind"] == "region")
    assert region["detail"]["region_id"] == "ghost" and region["article_id"] == "b" * 16
    unknown = next(c for c in conflicts if c["kind"] == "label")
    assert unknown["detail"]["labels"] == ["CITY"]
    assert (result.new, result.updated, result.unchanged) == (4, 0, 0)


def test_raw_export_is_kept_byte_for_byte(workdir: dict[str, Path]) -> None:
    run_import(workdir, build_export())
    saved = list(workdir["exports"].glob("*.json.gz"))  # kept compressed
    assert len(saved) == 1
    assert gzip.decompress(saved[0].read_bytes()) == workdir["export"].read_bytes()


def test_second_import_is_incremental_and_keeps_other_stages(workdir: dict[str, Path]) -> None:
    export = build_export()
    run_import(workdir, export)
    adjudication_line = b'{"kind":"adjudication","annotation_id":null,"article_id":"bbbbbbbbbbbbbbbb","reason":"x","stage":"adjudicate"}'
    with workdir["conflicts"].open("ab") as handle:
        handle.write(adjudication_line + b"\n")
    first = workdir["out"].read_bytes()

    again = run_import(workdir)
    assert (again.new, again.updated, again.unchanged, again.deleted) == (0, 0, 4, [])
    assert workdir["out"].read_bytes() == first

    changed = copy.deepcopy(export)
    ann = changed[0]["annotations"][0]
    ann["updated_at"] = "2031-05-02T08:00:00Z"
    ann["result"] = [r for r in ann["result"] if r["from_name"] != "stance_carbon_levy"]
    ann["result"].append(doc("carbon_levy", "against"))
    del changed[1]["annotations"][1]  # annotation 1003 deleted in Label Studio
    third = run_import(workdir, changed)
    assert (third.new, third.updated, third.unchanged, third.deleted) == (0, 1, 2, [1003])
    records = by_id(workdir["out"])
    assert set(records) == {1001, 1002}
    assert records[1001]["stances"] == {"carbon_levy": "against"}
    lines = workdir["conflicts"].read_bytes().splitlines()
    assert adjudication_line in lines
    pulled = [line for line in lines if b'"stage":"pull"' in line and b'"kind":"required"' not in line]
    assert len(pulled) == 4  # unchanged annotations keep theirs (label, overlap, region of 1002; 1004)


def test_users_sidecar_names_annotators(workdir: dict[str, Path]) -> None:
    export = build_export()
    workdir["export"].parent.mkdir(parents=True)
    workdir["export"].write_bytes(orjson.dumps(export))
    sidecar = workdir["export"].with_name("project-3.users")
    sidecar.write_bytes(orjson.dumps({"users": {"7": "ana@newsstance.test"}}))
    run_import(workdir)
    records = by_id(workdir["out"])
    assert records[1001]["annotator"] == "annotator-7"
    assert email_of("annotator-7", workdir["out"].parent) == "ana@newsstance.test"  # private mapping
    assert records[1002]["annotator"] == "annotator-8"


def test_irreconcilable_span_goes_to_conflicts(workdir: dict[str, Path]) -> None:
    start, end = cp_span(NESTED_TEXT, "Velt Energy")
    export = [
        task(
            201,
            "d" * 16,
            NESTED_TEXT,
            [
                annotation(
                    2001,
                    [
                        label("x1", start, end, "Volt Energy", "ORG"),  # text does not match the offsets
                        label("x2", 10, 500, "Authority", "ORG"),  # out of range
                        mention("x1", start, end, "Volt Energy", "favor"),
                        label("x3", *cp_span(NESTED_TEXT, "Portvale"), "Portvale", "GPE"),
                    ],
                )
            ],
        )
    ]
    run_import(workdir, export)
    records = by_id(workdir["out"])
    assert [(e["text"], e["label"]) for e in records[2001]["entities"]] == [("Portvale", "GPE")]
    conflicts = span_conflicts(workdir["conflicts"])
    assert sorted(c["detail"]["region_id"] for c in conflicts) == ["x1", "x2"]
    assert {c["kind"] for c in conflicts} == {"span"}
    x1 = next(c for c in conflicts if c["detail"]["region_id"] == "x1")
    assert x1["detail"]["mention_stance"] == [["favor"]]  # the lost stance is reported with its span


def test_browser_collapsed_double_space_keeps_offsets_and_real_text(workdir: dict[str, Path]) -> None:
    """Seen in the browser test: Label Studio's `value.text` collapses a run of spaces while the
    offsets stay right; the record must keep the offsets and the article's own text."""
    text = "Neighbours will march to the Old  Mill Trust on Sunday."
    start, end = cp_span(text, "Old  Mill Trust")
    export = [
        task(
            301,
            "e" * 16,
            text,
            [
                annotation(
                    3001,
                    [
                        label("m1", start, end, "Old Mill Trust", "ORG"),
                        mention("m1", start, end, "Old Mill Trust", "against"),
                    ],
                )
            ],
        )
    ]
    run_import(workdir, export)
    [entity] = by_id(workdir["out"])[3001]["entities"]
    assert (entity["start"], entity["end"], entity["text"], entity["stance"]) == (
        start,
        end,
        "Old  Mill Trust",
        "against",
    )
    assert not workdir["conflicts"].exists() or span_conflicts(workdir["conflicts"]) == []


@pytest.mark.parametrize(
    "payload",
    [
        b'[{"id": 1, "text": "min export", "entities": []}]',
        b'{"not": "a list"}',
        b"not json",
    ],
)
def test_non_json_exports_are_refused(workdir: dict[str, Path], payload: bytes) -> None:
    workdir["export"].parent.mkdir(parents=True)
    workdir["export"].write_bytes(payload)
    with pytest.raises(UserError):
        run_import(workdir)
    assert not workdir["out"].exists()
