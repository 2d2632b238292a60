"""Each reader on small fictional pages: aggregator, HTML, news-please JSON/JSONL, plain text,
and format sniffing from content."""

from __future__ import annotations

import orjson

from newsstance import ids
from newsstance.normalize.config import ChromeConfig, load_config
from newsstance.normalize.readers.textpage import parse_text_page

CHROME_STRINGS = (
    "Hashtags",
    "#QuillonBay",
    "Try Our AI Features",
    "Explore what",
    "Comments",
    "No comments yet",
    "Related Articles",
    "- Marrow Coast Herald",
    "18 minutes ago",
)


def test_aggregator_main_and_related_blocks(normalize, pages):
    result = normalize({"site/quillon.txt": pages.aggregator})
    records = result.by_path("site/quillon.txt")
    assert [(r["role"], r["title"], r["source"], r["published_at_raw"]) for r in records] == [
        ("main", "Harbour board approves new ferry pier at Quillon Bay", None, None),
        ("related", "Island school gets solar roof", "Marrow Coast Herald", "18 minutes ago"),
        ("related", "Fishermen seek compensation for pier works", "Quillon Evening Post", "an hour ago"),
    ]
    main, school, fishermen = records
    assert all(r["provenance"]["format"] == "aggregator" for r in records)
    assert main["related_to"] is None and school["related_to"] == main["id"] == fishermen["related_to"]
    assert main["text"].startswith("The Quillon Bay harbour board voted")
    assert main["text"].endswith("close the fish market for six weeks.")
    assert main["text"].count("\n\n") == 2  # three paragraphs
    for record in records:
        for chrome in CHROME_STRINGS:
            assert chrome not in record["text"], (record["title"], chrome)
    assert school["text"].startswith("Pupils at the Ostreva island school")
    # cut mid-sentence ("... before the end of the") vs complete
    assert (main["truncated"], school["truncated"], fishermen["truncated"]) == (False, True, False)
    assert school["published_at"] == "2026-03-14T09:12:00Z" and school["published_at_precision"] == "minute"
    assert fishermen["published_at"] == "2026-03-14T08:30:00Z" and fishermen["published_at_precision"] == "hour"
    assert (main["provenance"]["line_start"], main["provenance"]["line_end"]) == (2, 5)
    assert school["provenance"]["line_start"] == 16  # its outlet line


def test_aggregator_of_another_site_layout():
    """Different chrome words, time after the dash line, one blank line between blocks."""
    page = "\n".join(
        [
            "Menu",
            "Rowan Hill wind farm gets green light",
            "Planners in Rowan Hill approved six turbines on the ridge above the village on Monday.",
            "The developer expects the first power before winter.",
            "Share this story",
            "Sign up for our newsletter",
            "The best of Hillside Daily in your inbox each morning.",
            "3 comments",
            "Read next",
            "",
            "Hillside Daily",
            "- Hillside Daily",
            "2 hours ago",
            "Ridge path to close for turbine deliveries",
            "The footpath along the ridge will close for three weeks while turbine blades are delivered.",
            "Load more",
            "© 2026 Hillside Daily",
        ]
    )
    result = parse_text_page(page, ChromeConfig())
    assert result.format == "aggregator"
    main, related = result.articles
    assert main.title == "Rowan Hill wind farm gets green light"
    assert main.paragraphs[-1] == "The developer expects the first power before winter."
    assert (related.role, related.source, related.published_raw) == ("related", "Hillside Daily", "2 hours ago")
    assert related.paragraphs == [
        "The footpath along the ridge will close for three weeks while turbine blades are delivered."
    ]


def test_chrome_phrases_are_configurable(tmp_path):
    config_path = tmp_path / "chrome.yaml"
    config_path.write_text("chrome:\n  extra_phrases: ['Listen to the Harbour Hour podcast']\n")
    config = load_config(config_path)
    page = (
        "Tide tables change for spring\nThe harbour office has published new tide tables.\n"
        "Listen to the Harbour Hour podcast\nBoat owners should check the new times before sailing.\n"
    )
    default = parse_text_page(page, ChromeConfig()).articles[0]
    custom = parse_text_page(page, config.chrome).articles[0]
    assert "Listen to the Harbour Hour podcast" in default.paragraphs
    assert custom.paragraphs == [
        "The harbour office has published new tide tables.",
        "Boat owners should check the new times before sailing.",
    ]


def test_html_extraction_drops_site_chrome(normalize, pages):
    result = normalize({"lamp/festival.html": pages.html})
    (record,) = result.records
    assert record["title"] == "Lantern festival returns to Orrin Quay"
    assert ids.canonical_url(record["url"]) == "https://orrinlamp.example/culture/lantern-festival-returns"
    assert record["source"] == "The Orrin Lamp" and record["authors"] == ["Maren Slate"]
    assert record["language"] == "en-GB" and record["role"] == "standalone"
    assert record["published_at_raw"] == "2026-03-12T19:15:00+01:00"
    assert (record["published_at"], record["published_at_precision"]) == ("2026-03-12T18:15:00Z", "minute")
    assert record["text"].startswith("The Orrin Quay lantern festival will return")
    assert record["text"].endswith("on both evenings of the festival.")
    assert "🏮" in record["text"]
    for chrome in (
        "cookies",
        "Home",
        "Most read",
        "Bridge repairs delayed",
        "© 2026",
        "Privacy policy",
        "By Maren Slate",
        "Lantern festival returns to Orrin Quay",
    ):
        assert chrome not in record["text"], chrome
    assert record["provenance"]["format"] == "html"


