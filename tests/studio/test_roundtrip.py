"""Push -> annotate through the API as different users -> pull, against the session's real server."""

from __future__ import annotations

import gzip
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from newsstance.errors import UserError
from newsstance.records import read_jsonl, write_jsonl
from newsstance.scheme import load_scheme, record_validator, scheme_from_dict
from newsstance.studio.client import Connection, check, token_kind
from newsstance.studio.identities import email_of
from newsstance.studio.project import ensure_project, find_project
from newsstance.studio.pull import pull
from newsstance.studio.push import push, push_articles

pytestmark = [pytest.mark.labelstudio, pytest.mark.xdist_group("labelstudio")]


def span(text: str, part: str, label: str) -> dict[str, Any]:
    start = text.index(part)
    return {"start": start, "end": start + len(part), "text": part, "labels": [label]}


def labels(rid: str, text: str, part: str, label: str) -> dict[str, Any]:
    return {"id": rid, "from_name": "entities", "to_name": "text", "type": "labels", "value": span(text, part, label)}


def mention(rid: str, text: str, part: str, stance: str) -> dict[str, Any]:
    value = span(text, part, "x")
    del value["labels"]
    return {
        "id": rid,
        "from_name": "mention_stance",
        "to_name": "text",
        "type": "choices",
        "value": {**value, "choices": [stance]},
    }


def doc(target: str, value: str) -> dict[str, Any]:
    return {
        "id": f"doc_{target}",
        "from_name": f"stance_{target}",
        "to_name": "text",
        "type": "choices",
        "value": {"choices": [value]},
    }


def server_tasks(client: Any, project_id: int) -> list[dict[str, Any]]:
    raw = b"".join(client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True))
    return orjson.loads(raw)


def create(client: Any, task_id: int, result: list[dict[str, Any]], **flags: Any) -> int:
    flags = {"was_cancelled": False, "ground_truth": False, "lead_time": 4.0, **flags}
    return int(client.annotations.create(id=task_id, result=result, **flags).id)


@pytest.fixture(scope="module")
def roundtrip(
    ls_conn: Connection,
    ls_client: Any,
    ls_annotators: list,
    fictional_articles: list,
    spacy_preannotator: Any,
    unique_title: Any,
    tmp_path_factory: pytest.TempPathFactory,
) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("roundtrip")
    title = unique_title("roundtrip")
    canonical = [a for a in fictional_articles if a["duplicate_of"] is None]
    pushed = push_articles(
        ls_conn,
        canonical,
        project=title,
        preannotator=spacy_preannotator,
        batch_size=2,
        state_path=tmp / "push-state.json",
        progress=False,
    )
    a, b, _ = canonical
    ta, tb, tc = (pushed.task_ids[x["id"]] for x in canonical)
    ana, ben = (person.client() for person in ls_annotators)
    text_a, text_b = a["text"], b["text"]
    ids = {
        # Ana: stances listed before their regions and in reverse order - the join must use region ids.
        "ana_a": create(
            ana,
            ta,
            [
                mention("t1", text_a, "Tidewater Dam", "favor"),
                mention("r1", text_a, "Ana Ruiz", "favor"),
                labels("r1", text_a, "Ana Ruiz", "PERSON"),
                labels("p1", text_a, "Portvale", "GPE"),
                labels("t1", text_a, "Tidewater Dam", "MISC"),
                doc("tidewater_dam", "favor"),
                doc("carbon_levy", "not_about"),
            ],
        ),
        # Ben disagrees: wider span, other stance, other document stance.
        "ben_a": create(
            ben,
            ta,
            [
                labels("x1", text_a, "Mayor Ana Ruiz", "PERSON"),
                mention("x1", text_a, "Mayor Ana Ruiz", "against"),
                labels("x2", text_a, "Velt Energy", "ORG"),
                mention("x2", text_a, "Velt Energy", "neutral"),
                doc("tidewater_dam", "against"),
            ],
        ),
        # Spans after 🙂 and after the ZWJ sequence 👨🏻‍🚒, in code points.
        "ana_b": create(
            ana,
            tb,
            [
                labels("n1", text_b, "Norvand", "GPE"),
                mention("n1", text_b, "Norvand", "neutral"),
                labels("f1", text_b, "Farmers Union", "ORG"),
                doc("carbon_levy", "favor"),
            ],
            lead_time=30.5,
        ),
        "admin_b": create(
            ls_client,
            tb,
            [
                labels("n1", text_b, "Norvand", "GPE"),
                labels("i1", text_b, "Ilse Marrow", "PERSON"),
                mention("i1", text_b, "Ilse Marrow", "against"),
                doc("carbon_levy", "favor"),
            ],
            ground_truth=True,
        ),
        "ben_c": create(ben, tc, [], was_cancelled=True),
    }
    paths = {
        "out": tmp / "annotations.jsonl",
        "conflicts": tmp / "conflicts.jsonl",
        "exports": tmp / "exports",
        "state": tmp / "pull-state.json",
    }
    first = pull(
        ls_conn,
        project=title,
        out=paths["out"],
        conflicts=paths["conflicts"],
        exports_dir=paths["exports"],
        state_path=paths["state"],
        articles_glob=str(tmp / "none-*.jsonl"),
        progress=False,
    )
    return SimpleNamespace(
        title=title,
        pushed=pushed,
        articles=canonical,
        ids=ids,
        paths=paths,
        first=first,
        tmp=tmp,
        annotators=ls_annotators,
    )


