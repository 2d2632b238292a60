"""Fictional HTML pages (tests/normalize/data/html) with hand-written gold: body text, headline,
canonical URL, date, language and `truncated`, through the whole normalize pipeline."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

HTML_DIR = Path(__file__).parent / "data" / "html"
PAGES = sorted(p.stem for p in HTML_DIR.glob("*.html") if (HTML_DIR / f"{p.stem}.gold.txt").exists())


def read_gold(name: str) -> tuple[dict[str, str | None], list[str]]:
    head, body = (HTML_DIR / f"{name}.gold.txt").read_text(encoding="utf-8").split("---\n", 1)
    fields: dict[str, str | None] = {}
    for line in head.splitlines():
        key, value = line.split(": ", 1)
        fields[key] = None if value == "null" else value
    return fields, [p for p in body.splitlines() if p]


@pytest.fixture(scope="module")
def normalized(tmp_path_factory):
    from newsstance.normalize.runner import run_normalize

    root = tmp_path_factory.mktemp("pages")
    raw = root / "raw"
    raw.mkdir()
    for path in HTML_DIR.glob("*.html"):
        (raw / path.name).write_bytes(path.read_bytes())
        if path.stem in PAGES:
            fields, _ = read_gold(path.stem)
            if fields.get("page_url"):
                sidecar = {"crawled_at": "2026-03-14T09:30:00Z", "url": fields["page_url"]}
                (raw / f"{path.name}.meta.json").write_bytes(orjson.dumps(sidecar))
    out = root / "out"
    run_normalize([raw], out, crawl_time="2026-03-14T09:30:00Z")
    records = [
        orjson.loads(line) for shard in sorted(out.glob("articles-*.jsonl")) for line in shard.read_bytes().splitlines()
    ]
    quarantine = [orjson.loads(line) for line in (out / "quarantine.jsonl").read_bytes().splitlines()]
    return {r["provenance"]["path"]: r for r in records}, {q["path"]: q for q in quarantine}


@pytest.mark.parametrize("name", PAGES)
def test_page_matches_its_gold(normalized, name):
    records, quarantine = normalized
    assert f"{name}.html" not in quarantine, quarantine.get(f"{name}.html")
    record = records[f"{name}.html"]
    fields, paragraphs = read_gold(name)
    assert record["title"] == fields["title"]
    assert record["url"] == fields["url"]
    assert record["published_at"] == fields["published_at"]
    assert record["language"] == fields["language"]
    assert record["provenance"]["language_source"] == "text"
    assert record["truncated"] == (fields["truncated"] == "true")
    text = record["text"].split("\n\n")
    for paragraph in paragraphs:  # every gold paragraph is kept ...
        assert paragraph.removeprefix("- ") in record["text"], paragraph
    gold = "\n".join(paragraphs)
    extra = [p for p in text if p.removeprefix("- ") not in gold]
    assert len(extra) <= 1, extra  # ... and at most one line beyond it (a standfirst)


def test_placeholder_and_impossible_dates_fall_through_and_are_recorded(normalized):
    records, _ = normalized
    split = records["en_split_embed.html"]
    assert split["published_at"] == "2026-03-12T08:15:00Z"
    future = records["pt_nolang.html"]
    assert future["published_at_raw"] == "2026-03-11T10:00:00Z"
    assert "later than the crawl time" in future["provenance"]["published_at_rejected"]
    epoch_only = records["en_sections.html"]  # JSON-LD says 1970-01-01: no usable date, the raw string stays
    assert epoch_only["published_at"] is None
    assert epoch_only["published_at_raw"] == "1970-01-01T00:00:00Z"
    assert "epoch" in epoch_only["provenance"]["published_at_rejected"]


def test_titles_lose_the_site_name_and_bidi_controls_are_recorded(normalized):
    records, _ = normalized
    assert "title_site_name" in records["en_split_embed.html"]["provenance"]["repairs"]
    german = records["de_lang_en.html"]
    assert "\u202e" not in german["title"] and "title_bidi_controls" in german["provenance"]["repairs"]
    # <title> is only the outlet's name: the headline comes from <h1>
    assert records["en_list_summary.html"]["title"].startswith("Streaming service Tidewave")


def test_invisible_title_is_quarantined_as_no_title(normalized):
    records, quarantine = normalized
    assert "en_invisible_title.html" not in records
    assert quarantine["en_invisible_title.html"]["reason"] == "no_title"


def test_list_items_and_headings_inside_the_body_survive_chrome_removal(normalized):
    records, _ = normalized
    text = records["en_list_summary.html"]["text"]
    assert "Sign up for a Tidewave Premium account for $11.99 a month." in text
    assert "Summary" in text.split("\n\n")
    assert "Click here to subscribe" not in text and "community standards" not in text and "https://" not in text


def test_a_body_continued_outside_the_article_element_comes_from_the_second_extractor(normalized):
    records, _ = normalized
    assert records["en_continued.html"]["provenance"]["extractor"] == "readability"
    # the fallback is the exception: pages whose body trafilatura reads whole never pay for it
    assert sum(r["provenance"]["extractor"] == "trafilatura" for r in records.values()) >= len(records) - 2


def test_the_second_extractor_wins_only_by_recovering_prose():
    from newsstance.normalize.html_extract import coverage, second_is_better

    prose = [f"Paragraph {n} of the story says something long enough to count as running prose." for n in range(6)]
    first_half = "\n".join(prose[:3])
    assert coverage(first_half, prose) == (0.5, sum(len(p) for p in prose[3:]))
    assert second_is_better(first_half, "\n".join(prose), prose)
    boxes = "\n".join(f"Top story {n}: a headline of another article" for n in range(40))
    assert not second_is_better(first_half, "\n".join([*prose[:4], boxes]), prose)  # more boxes than recovered prose
    assert not second_is_better("\n".join(prose), "\n".join(prose), prose)


def test_a_page_without_paragraph_markup_still_yields_its_text_but_a_cookie_notice_does_not():
    from newsstance.normalize.html_extract import parse_html

    lines = [
        "The village hall committee has agreed to open the hall on Sunday afternoons for the winter, so that "
        "older residents have a warm place to meet and talk.",
        "Volunteers will serve tea and soup, and the bus from the upper village will stop at the hall door from "
        "the first week of November.",
    ]
    page = (
        f"<html><head><title>Notice board</title></head><body><div><div>{'<br>'.join(lines)}</div></div></body></html>"
    )
    article = parse_html(page)
    assert article is not None and article.paragraphs == lines
    cookie_only = (
        "<html><body><div class='cookie-banner'><p>Cookies help us deliver our services.</p></div>"
        "<main><h1>Page not found</h1></main></body></html>"
    )
    assert parse_html(cookie_only) is None
