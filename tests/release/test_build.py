"""`build_release` end to end, checked with the real `datasets.load_dataset` (offline, fresh cache per test)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import datasets
import orjson
import pyarrow.parquet as pq
import pytest

from newsstance.errors import UserError
from newsstance.release.build import build_release
from newsstance.release.features import features_for
from newsstance.scheme import load_scheme

SPLITS = ("train", "validation", "test")


def build(files: Any, version: str | None = "1.0.0", **kwargs: Any):
    return build_release(
        version=version,
        out=files.out,
        articles=[files.articles],
        gold=files.gold,
        splits=files.splits,
        progress=False,
        **kwargs,
    )


def load(path: Path, config: str | None = None, **kwargs: Any):
    return datasets.load_dataset(str(path), config, **kwargs)


def split_of_ids(dataset_dict: Any) -> dict[str, str]:
    return {row_id: split for split in dataset_dict for row_id in dataset_dict[split]["id"]}


def decode_bio(tags: list[str], starts: list[int], ends: list[int]) -> list[tuple[int, int, str]]:
    """Plain-Python BIO decoding, independent of the builder's numpy checker."""
    spans: list[list[Any]] = []
    for tag, start, end in zip(tags, starts, ends, strict=True):
        if tag.startswith("B-"):
            spans.append([start, end, tag[2:]])
        elif tag.startswith("I-"):
            assert spans and spans[-1][2] == tag[2:], "I- tag without a B- of its label"
            spans[-1][1] = end
    return [tuple(s) for s in spans]


def test_default_config_loads_with_labels_rows_and_spans_intact(corpus) -> None:
    files = corpus()
    result = build(files)
    scheme = load_scheme()
    gold = load(result.path)
    assert set(gold) == set(SPLITS)
    assert sum(gold[s].num_rows for s in SPLITS) == len(files.gold_records) == 9
    features = gold["train"].features
    entity = features["entities"].feature
    assert entity["label"].names == scheme.entity_names
    assert entity["stance"].names == scheme.stance_names
    assert features["ner_tags"].feature.names == scheme.bio_tags
    assert {t: f.names for t, f in features["stances"].items()} == {
        t: scheme.document_stance_names for t in scheme.target_ids
    }

    expected = {g["article_id"]: g for g in files.gold_records}
    bio_names = features["ner_tags"].feature.names
    for split in SPLITS:
        for row in gold[split]:
            text = row["text"]
            for ent in row["entities"]:
                assert text[ent["start"] : ent["end"]] == ent["text"]
            assert row["tokens"] == [text[s:e] for s, e in zip(row["token_starts"], row["token_ends"], strict=True)]
            spans = [(e["start"], e["end"], entity["label"].names[e["label"]]) for e in row["entities"]]
            assert decode_bio([bio_names[t] for t in row["ner_tags"]], row["token_starts"], row["token_ends"]) == spans
            want = expected[row["id"]]
            assert sorted(spans) == sorted((e["start"], e["end"], e["label"]) for e in want["entities"])
            stances = [entity["stance"].names[e["stance"]] if e["stance"] >= 0 else None for e in row["entities"]]
            assert stances == [e["stance"] for e in sorted(want["entities"], key=lambda e: e["start"])]
            names = {t: features["stances"][t].names[v] for t, v in row["stances"].items()}
            assert names == want["stances"]


def test_token_cut_by_an_entity_is_split_so_the_span_survives(corpus, helpers) -> None:
    files = corpus()
    gold = load(build(files).path)
    rows = [r for s in SPLITS for r in gold[s] if r["id"] == helpers.article_id("levy-debate")]
    assert len(rows) == 1
    row = rows[0]
    index = row["tokens"].index("Kessarian")
    assert row["tokens"][index + 1] == "s"
    names = gold["train"].features["ner_tags"].feature.names
    assert names[row["ner_tags"][index]] == "B-NORP"
    assert names[row["ner_tags"][index + 1]] == "O"


def test_articles_config_has_every_canonical_article_without_annotations(corpus, helpers) -> None:
    files = corpus()
    result = build(files)
    articles = load(result.path, "articles")
    canonical = {a["id"] for a in files.article_records if a["duplicate_of"] is None}
    ids = [i for s in SPLITS for i in articles[s]["id"]]
    assert sorted(ids) == sorted(canonical)
    assert helpers.article_id("dam-vote-syndicated") not in ids
    assert "entities" not in articles["train"].column_names
    annotated = {row["id"]: row["annotated"] for s in SPLITS for row in articles[s]}
    assert annotated[helpers.article_id("ferry-timetable")] is False
    assert annotated[helpers.article_id("dam-vote")] is True
    gold_splits = split_of_ids(load(result.path))
    article_splits = split_of_ids(articles)
    assert all(article_splits[i] == s for i, s in gold_splits.items())