def test_push_created_tasks_with_valid_predictions(roundtrip: SimpleNamespace, ls_client: Any) -> None:
    tasks = server_tasks(ls_client, roundtrip.pushed.project_id)
    assert len(tasks) == 3  # the duplicate article is not pushed
    by_article = {t["data"]["article_id"]: t for t in tasks}
    scheme = load_scheme()
    predictions = 0
    for article in roundtrip.articles:
        task = by_article[article["id"]]
        assert task["id"] == roundtrip.pushed.task_ids[article["id"]]
        assert {k: task["data"][k] for k in ("text", "title", "text_sha256", "source", "url")} == {
            k: article[k] for k in ("text", "title", "text_sha256", "source", "url")
        }
        for prediction_id in task["predictions"]:
            prediction = ls_client.predictions.get(id=prediction_id).model_dump()
            assert prediction["model_version"] == roundtrip.pushed.model_version
            for item in prediction["result"]:
                value = item["value"]
                assert article["text"][value["start"] : value["end"]] == value["text"]
                assert value["labels"][0] in scheme.entity_names
                assert (item["from_name"], item["to_name"], item["type"]) == ("entities", "text", "labels")
                predictions += 1
    assert predictions == roundtrip.pushed.predictions > 0
    project = ls_client.projects.get(roundtrip.pushed.project_id).model_dump()
    assert project["label_config"].strip() == scheme.label_config().strip()


def test_pull_writes_one_valid_record_per_annotation(roundtrip: SimpleNamespace) -> None:
    records = {r["annotation_id"]: r for r in read_jsonl(roundtrip.paths["out"])}
    assert set(records) == set(roundtrip.ids.values())
    texts = {a["id"]: a["text"] for a in roundtrip.articles}
    validator = record_validator("annotation")
    for record in records.values():
        assert validator.errors(record) == []
        assert record["project_id"] == roundtrip.pushed.project_id
        for entity in record["entities"]:
            assert texts[record["article_id"]][entity["start"] : entity["end"]] == entity["text"]
    # Ben answers only one of the two document questions on purpose: `required` conflicts, nothing else.
    found = list(read_jsonl(roundtrip.paths["conflicts"])) if roundtrip.paths["conflicts"].exists() else []
    assert {c["kind"] for c in found} <= {"required"}
    assert (roundtrip.first.new, roundtrip.first.updated, roundtrip.first.deleted) == (5, 0, [])


