"""Bad input goes to quarantine.jsonl with a reason; the run goes on; nothing is lost."""

from __future__ import annotations

import os

import orjson

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x10" + bytes(range(256))
UNDECODABLE = b"harbour\x81\x8d plan\x90\x9d vote\xc3\x28 quay\x8f\x81 " * 20  # not UTF-8, not cp1252, no NUL


def _entry(result, path):
    (entry,) = [q for q in result.quarantine if q["path"] == path]
    return entry


def test_each_bad_input_kind_has_its_reason(normalize, pages, tmp_path):
    bad_schema = {**pages.newsplease, "title": 42, "language": "English", "authors": "Ivo Brandt"}
    files = {
        "empty.txt": b"",
        "blank.txt": b"  \n\n \t\n",
        "image.txt": PNG,
        "nul.txt": b"Quay news\x00\x00\x00 more",
        "garbled.txt": UNDECODABLE,
        "big.txt": pages.plain * 40,
        "broken.json": '{"title": "Pier opens", "maintext": "The pier',
        "claims.jsonl": "this is not json at all\n",
        "bad_schema.json": orjson.dumps(bad_schema),
        "notfound.html": "<html><body><nav><a href='/'>Home</a> <a href='/news'>News</a></nav>"
        "<h1>Page not found</h1><footer>© Quay Post</footer></body></html>",
        "title_only.txt": "Just a headline\n",
        "settings.json": orjson.dumps({"theme": "dark", "font": 12}),
        "good.txt": pages.plain,
    }
    raw = tmp_path / "raw"
    raw.mkdir()
    os.symlink(raw / "missing-target.txt", raw / "dangling.txt")
    result = normalize(files, max_bytes=len(pages.plain) * 10)
    expected = {
        "empty.txt": "empty",
        "blank.txt": "empty",
        "image.txt": "binary",
        "nul.txt": "binary",
        "garbled.txt": "undecodable",
        "big.txt": "too_large",
        "broken.json": "malformed_json",
        "claims.jsonl": "malformed_json",
        "bad_schema.json": "schema_invalid",
        "notfound.html": "no_article",
        "title_only.txt": "no_article",
        "settings.json": "no_article",
        "dangling.txt": "read_error",
    }
    assert {q["path"]: q["reason"] for q in result.quarantine} == expected
    assert [r["provenance"]["path"] for r in result.records] == ["good.txt"]  # the run went on
    assert result.summary.quarantined == {
        reason: list(expected.values()).count(reason) for reason in set(expected.values())
    }
    for entry in result.quarantine:
        assert entry["detail"] and set(entry) >= {"path", "sha256", "reason", "detail"}
    assert _entry(result, "big.txt")["sha256"] is not None  # hashed without being read whole


def test_schema_failures_list_every_error_with_its_json_path(normalize, pages):
    bad = {**pages.newsplease, "title": 42, "authors": "Ivo Brandt", "url": "not a url"}
    result = normalize({"bad.json": orjson.dumps(bad)})
    entry = _entry(result, "bad.json")
    assert entry["reason"] == "schema_invalid"
    assert {e["path"] for e in entry["errors"]} == {"/title", "/authors", "/url"}
    assert all(e["message"] for e in entry["errors"])


def test_one_bad_record_in_an_array_does_not_sink_the_others(normalize, pages):
    records = [pages.newsplease, {**pages.newsplease, "maintext": "", "url": "https://penhallowdaily.example/x"}]
    result = normalize({"pair.json": orjson.dumps(records)})
    assert [r["provenance"]["record_index"] for r in result.records] == [0]
    entry = _entry(result, "pair.json")
    assert (entry["reason"], entry["record_index"]) == ("schema_invalid", 1)
    assert [e["path"] for e in entry["errors"]] == ["/text"]


def test_every_input_file_ends_as_records_or_quarantine(normalize, pages):
    """The invariant, over a mixed folder of good, bad and odd files."""
    files = {
        "a/agg.txt": pages.aggregator,
        "a/page.html": pages.html,
        "a/plain.txt": pages.plain,
        "b/np.json": orjson.dumps(pages.newsplease),
        "b/np.jsonl": orjson.dumps(pages.newsplease) + b"\n{oops\n",
        "b/empty.txt": b"",
        "b/png.bin": PNG,
        "b/garbled.txt": UNDECODABLE,
        "c/only-title.txt": "Headline\n",
        "c/nav.html": "<html><body><nav>Home News Sport</nav></body></html>",
        "c/weird.json": b"[]",
        "c/number.json": b"42",
        "c/deep/nested/x.txt": pages.plain,
        ".hidden.txt": pages.plain,
        "c/x.txt.meta.json": orjson.dumps({"crawled_at": "2026-03-01T00:00:00Z"}),
    }
    result = normalize(files)
    inputs = {name for name in files if not name.startswith(".") and not name.endswith(".meta.json")}
    produced = {r["provenance"]["path"] for r in result.records} | {q["path"] for q in result.quarantine}
    assert produced == inputs
    assert result.summary.files == len(inputs)