def test_near_duplicates_and_page_sets_share_a_split(corpus, helpers) -> None:
    files = corpus()
    build(files)
    frozen = {r["id"]: r["split"] for r in map(orjson.loads, files.splits.read_bytes().splitlines())}
    assert len(frozen) == len(files.article_records)
    assert frozen[helpers.article_id("dam-vote")] == frozen[helpers.article_id("dam-vote-syndicated")]
    assert frozen[helpers.article_id("dam-protest")] == frozen[helpers.article_id("dam-protest-related")]
    assert set(frozen.values()) == set(SPLITS)


def test_streaming_gives_the_same_rows_and_features(corpus) -> None:
    files = corpus()
    result = build(files)
    eager = load(result.path, split="train")
    streamed = load(result.path, split="train", streaming=True)
    assert streamed.features == eager.features
    assert [row["id"] for row in streamed] == eager["id"]
    first = next(iter(streamed))
    assert all(first["text"][e["start"] : e["end"]] == e["text"] for e in first["entities"])


def test_readme_yaml_alone_restores_features_when_parquet_metadata_is_stripped(corpus, tmp_path) -> None:
    files = corpus()
    result = build(files)
    stripped = tmp_path / "stripped-copy"
    shutil.copytree(result.path, stripped)
    for path in (stripped / "data").rglob("*.parquet"):
        table = pq.read_table(path)
        pq.write_table(table.replace_schema_metadata(None), path)
        assert b"huggingface" not in (pq.read_schema(path).metadata or {})
    scheme = load_scheme()
    for config in ("default", "articles"):
        loaded = load(stripped, config)
        assert loaded["train"].features == features_for(scheme, config)
        assert {s: loaded[s].num_rows for s in SPLITS} == result.rows[config]
    gold = load(stripped)
    row = gold["train"][0]
    assert all(row["text"][e["start"] : e["end"]] == e["text"] for e in row["entities"])


def _second_corpus(helpers) -> list[dict[str, Any]]:
    stories = [dict(s) for s in helpers.base_stories()]
    by_key = {s["key"]: s for s in stories}
    by_key["river-festival"]["title"] = "Lantern festival returns to the Seltra"  # article changed
    by_key["levy-greens"]["stances"] = {"tidewater_dam": "not_about", "carbon_levy": "neutral"}  # annotation
    stories = [s for s in stories if s["key"] != "market-day"]  # removed
    stories += [
        {
            "key": "dam-funding",
            "title": "Treasury releases dam funds",
            "text": "The Norvand Treasury released the first tranche for the Tidewater Dam on Monday.",
            "source": "Norvand Evening Post",
            "published_at": "2031-04-02T09:00:00Z",
            "entities": [("Norvand Treasury", "ORG", "favor"), ("Tidewater Dam", "MISC", "favor")],
            "stances": {"tidewater_dam": "favor", "carbon_levy": "not_about"},
        },
        {
            "key": "levy-rally",
            "title": "Rally against the levy in Ostwick",
            "text": "Hundreds rallied in Ostwick against the carbon levy, led by trucker Bram Halloway.",
            "source": "Brackwater Courier",
            "published_at": "2031-04-03T15:00:00Z",
            "entities": [("Ostwick", "GPE", None), ("Bram Halloway", "PERSON", "favor")],
            "stances": {"tidewater_dam": "not_about", "carbon_levy": "against"},
        },
    ]
    return stories