def test_pull_keeps_annotators_flags_and_stances(roundtrip: SimpleNamespace, ls_server: Any) -> None:
    records = {r["annotation_id"]: r for r in read_jsonl(roundtrip.paths["out"])}
    ana, ben = roundtrip.annotators
    ids = roundtrip.ids
    private = roundtrip.paths["out"].parent
    assert email_of(records[ids["ana_a"]]["annotator"], private) == ana.email
    assert email_of(records[ids["ben_a"]]["annotator"], private) == ben.email
    assert email_of(records[ids["admin_b"]]["annotator"], private) == ls_server.credentials().username
    assert all("@" not in record["annotator"] for record in records.values())
    assert records[ids["admin_b"]]["ground_truth"] is True
    assert records[ids["ana_a"]]["ground_truth"] is False
    assert records[ids["ben_c"]]["cancelled"] is True and records[ids["ben_c"]]["entities"] == []
    assert records[ids["ana_b"]]["lead_time"] == 30.5

    stance_of = lambda rec: {(e["text"], e["label"]): e["stance"] for e in rec["entities"]}  # noqa: E731
    assert stance_of(records[ids["ana_a"]]) == {
        ("Ana Ruiz", "PERSON"): "favor",
        ("Portvale", "GPE"): None,
        ("Tidewater Dam", "MISC"): "favor",
    }
    assert stance_of(records[ids["ben_a"]]) == {
        ("Mayor Ana Ruiz", "PERSON"): "against",
        ("Velt Energy", "ORG"): "neutral",
    }
    assert records[ids["ana_a"]]["stances"] == {"tidewater_dam": "favor", "carbon_levy": "not_about"}
    assert records[ids["ben_a"]]["stances"] == {"tidewater_dam": "against"}


def test_emoji_spans_are_code_points(roundtrip: SimpleNamespace) -> None:
    records = {r["annotation_id"]: r for r in read_jsonl(roundtrip.paths["out"])}
    text = roundtrip.articles[1]["text"]
    got = {e["text"]: (e["start"], e["end"]) for e in records[roundtrip.ids["ana_b"]]["entities"]}
    assert got == {
        "Norvand": (text.index("Norvand"), text.index("Norvand") + 7),
        "Farmers Union": (text.index("Farmers Union"), text.index("Farmers Union") + 13),
    }
    assert len(text.encode("utf-16-le")) // 2 > len(text)  # the text really has non-BMP characters


def test_raw_export_saved_and_second_pull_changes_nothing(roundtrip: SimpleNamespace, ls_conn: Connection) -> None:
    saved = orjson.loads(gzip.decompress(roundtrip.first.export_path.read_bytes()))  # kept compressed
    assert roundtrip.first.export_path.parent == roundtrip.paths["exports"]
    assert {a["id"] for t in saved for a in t["annotations"]} == set(roundtrip.ids.values())
    before = roundtrip.paths["out"].read_bytes()
    again = pull(
        ls_conn,
        project=roundtrip.title,
        out=roundtrip.paths["out"],
        conflicts=roundtrip.paths["conflicts"],
        exports_dir=roundtrip.paths["exports"],
        state_path=roundtrip.paths["state"],
        articles_glob=str(roundtrip.tmp / "none-*.jsonl"),
        progress=False,
    )
    assert (again.new, again.updated, again.unchanged, again.deleted) == (0, 0, 5, [])
    assert roundtrip.paths["out"].read_bytes() == before


