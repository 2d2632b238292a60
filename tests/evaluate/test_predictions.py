"""Every kind of bad predictions file gives one clear line naming the file and line."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from newsstance.errors import UserError
from newsstance.evaluate.predictions import read_predictions
from newsstance.scheme import Scheme

IDS = ["00000000000000a1", "00000000000000a2", "00000000000000a3"]
LENGTHS = dict.fromkeys(IDS, 40)


def good(article_id: str = IDS[0], **changes: object) -> dict:
    record = {
        "id": article_id,
        "entities": [{"start": 0, "end": 5, "label": "PERSON", "stance": "favor"}],
        "stances": {"tidewater_dam": "against"},
    }
    return {**record, **changes}


def write(path: Path, lines: list) -> Path:
    path.write_bytes(b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines))
    return path


@pytest.mark.parametrize(
    ("bad_line", "message"),
    [
        (b'{"id": "00000000000000a2", "entities": [', "not valid JSON"),
        (b"[1, 2]", "expected a JSON object"),
        (good(IDS[1], entities=[{"start": 0, "end": 5, "label": "PERS"}]), "unknown label 'PERS'"),
        (good(IDS[1], entities=[{"start": 0, "end": 5, "label": "ORG", "stance": "pro"}]), "unknown stance 'pro'"),
        (good(IDS[1], stances={"tidewater_dam": "maybe"}), "unknown stance 'maybe' for target 'tidewater_dam'"),
        (good(IDS[1], stances={"moon_base": "favor"}), "unknown stance target 'moon_base'"),
        (good("ffffffffffffffff"), "unknown id ffffffffffffffff"),
        (good(IDS[0]), f"duplicate id {IDS[0]} (first on line 1)"),
        (good(IDS[1], entities=[{"start": 30, "end": 41, "label": "ORG"}]), "offsets [30, 41) out of range"),
        (good(IDS[1], entities=[{"start": 9, "end": 9, "label": "ORG"}]), "start 9 must be less than end 9"),
        (good(IDS[1], entities=[{"start": -1, "end": 3, "label": "ORG"}]), "/entities/0/start"),
        ({"id": IDS[1]}, "has neither `entities` nor `stances`"),
        ({"id": IDS[1], "entities": [], "stances": {}, "extra": 1}, "does not match schema"),
    ],
)
def test_bad_line_is_named(tmp_path: Path, scheme: Scheme, bad_line: object, message: str) -> None:
    path = write(tmp_path / "preds.jsonl", [good(IDS[0]), bad_line, good(IDS[2])])
    with pytest.raises(UserError) as caught:
        read_predictions(path, scheme, LENGTHS)
    text = str(caught.value)
    assert text.startswith(f"{path}:2: ")
    assert message in text
    assert "\n" not in text


def test_missing_ids_are_an_error_unless_allowed(tmp_path: Path, scheme: Scheme) -> None:
    path = write(tmp_path / "preds.jsonl", [good(IDS[0]), b"", good(IDS[2])])
    with pytest.raises(
        UserError,
        match=rf"^{path}: 1 of 3 articles of split 'test' have no prediction "
        rf"\({IDS[1]}\); pass --allow-missing",
    ):
        read_predictions(path, scheme, LENGTHS)
    loaded = read_predictions(path, scheme, LENGTHS, allow_missing=True)
    assert loaded.missing == [IDS[1]]
    assert loaded.by_id[IDS[1]].entities == [] and loaded.by_id[IDS[1]].stances == {}
    assert loaded.by_id[IDS[0]].entities[0].stance == "favor"


def test_missing_file(tmp_path: Path, scheme: Scheme) -> None:
    with pytest.raises(UserError, match="predictions file not found"):
        read_predictions(tmp_path / "nope.jsonl", scheme, LENGTHS)


def test_each_task_is_optional_but_a_key_on_some_lines_only_is_an_error(tmp_path: Path, scheme: Scheme) -> None:
    ner_only = [{"id": i, "entities": [{"start": 0, "end": 5, "label": "ORG"}]} for i in IDS]
    loaded = read_predictions(write(tmp_path / "ner.jsonl", ner_only), scheme, LENGTHS)
    assert loaded.summary.tasks == {"ner"}
    assert loaded.by_id[IDS[0]].stances is None
    stance_only = [{"id": i, "stances": {"carbon_levy": "neutral"}} for i in IDS]
    loaded = read_predictions(write(tmp_path / "stance.jsonl", stance_only), scheme, LENGTHS)
    assert loaded.summary.tasks == {"stance"} and loaded.summary.targets == {"carbon_levy"}
    empty_stances = [{"id": i, "entities": [], "stances": {}} for i in IDS]
    assert read_predictions(write(tmp_path / "e.jsonl", empty_stances), scheme, LENGTHS).summary.tasks == {"ner"}
    mixed = [ner_only[0], stance_only[1], ner_only[2]]
    with pytest.raises(UserError, match=r"`entities` is on 2 of 3 lines \(not on line 2\)"):
        read_predictions(write(tmp_path / "mixed.jsonl", mixed), scheme, LENGTHS)