def test_second_build_keeps_old_splits_and_reports_the_diff(corpus, helpers) -> None:
    first = build(corpus())
    old_frozen = {
        r["id"]: r for r in map(orjson.loads, (first.path.parents[1] / "splits.jsonl").read_bytes().splitlines())
    }
    files = corpus(_second_corpus(helpers), name="corpus-v2")
    second = build(files, version=None)
    # river-festival's text and levy-greens' annotations changed: wherever they sit in the test split, scores
    # on 1.0.0's test split are not comparable any more, so the bump is major and the reason says so.
    first_splits = split_of_ids(load(first.path))
    changed_in_test = sum(first_splits[helpers.article_id(k)] == "test" for k in ("river-festival", "levy-greens"))
    if changed_in_test:
        assert second.version == "2.0.0", second.reasons
        assert any(f"`default`/test: {changed_in_test} changed" in r and "not comparable" in r for r in second.reasons)
    else:
        assert second.version == "1.1.0", second.reasons
    old_articles = split_of_ids(load(first.path, "articles"))
    new_articles = split_of_ids(load(second.path, "articles"))
    kept = old_articles.keys() & new_articles.keys()
    assert len(kept) == len(old_articles) - 1
    assert all(old_articles[i] == new_articles[i] for i in kept)
    new_frozen = {r["id"]: r for r in map(orjson.loads, files.splits.read_bytes().splitlines())}
    assert all(new_frozen[i] == record for i, record in old_frozen.items())
    assert {i for i in new_frozen if i not in old_frozen} == {
        helpers.article_id("dam-funding"),
        helpers.article_id("levy-rally"),
    }

    diff = orjson.loads((second.path / "diff.json").read_bytes())
    aid = helpers.article_id
    assert diff["previous_version"] == "1.0.0"
    assert diff["bump"] == second.bump and diff["reasons"] == second.reasons
    assert diff["articles_added"] == sorted([aid("dam-funding"), aid("levy-rally")])
    assert diff["articles_removed"] == [aid("market-day")]
    assert diff["articles_changed"] == [aid("river-festival")]
    assert diff["annotations_added"] == sorted([aid("dam-funding"), aid("levy-rally")])
    assert diff["annotations_removed"] == [aid("market-day")]
    assert diff["annotations_changed"] == [aid("levy-greens")]
    assert diff["split_moves"] == []
    gold_v1, gold_v2 = load(first.path), load(second.path)
    person = gold_v1["train"].features["entities"].feature["label"].names.index("PERSON")
    for counts, dataset in ((diff["labels_before"], gold_v1), (diff["labels_after"], gold_v2)):
        for split in SPLITS:
            persons = sum(e["label"] == person for row in dataset[split] for e in row["entities"])
            assert counts[split].get("entity:PERSON", 0) == persons
    card = (second.path / "README.md").read_text()
    history = card[card.index("## Version History") : card.index("## Citation")]
    assert f"| {second.version} |" in history and "| 1.0.0 |" in history
    assert f"**{second.bump}** change" in history and second.reasons[0] in history
    assert "+2 / -1 / ~1" in history


def test_unchanged_rebuild_without_version_keeps_the_release(corpus) -> None:
    files = corpus()
    first = build(files, version=None)
    again = build(files, version=None)
    assert (first.version, first.built) == ("1.0.0", True)
    assert (again.version, again.built, again.path) == ("1.0.0", False, first.path)
    assert sorted(p.name for p in files.out.iterdir()) == ["1.0.0"]


def test_load_release_dataset_finds_the_latest_version(corpus, helpers) -> None:
    from newsstance.release.load import load_release_dataset

    build(corpus())
    second = build(corpus(_second_corpus(helpers), name="corpus-v2"), version=None)
    latest = load_release_dataset(second.path.parent, "articles")
    assert sorted(split_of_ids(latest)) == sorted(split_of_ids(load(second.path, "articles")))
    first = load_release_dataset(second.path.parent, "default", "test", version="1.0.0")
    assert first.num_rows == load(second.path.parent / "1.0.0", split="test").num_rows
    with pytest.raises(UserError, match=r"no release 9\.9\.9"):
        load_release_dataset(second.path.parent, version="9.9.9")


def test_existing_version_is_never_overwritten(corpus) -> None:
    files = corpus()
    result = build(files)
    before = {p: p.read_bytes() for p in result.path.rglob("*") if p.is_file()}
    with pytest.raises(UserError, match="already exists"):
        build(files)
    assert {p: p.read_bytes() for p in result.path.rglob("*") if p.is_file()} == before


def test_rebuilt_folder_and_same_named_folder_load_fresh_rows(corpus, helpers, tmp_path) -> None:
    """The stale-cache trap: one cache for every load below, as a user has."""
    small = corpus([dict(s) for s in helpers.STORIES[:4]], name="small")
    release = build(small).path
    assert sorted(split_of_ids(load(release))) == sorted(g["article_id"] for g in small.gold_records)
    shutil.rmtree(release)
    bigger = corpus([dict(s) for s in helpers.STORIES[:7]], name="bigger")
    build(bigger)
    assert sorted(split_of_ids(load(release))) == sorted(g["article_id"] for g in bigger.gold_records)

    other = tmp_path / "elsewhere"
    other_files = corpus([dict(s) for s in helpers.STORIES[4:]], name="other")
    moved = build_release(
        version="1.0.0",
        out=other / "dist",
        articles=[other_files.articles],
        gold=other_files.gold,
        splits=other / "splits.jsonl",
        progress=False,
    )
    assert moved.path.name == release.name
    assert sorted(split_of_ids(load(moved.path))) == sorted(g["article_id"] for g in other_files.gold_records)