def test_newsplease_json_object_and_array(normalize, pages):
    second = {
        **pages.newsplease,
        "title": "Penhallow ferry adds a night crossing",
        "url": "https://penhallowdaily.example/travel/night-ferry",
        "authors": [],
    }
    result = normalize(
        {"np/one.json": orjson.dumps(pages.newsplease), "np/many.json": orjson.dumps([pages.newsplease, second])},
        crawl_time=None,
    )
    (one,) = result.by_path("np/one.json")
    assert one["title"] == "Glassworks in Penhallow to add forty jobs"
    assert one["text"] == (
        "The Penhallow glassworks will hire forty people this year after winning a contract for "
        "lighthouse lenses.\n\nManager Ivo Brandt said the new furnace would be lit in June."
    )
    assert one["source"] == "penhallowdaily.example" and one["authors"] == ["Ivo Brandt"]
    assert one["published_at"] == "2026-03-10T08:45:00Z" and one["published_at_raw"] == "2026-03-10 08:45:00"
    assert one["crawled_at"] == "2026-03-13T21:05:00Z" and one["provenance"]["crawl_time_source"] == "record"
    assert one["provenance"]["format"] == "newsplease-json" and "record_index" not in one["provenance"]
    many = result.by_path("np/many.json")
    assert [r["provenance"]["record_index"] for r in many] == [0, 1]
    assert [r["title"] for r in many] == [pages.newsplease["title"], "Penhallow ferry adds a night crossing"]


def test_newsplease_jsonl_keeps_good_lines_and_quarantines_bad_one(normalize, pages):
    good = orjson.dumps(pages.newsplease).decode()
    other = orjson.dumps(
        {**pages.newsplease, "title": "Penhallow pool reopens", "url": "https://penhallowdaily.example/pool"}
    ).decode()
    content = "\n".join([good, '{"title": "cut off', "", other]) + "\n"
    result = normalize({"batch.jsonl": content})
    records = result.by_path("batch.jsonl")
    assert [(r["provenance"]["line_start"], r["provenance"]["record_index"]) for r in records] == [(1, 0), (4, 2)]
    assert all(r["provenance"]["format"] == "newsplease-jsonl" for r in records)
    (bad,) = result.quarantine
    assert (bad["path"], bad["reason"], bad["line"]) == ("batch.jsonl", "malformed_json", 2)


def test_plaintext_title_and_body(normalize, pages):
    result = normalize({"notes/library.txt": pages.plain})
    (record,) = result.records
    assert record["title"] == "Library in Dunmere extends opening hours"
    assert record["text"].split("\n\n") == [
        "Dunmere's public library will open until nine in the evening from next month, the town's culture office said.",
        "The longer hours are funded by a bequest from a retired teacher who left her house to the library.",
    ]
    assert record["role"] == "standalone" and record["provenance"]["format"] == "plaintext"
    assert record["source"] is None and record["truncated"] is False


def test_hard_wrapped_plaintext_paragraphs_are_joined():
    page = (
        "Dunmere council agrees cycle lane plan\n\n"
        "The council agreed on Tuesday to build a protected cycle lane along the\n"
        "whole of Mill Street, after a year of consultation with shop owners.\n\n"
        "Work starts in May.\n"
    )
    (article,) = parse_text_page(page, ChromeConfig()).articles
    assert article.paragraphs == [
        "The council agreed on Tuesday to build a protected cycle lane along the whole of "
        "Mill Street, after a year of consultation with shop owners.",
        "Work starts in May.",
    ]


def test_format_is_sniffed_from_content_not_extension(normalize, pages):
    result = normalize(
        {
            "misnamed/page.txt": pages.html,
            "misnamed/record.dat": orjson.dumps(pages.newsplease),
            "misnamed/article.html": pages.plain,
        }
    )
    formats = {r["provenance"]["path"]: r["provenance"]["format"] for r in result.records}
    assert formats == {
        "misnamed/page.txt": "html",
        "misnamed/record.dat": "newsplease-json",
        "misnamed/article.html": "plaintext",
    }


def test_sidecar_url_and_source_apply_to_the_page_article(normalize, pages):
    sidecar = orjson.dumps(
        {"crawled_at": "2026-03-01T12:00:00Z", "url": "https://pulsewire.example/quillon-pier", "source": "PulseWire"}
    )
    result = normalize({"q.txt": pages.aggregator, "q.txt.meta.json": sidecar}, crawl_time=None)
    main, *related = result.records
    assert (main["url"], main["source"]) == ("https://pulsewire.example/quillon-pier", "PulseWire")
    assert all(r["url"] is None and r["source"] != "PulseWire" for r in related)
    assert main["id"] == ids.article_id(ids.identity_key(main["url"], "PulseWire", main["title"]), "q.txt", 0)


def test_language_comes_from_the_text_and_a_declared_tag_keeps_its_region(normalize, pages):
    result = normalize(
        {
            "a.json": orjson.dumps({**pages.newsplease, "language": "EN_gb"}),
            "b.json": orjson.dumps({**pages.newsplease, "language": "English"}),  # not a tag: ignored
            "c.json": orjson.dumps({**pages.newsplease, "language": None}),
            "d.json": orjson.dumps({**pages.newsplease, "language": "de"}),  # wrong: the text is English
        }
    )
    assert [(r["provenance"]["path"], r["language"], r["provenance"]["language_source"]) for r in result.records] == [
        ("a.json", "en-GB", "text"),
        ("b.json", "en", "text"),
        ("c.json", "en", "text"),
        ("d.json", "en", "text"),
    ]
    assert not result.quarantine
