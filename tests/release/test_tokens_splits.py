"""Tokeniser offsets, BIO tags, split assignment and version parsing (pure functions, no files)."""

from __future__ import annotations

import pytest

from newsstance.errors import UserError
from newsstance.release.splits import assign_splits, clusters_of, parse_ratios
from newsstance.release.tokens import SpanOffTokens, bio_tag_ids, token_offsets, tokens_from_offsets
from newsstance.release.versions import next_version, parse_version


def test_tokens_are_word_runs_and_single_punctuation_with_offsets() -> None:
    text = 'Mayor Ilsa Varnholt\'s plan, "Tidewater"!'
    starts, ends = token_offsets(text)
    assert tokens_from_offsets(text, starts, ends) == [
        "Mayor",
        "Ilsa",
        "Varnholt",
        "'",
        "s",
        "plan",
        ",",
        '"',
        "Tidewater",
        '"',
        "!",
    ]
    assert all(text[s:e] for s, e in zip(starts, ends, strict=True))


@pytest.mark.parametrize("text", ["a\x1cb c", "plain ascii, text!", "caf\u00e9 \u201cquoted\u201d \u00b2", "x_1\ty"])
def test_ascii_fast_path_gives_the_same_tokens_as_the_unicode_pattern(text: str) -> None:
    import re

    expected = [(m.start(), m.end()) for m in re.finditer(r"\w+|[^\w\s]", text)]
    starts, ends = token_offsets(text)
    assert list(zip(starts, ends, strict=True)) == expected


def test_entity_boundary_inside_a_token_splits_it() -> None:
    text = "Kessarians fear prices."
    starts, ends = token_offsets(text, cuts=[0, 9])
    assert tokens_from_offsets(text, starts, ends) == ["Kessarian", "s", "fear", "prices", "."]
    assert bio_tag_ids(starts, ends, [(0, 9, 1)]) == [3, 0, 0, 0, 0]


def test_bio_tags_mark_first_token_b_and_the_rest_i() -> None:
    text = "The Varn Institute of Engineering found it."
    starts, ends = token_offsets(text)
    # label 2 (ORG): B = 1 + 2*2 = 5, I = 6
    assert bio_tag_ids(starts, ends, [(4, 33, 2)]) == [0, 5, 6, 6, 6, 0, 0, 0]


def test_span_with_outer_whitespace_is_refused() -> None:
    text = "Visit Ostwick now"
    starts, ends = token_offsets(text)
    with pytest.raises(SpanOffTokens):
        bio_tag_ids(starts, ends, [(5, 13, 3)])


def test_clusters_join_duplicates_pages_same_text_and_identity(helpers) -> None:
    article_id = helpers.article_id
    links = {"b": {"duplicate_of": article_id("a")}, "d": {"related_to": article_id("c")}}
    records = [
        helpers.make_article(k, f"Title {k}", f"Text of {k}.", "Outlet", "2031-01-01T00:00:00Z", **links.get(k, {}))
        for k in "abcde"
    ]
    records[4]["text"], records[4]["text_sha256"] = records[2]["text"], records[2]["text_sha256"]  # e: same text as c
    cluster = clusters_of(records)
    assert cluster[article_id("a")] == cluster[article_id("b")]
    assert cluster[article_id("c")] == cluster[article_id("d")] == cluster[article_id("e")]
    assert cluster[article_id("a")] != cluster[article_id("c")]


def test_same_canonical_url_clusters_even_when_written_differently(helpers) -> None:
    first = helpers.make_article(
        "u1", "One", "Text one.", "Outlet", "2031-01-01T00:00:00Z", url="https://www.News.example/story/?utm_source=x"
    )
    second = helpers.make_article(
        "u2", "Two", "Text two.", "Outlet", "2031-01-01T00:00:00Z", url="https://news.example:443/story#top"
    )
    third = helpers.make_article(
        "u3", "Three", "Text three.", "Outlet", "2031-01-01T00:00:00Z", url="https://news.example/story?page=2"
    )
    cluster = clusters_of([first, second, third])
    assert cluster[first["id"]] == cluster[second["id"]] != cluster[third["id"]]


def test_frozen_articles_keep_their_split_and_new_cluster_members_join_it() -> None:
    cluster_of = {"a": "a", "a2": "a", "b": "b", "c": "c"}
    frozen = {"a": {"id": "a", "split": "test"}, "b": {"id": "b", "split": "validation"}}
    result = assign_splits(cluster_of, frozen, gold_ids={"a", "b", "c"})
    assert result.split_of["a"] == result.split_of["a2"] == "test"
    assert result.split_of["b"] == "validation"
    assert result.new_ids == ["a2", "c"]


def test_new_clusters_follow_the_ratios() -> None:
    cluster_of = {f"x{i:03d}": f"x{i:03d}" for i in range(100)}
    result = assign_splits(cluster_of, {}, gold_ids=set(cluster_of), ratios=(0.8, 0.1, 0.1))
    counts = {s: list(result.split_of.values()).count(s) for s in ("train", "validation", "test")}
    assert counts == {"train": 80, "validation": 10, "test": 10}


def test_assignment_is_deterministic_whatever_the_input_order() -> None:
    ids = [f"y{i:03d}" for i in range(30)]
    first = assign_splits({i: i for i in ids}, {}, set(ids[:20]))
    second = assign_splits({i: i for i in reversed(ids)}, {}, set(ids[:20]))
    assert first.split_of == second.split_of


def test_cluster_straddling_frozen_splits_is_a_user_error() -> None:
    frozen = {"a": {"id": "a", "split": "train"}, "b": {"id": "b", "split": "test"}}
    with pytest.raises(UserError, match="straddles"):
        assign_splits({"a": "a", "b": "a"}, frozen, set())


@pytest.mark.parametrize("text", ["0.8,0.2", "0.5,0.5,0.5", "a,b,c", "0,0.5,0.5", "-0.1,0.6,0.5"])
def test_bad_ratios_are_refused(text: str) -> None:
    with pytest.raises(UserError):
        parse_ratios(text)


@pytest.mark.parametrize("text", ["1.0", "v1.0.0", "1.0.0-rc1", "01.0.0", "1.0.x", ""])
def test_versions_must_be_plain_semver(text: str) -> None:
    with pytest.raises(UserError):
        parse_version(text)


def test_next_version_bumps() -> None:
    assert next_version(None, "minor") == "1.0.0"
    assert next_version("1.2.3", "major") == "2.0.0"
    assert next_version("1.2.3", "minor") == "1.3.0"
    assert next_version("1.2.3", "patch") == "1.2.4"
