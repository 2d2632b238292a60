"""The whole annotation loop on the sample corpus against the session's real Label Studio:
normalise -> push with spaCy predictions -> two annotators (and a ground truth) through the API
-> pull -> agree -> adjudicate -> review tasks for the conflicts."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import orjson
import pytest

from newsstance.gold.adjudicate import run_adjudicate, unaccounted_annotation_ids
from newsstance.gold.agree import compute_agreement
from newsstance.normalize import run_normalize
from newsstance.records import read_jsonl
from newsstance.scheme import load_scheme, record_validator
from newsstance.studio.client import Connection
from newsstance.studio.identities import email_of
from newsstance.studio.pull import pull
from newsstance.studio.push import push
from newsstance.studio.review import push_review

pytestmark = [pytest.mark.labelstudio, pytest.mark.xdist_group("labelstudio")]

REPO = Path(__file__).resolve().parents[2]
SAMPLE_GOLD = REPO / "annotations" / "sample" / "gold.jsonl"


def results_from(entities: list[dict[str, Any]], stances: dict[str, str], prefix: str) -> list[dict[str, Any]]:
    """Label Studio results for spans (+ per-region stance, same region id) and document stances."""
    results = []
    for index, entity in enumerate(entities):
        rid = f"{prefix}{index}"
        value = {"start": entity["start"], "end": entity["end"], "text": entity["text"]}
        results.append(
            {
                "id": rid,
                "from_name": "entities",
                "to_name": "text",
                "type": "labels",
                "value": {**value, "labels": [entity["label"]]},
            }
        )
        if entity.get("stance"):
            results.append(
                {
                    "id": rid,
                    "from_name": "mention_stance",
                    "to_name": "text",
                    "type": "choices",
                    "value": {**value, "choices": [entity["stance"]]},
                }
            )
    for target, label in stances.items():
        results.append(
            {
                "id": f"{prefix}_{target}",
                "from_name": f"stance_{target}",
                "to_name": "text",
                "type": "choices",
                "value": {"choices": [label]},
            }
        )
    return results


def annotate(
    client: Any, task_id: int, entities: list[dict[str, Any]], stances: dict[str, str], prefix: str, **flags: Any
) -> int:
    flags = {"was_cancelled": False, "ground_truth": False, "lead_time": 12.0, **flags}
    return int(client.annotations.create(id=task_id, result=results_from(entities, stances, prefix), **flags).id)


@pytest.fixture(scope="module")
def loop(
    ls_conn: Connection, ls_annotators: list, unique_title: Any, tmp_path_factory: pytest.TempPathFactory
) -> SimpleNamespace:
    tmp = tmp_path_factory.mktemp("sample-loop")
    normalized = tmp / "normalized"
    run_normalize([REPO / "corpus" / "raw"], normalized)
    articles = {a["id"]: a for path in sorted(normalized.glob("articles-*.jsonl")) for a in read_jsonl(path)}
    gold = {g["article_id"]: g for g in read_jsonl(SAMPLE_GOLD)}
    assert set(gold) <= set(articles)
    title = unique_title("sample-loop")
    glob = str(normalized / "articles-*.jsonl")
    pushed = push(
        ls_conn,
        project=title,
        articles_glob=glob,
        preannotate="spacy",
        progress=False,
        state_path=tmp / "push-state.json",
    )

    emoji = next(a for a in articles.values() if "🙂" in a["text"] or "👨" in a["text"])
    others = [aid for aid in sorted(gold) if aid != emoji["id"] and len(gold[aid]["entities"]) >= 3][:3]
    agreed, disputed, truth = others
    ana, ben = (person.client() for person in ls_annotators)
    admin = ls_conn.client()
    ids: dict[str, int] = {}
    for who, client in (("ana", ana), ("ben", ben)):
        # Both annotators give the sample's gold on `agreed` and on the emoji article ...
        for key, article_id in (("agreed", agreed), ("emoji", emoji["id"])):
            g = gold[article_id]
            ids[f"{who}_{key}"] = annotate(client, pushed.task_ids[article_id], g["entities"], g["stances"], who)
    # ... and disagree on `disputed`: Ben drops a span and flips the first target's stance.
    g = gold[disputed]
    target = load_scheme().target_ids[0]
    flipped = {**g["stances"], target: "against" if g["stances"][target] != "against" else "favor"}
    ids["ana_disputed"] = annotate(ana, pushed.task_ids[disputed], g["entities"], g["stances"], "ana")
    ids["ben_disputed"] = annotate(ben, pushed.task_ids[disputed], g["entities"][1:], flipped, "ben")
    # On `truth`, the annotators disagree but an admin's ground truth settles it.
    g = gold[truth]
    ids["ana_truth"] = annotate(ana, pushed.task_ids[truth], g["entities"][:1], g["stances"], "ana")
    ids["ben_truth"] = annotate(ben, pushed.task_ids[truth], g["entities"][1:], flipped, "ben")
    ids["admin_truth"] = annotate(admin, pushed.task_ids[truth], g["entities"], g["stances"], "adm", ground_truth=True)

    paths = SimpleNamespace(
        out=tmp / "annotations.jsonl",
        conflicts=tmp / "conflicts.jsonl",
        gold=tmp / "gold.jsonl",
        exports=tmp / "exports",
    )
    pull(
        ls_conn,
        project=title,
        out=paths.out,
        conflicts=paths.conflicts,
        exports_dir=paths.exports,
        state_path=tmp / "pull-state.json",
        articles_glob=glob,
        progress=False,
    )
    scheme = load_scheme()
    gold_out, conflicts = run_adjudicate(paths.out, paths.gold, paths.conflicts, scheme)
    return SimpleNamespace(
        title=title,
        pushed=pushed,
        articles=articles,
        sample_gold=gold,
        ids=ids,
        paths=paths,
        agreed=agreed,
        disputed=disputed,
        truth=truth,
        emoji=emoji["id"],
        glob=glob,
        gold_out={g["article_id"]: g for g in gold_out},
        conflicts=conflicts,
        scheme=scheme,
        annotators=ls_annotators,
    )


def test_push_sends_every_canonical_sample_article_with_predictions(loop: SimpleNamespace) -> None:
    canonical = {aid for aid, a in loop.articles.items() if a["duplicate_of"] is None}
    assert set(loop.pushed.task_ids) == canonical
    assert loop.pushed.predictions > len(canonical)  # spaCy finds several entities per article


def test_every_pulled_record_validates_and_matches_its_text(loop: SimpleNamespace) -> None:
    records = list(read_jsonl(loop.paths.out))
    assert {r["annotation_id"] for r in records} == set(loop.ids.values())
    validator = record_validator("annotation")
    for record in records:
        assert validator.errors(record) == []
        text = loop.articles[record["article_id"]]["text"]
        assert record["text_sha256"] == loop.articles[record["article_id"]]["text_sha256"]
        for entity in record["entities"]:
            assert text[entity["start"] : entity["end"]] == entity["text"]
    emoji = [r for r in records if r["article_id"] == loop.emoji]
    expected = [(e["start"], e["end"], e["label"], e.get("stance")) for e in loop.sample_gold[loop.emoji]["entities"]]
    for record in emoji:  # code-point offsets survive the round trip through the server
        assert sorted((e["start"], e["end"], e["label"], e["stance"]) for e in record["entities"]) == sorted(expected)


def test_agreement_reflects_the_planted_disagreements(loop: SimpleNamespace) -> None:
    report = compute_agreement(read_jsonl(loop.paths.out), loop.scheme)
    assert report["counts"]["annotators"] == 3 and report["counts"]["articles"] == 4
    target = loop.scheme.target_ids[0]
    pair = next(
        p
        for p in report["document_stance"][target]["pairs"]
        if sorted(email_of(a, loop.paths.out.parent) for a in p["annotators"])
        == sorted(person.email for person in loop.annotators)
    )
    # Ana and Ben share four articles and disagree on this target in two of them.
    assert pair["value"] is not None and pair["value"] < 1
    entities = next(
        p
        for p in report["entities"]["pairs"]
        if sorted(email_of(a, loop.paths.out.parent) for a in p["annotators"])
        == sorted(person.email for person in loop.annotators)
    )
    assert entities["articles"] == 4
    assert 0 < entities["overall"]["strict_f1"]["value"] < 1  # Ben dropped spans on two articles


def test_adjudicated_gold_accounts_for_every_annotation(loop: SimpleNamespace) -> None:
    annotations = list(read_jsonl(loop.paths.out))
    assert unaccounted_annotation_ids(annotations, loop.gold_out.values(), loop.conflicts) == set()
    validator = record_validator("gold")
    for record in loop.gold_out.values():
        assert validator.errors(record) == []


def test_gold_follows_unanimity_and_ground_truth(loop: SimpleNamespace) -> None:
    def spans(record: dict[str, Any]) -> list[tuple[int, int, str, str | None]]:
        return sorted((e["start"], e["end"], e["label"], e.get("stance")) for e in record["entities"])

    for article_id, method in ((loop.agreed, "unanimous"), (loop.emoji, "unanimous"), (loop.truth, "ground_truth")):
        got, want = loop.gold_out[article_id], loop.sample_gold[article_id]
        assert got["method"] == method
        assert spans(got) == spans(want)
        assert got["stances"] == want["stances"]
    assert loop.ids["admin_truth"] in loop.gold_out[loop.truth]["annotation_ids"]


def test_disputed_stance_becomes_a_conflict_and_a_review_task(
    loop: SimpleNamespace, ls_conn: Connection, ls_client: Any
) -> None:
    assert loop.disputed not in loop.gold_out  # a tie on a document stance: no gold until reviewed
    disputed = [c for c in loop.conflicts if c["article_id"] == loop.disputed]
    assert disputed and any(c["reason"] == "unresolved_stance" for c in disputed)
    review = push_review(
        ls_conn,
        project=f"{loop.title} review",
        conflicts_path=loop.paths.conflicts,
        annotations_path=loop.paths.out,
        articles_glob=loop.glob,
    )
    assert review.pushed >= 1
    again = push_review(
        ls_conn,
        project=f"{loop.title} review",
        conflicts_path=loop.paths.conflicts,
        annotations_path=loop.paths.out,
        articles_glob=loop.glob,
    )
    assert (again.pushed, again.already_present) == (0, review.pushed)
    raw = b"".join(
        ls_client.projects.exports.download_sync(review.project_id, export_type="JSON", download_all_tasks=True)
    )
    tasks = {t["data"]["article_id"]: t for t in orjson.loads(raw)}
    assert loop.disputed in tasks
    assert len(tasks[loop.disputed]["predictions"]) >= 2  # both competing annotations are shown