def test_push_is_idempotent_and_reports_changed_text(
    ls_conn: Connection,
    ls_client: Any,
    fictional_articles: list,
    make_article: Any,
    unique_title: Any,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    title, state = unique_title("idempotent"), tmp_path / "state.json"
    canonical = [a for a in fictional_articles if a["duplicate_of"] is None]
    first = push_articles(ls_conn, canonical, project=title, state_path=state, progress=False)
    assert first.pushed == 3
    second = push_articles(ls_conn, canonical, project=title, state_path=state, progress=False)
    assert (second.pushed, second.already_present, second.changed) == (0, 3, [])
    assert "reconciling" not in capsys.readouterr().err  # the state file was trusted

    extra = make_article("Ferry strike ends", "Ferry crews in Portvale returned to work on Friday.")
    edited = dict(canonical[0], text=canonical[0]["text"] + " Updated.")
    edited["text_sha256"] = make_article(edited["title"], edited["text"])["text_sha256"]
    now = [edited, *canonical[1:], extra]
    third = push_articles(ls_conn, now, project=title, state_path=state, progress=False)
    assert third.pushed == 1 and list(third.task_ids) == [extra["id"]]
    assert [c["article_id"] for c in third.changed] == [canonical[0]["id"]]

    state.unlink()  # lost state: rebuilt from the server's tasks, still nothing duplicated
    fourth = push_articles(ls_conn, now, project=title, state_path=state, progress=False)
    assert fourth.pushed == 0 and [c["article_id"] for c in fourth.changed] == [canonical[0]["id"]]
    assert "reconciling" in capsys.readouterr().err
    tasks = server_tasks(ls_client, first.project_id)
    assert sorted(t["data"]["article_id"] for t in tasks) == sorted(a["id"] for a in [*canonical, extra])

    ls_client.tasks.delete(id=third.task_ids[extra["id"]])  # deleted in Label Studio behind our back
    fifth = push_articles(ls_conn, now, project=title, state_path=state, progress=False)
    assert list(fifth.task_ids) == [extra["id"]]
    assert len(server_tasks(ls_client, first.project_id)) == 4


def test_second_pull_is_incremental(
    ls_conn: Connection,
    ls_client: Any,
    ls_annotators: list,
    fictional_articles: list,
    unique_title: Any,
    tmp_path: Path,
) -> None:
    title = unique_title("incremental")
    articles = [a for a in fictional_articles if a["duplicate_of"] is None][:2]
    pushed = push_articles(ls_conn, articles, project=title, state_path=tmp_path / "push.json", progress=False)
    ana, ben = (p.client() for p in ls_annotators)
    t0, t1 = (pushed.task_ids[a["id"]] for a in articles)
    text0 = articles[0]["text"]
    keep = create(ana, t0, [labels("a", text0, "Portvale", "GPE")])
    edit = create(ana, t1, [doc("carbon_levy", "neutral")])
    gone = create(ben, t0, [doc("tidewater_dam", "favor")])
    kwargs = dict(
        project=title,
        out=tmp_path / "a.jsonl",
        exports_dir=tmp_path / "exports",
        state_path=tmp_path / "pull.json",
        articles_glob=str(tmp_path / "none-*.jsonl"),
        progress=False,
    )
    first = pull(ls_conn, **kwargs)
    assert first.new == 3

    ana.annotations.update(id=edit, result=[doc("carbon_levy", "against")])
    ls_client.annotations.delete(id=gone)
    added = create(ben, t1, [doc("carbon_levy", "favor")])
    second = pull(ls_conn, **kwargs)
    assert (second.new, second.updated, second.unchanged, second.deleted) == (1, 1, 1, [gone])
    records = {r["annotation_id"]: r for r in read_jsonl(tmp_path / "a.jsonl")}
    assert set(records) == {keep, edit, added}
    assert records[edit]["stances"] == {"carbon_levy": "against"}


def test_pull_reports_article_changed_in_corpus(
    ls_conn: Connection, ls_annotators: list, fictional_articles: list, unique_title: Any, tmp_path: Path
) -> None:
    title = unique_title("changed")
    article = fictional_articles[2]
    pushed = push_articles(ls_conn, [article], project=title, state_path=tmp_path / "push.json", progress=False)
    annotation_id = create(ls_annotators[0].client(), pushed.task_ids[article["id"]], [doc("carbon_levy", "neutral")])
    corpus = tmp_path / "articles-1.jsonl"
    renormalised = dict(article, text_sha256="f" * 64)  # the corpus now holds another text for this id
    write_jsonl(corpus, [renormalised])
    result = pull(
        ls_conn,
        project=title,
        out=tmp_path / "a.jsonl",
        exports_dir=tmp_path / "x",
        state_path=tmp_path / "p.json",
        articles_glob=str(tmp_path / "articles-*.jsonl"),
        progress=False,
    )
    conflicts = list(read_jsonl(tmp_path / "conflicts.jsonl"))
    assert result.conflicts == 1 and [c["kind"] for c in conflicts] == ["text_hash"]
    assert conflicts[0]["annotation_id"] == annotation_id and conflicts[0]["article_id"] == article["id"]
    assert list(read_jsonl(tmp_path / "a.jsonl")) == []


def test_scheme_change_that_orphans_annotations_is_refused(
    ls_conn: Connection,
    ls_client: Any,
    ls_annotators: list,
    fictional_articles: list,
    unique_title: Any,
    repo_root: Path,
    tmp_path: Path,
) -> None:
    import yaml

    title = unique_title("orphans")
    article = fictional_articles[0]
    pushed = push_articles(ls_conn, [article], project=title, state_path=tmp_path / "s.json", progress=False)
    create(
        ls_annotators[0].client(),
        pushed.task_ids[article["id"]],
        [labels("e", article["text"], "Harbour Forum", "EVENT"), doc("carbon_levy", "neutral")],
    )
    data = yaml.safe_load((repo_root / "annotations" / "scheme.yaml").read_text())

    without_event = dict(data, entity_labels=[e for e in data["entity_labels"] if e["name"] != "EVENT"])
    with pytest.raises(UserError, match="EVENT"):
        ensure_project(ls_client, ls_conn, title, scheme_from_dict(without_event), guidelines="")
    without_levy = dict(data, stance_targets=data["stance_targets"][:1])
    with pytest.raises(UserError, match="stance_carbon_levy"):
        ensure_project(ls_client, ls_conn, title, scheme_from_dict(without_levy), guidelines="")
    assert 'value="EVENT"' in find_project(ls_client, ls_conn, title)["label_config"]

    with_law = dict(data, entity_labels=[*data["entity_labels"], {"name": "LAW", "description": "Named laws."}])
    synced = ensure_project(ls_client, ls_conn, title, scheme_from_dict(with_law), guidelines="")
    assert synced.config_updated
    assert 'value="LAW"' in ls_client.projects.get(pushed.project_id).model_dump()["label_config"]


def test_legacy_and_personal_access_tokens_both_work(
    ls_conn: Connection, ls_pat: str, unique_title: Any, fictional_articles: list, tmp_path: Path
) -> None:
    assert token_kind(ls_conn.api_key) == "legacy"
    assert check(ls_conn)["email"]
    pat = ls_pat
    assert token_kind(pat) == "pat"
    pat_conn = Connection(url=ls_conn.url, api_key=pat, kind="pat")
    assert check(pat_conn)["email"] == check(ls_conn)["email"]
    result = push_articles(
        pat_conn, fictional_articles[2:3], project=unique_title("pat"), state_path=tmp_path / "s.json", progress=False
    )
    assert result.pushed == 1

    wrong = Connection(url=ls_conn.url, api_key="0" * 40)
    with pytest.raises(UserError) as caught:
        check(wrong)
    assert "0" * 40 not in str(caught.value) and "401" in str(caught.value)


def test_push_cli_reads_corpus_glob(
    ls_conn: Connection, fictional_articles: list, unique_title: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    corpus = tmp_path / "articles-1.jsonl"
    write_jsonl(corpus, fictional_articles)
    monkeypatch.setenv("NEWSSTANCE_STATE_DIR", str(tmp_path / "state"))
    title = unique_title("glob")
    result = push(
        ls_conn,
        project=title,
        articles_glob=str(tmp_path / "articles-*.jsonl"),
        limit=2,
        preannotate="none",
        progress=False,
    )
    assert result.pushed == 2 and result.predictions == 0
    assert list((tmp_path / "state" / "studio" / "push").rglob("*.json"))