def _corrupt_tables(monkeypatch: pytest.MonkeyPatch, corrupt) -> None:
    import newsstance.release.build as build_module

    real = build_module.to_tables

    def patched(columns, features):
        return corrupt(real(columns, features))

    monkeypatch.setattr(build_module, "to_tables", patched)


def _replace_column(table, name: str, values: list) -> Any:
    import pyarrow as pa

    index = table.column_names.index(name)
    return table.set_column(index, table.schema.field(name), pa.array(values, type=table.schema.field(name).type))


def _bad_label_id(tables):
    train = tables["default"]["train"]
    tags = train.column("ner_tags").to_pylist()
    tags[0][0] = 99
    tables["default"]["train"] = _replace_column(train, "ner_tags", tags)
    return tables


def _bio_disagrees(tables):
    train = tables["default"]["train"]
    tags = train.column("ner_tags").to_pylist()
    row = next(i for i, t in enumerate(tags) if any(t))
    tags[row] = [0] * len(tags[row])
    tables["default"]["train"] = _replace_column(train, "ner_tags", tags)
    return tables


def _article_in_two_splits(tables):
    import pyarrow as pa

    gold = tables["default"]
    gold["test"] = pa.concat_tables([gold["test"], gold["train"].slice(0, 1)])
    return tables


def _span_text_differs(tables):
    train = tables["default"]["train"]
    entities = train.column("entities").to_pylist()
    row = next(i for i, e in enumerate(entities) if e)
    entities[row][0]["text"] = "Somebody Else"
    tables["default"]["train"] = _replace_column(train, "entities", entities)
    return tables


def _split_differs_between_configs(tables):
    """A gold row moved to another split in `default` only (the streamed `articles` config keeps it)."""
    import hashlib

    import pyarrow as pa

    clustered = {hashlib.sha256(key.encode()).hexdigest()[:16] for key in ("dam-vote", "dam-protest")}
    gold = tables["default"]
    index = next(i for i, a in enumerate(gold["train"].column("id").to_pylist()) if a not in clustered)
    moved = gold["train"].slice(index, 1)
    gold["train"] = pa.concat_tables([gold["train"].slice(0, index), gold["train"].slice(index + 1)])
    gold["validation"] = pa.concat_tables([gold["validation"], moved])
    return tables


@pytest.mark.parametrize(
    ("corrupt", "message"),
    [
        (_split_differs_between_configs, "is in validation in the default config"),
        (_bad_label_id, "ner_tags.[] label id out of range"),
        (_bio_disagrees, "BIO tags do not agree"),
        (_article_in_two_splits, "is also in train"),
        (_span_text_differs, "does not match the article text"),
    ],
)
def test_integrity_failure_stops_the_build_and_leaves_dist_untouched(corpus, monkeypatch, corrupt, message) -> None:
    files = corpus()
    build(files)
    snapshot = {p: p.read_bytes() for p in files.out.rglob("*") if p.is_file()}
    splits_before = files.splits.read_bytes()
    _corrupt_tables(monkeypatch, corrupt)
    with pytest.raises(UserError, match="integrity check failed") as error:
        build(files, version="1.1.0")
    assert message in str(error.value)
    assert "\n" not in str(error.value)
    assert {p: p.read_bytes() for p in files.out.rglob("*") if p.is_file()} == snapshot
    assert files.splits.read_bytes() == splits_before
    assert not list(files.out.parent.glob(".newsstance-build-*"))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda g: g[0]["entities"][0].update(text="Ilsa Varnholts"), "says 'Ilsa Varnholts'"),
        (lambda g: g[0]["entities"].append({**g[0]["entities"][0], "start": 11, "text": "Varnholt"}), "overlaps"),
        (lambda g: g[0]["entities"][0].update(start=5, text=" Ilsa Varnholt"), "whitespace"),
    ],
)
def test_bad_gold_spans_are_refused_before_anything_is_written(corpus, helpers, edit, message) -> None:
    files = corpus()
    gold = [dict(g, entities=[dict(e) for e in g["entities"]]) for g in files.gold_records]
    edit(gold)
    helpers.write_jsonl(files.gold, gold)
    with pytest.raises(UserError, match=message):
        build(files)
    assert not files.out.exists()
    assert not files.splits.exists()


def test_cluster_split_across_a_hand_edited_splits_file_is_refused(corpus, helpers) -> None:
    files = corpus()
    aid = helpers.article_id
    helpers.write_jsonl(
        files.splits, [{"id": aid("dam-vote"), "split": "train"}, {"id": aid("dam-vote-syndicated"), "split": "test"}]
    )
    with pytest.raises(UserError, match="straddles"):
        build(files)
    assert not files.out.exists()
