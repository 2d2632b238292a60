"""Realistic inputs the sample corpus did not cover: declared legacy charsets, dates only in
machine-readable markup, wrapped or pretty-printed JSON exports, one-line related-block headers,
Markdown titles. All text is fictional."""

from __future__ import annotations

import orjson

from newsstance.normalize.decode import declared_charset, decode_bytes

BODY = (
    "<p>The harbour council of Velmora voted on Tuesday to delay the new ferry terminal until the spring "
    "review is finished.</p><p>Councillor Ana Brisk said the delay would cost little and give residents more "
    "time to comment on the plans.</p>"
)


def _page(head: str, body: str = BODY, before: str = "") -> str:
    return (
        f"<!DOCTYPE html><html lang='en'><head>{head}</head><body>{before}<div class='story'>"
        f"<h1>Velmora delays ferry terminal</h1>{body}</div></body></html>"
    )


NEWSPLEASE = {
    "title": "Velmora delays ferry terminal",
    "maintext": "The harbour council of Velmora voted on Tuesday to delay the new ferry terminal.\n"
    "Councillor Ana Brisk said the delay would cost little.",
    "url": "https://velmora-tribune.example/news/ferry",
    "date_publish": "2026-03-14 09:30:00",
    "source_domain": "velmora-tribune.example",
    "authors": ["Ana Brisk"],
    "language": "en",
}

MAIN = (
    "Velmora council delays ferry terminal\n"
    "The harbour council of Velmora voted on Tuesday to delay the new ferry terminal until spring.\n"
    "Councillor Ana Brisk said the delay would cost little and give residents more time to comment.\n"
)


# ---- encodings ---------------------------------------------------------------------------------------------------


def test_a_page_in_a_declared_cyrillic_charset_is_read_in_that_charset(normalize):
    sentence = "Совет гавани Вельморы во вторник проголосовал за отсрочку строительства нового терминала. "
    html = _page("<meta charset='windows-1251'><title>Вельмора</title>", f"<p>{sentence * 3}</p>")
    result = normalize({"cyr.html": html.encode("cp1251")})
    [record] = result.by_path("cyr.html")
    assert "Совет гавани Вельморы" in record["text"]
    assert record["provenance"]["encoding"] == "cp1251"


def test_an_http_equiv_central_european_charset_is_honoured(normalize):
    sentence = "Rada přístavu Velmora v úterý odložila stavbu nového terminálu až do jara, řekla radní Brisková. "
    html = _page(
        "<meta http-equiv='Content-Type' content='text/html; charset=iso-8859-2'><title>Velmora</title>",
        f"<p>{sentence * 3}</p>",
    )
    [record] = normalize({"cz.html": html.encode("iso-8859-2")}).by_path("cz.html")
    assert "přístavu" in record["text"] and "Brisková" in record["text"]


def test_latin1_label_is_read_as_windows_1252_like_browsers_do():
    data = "<meta charset='ISO-8859-1'><p>Caf\u00e9 \u201cVelmora\u201d</p>".encode("cp1252")
    assert declared_charset(data) == "cp1252"
    assert "Café “Velmora”" in decode_bytes(data).text


def test_utf8_bytes_win_over_a_wrong_declaration():
    data = "<meta charset='windows-1251'><p>Café Velmora</p>".encode()
    decoded = decode_bytes(data)
    assert decoded.encoding == "utf-8" and "Café Velmora" in decoded.text


def test_unknown_declared_charset_falls_back_to_detection():
    data = "<meta charset='x-no-such-charset'><p>Café Velmora</p>".encode("cp1252")
    assert declared_charset(data) is None
    assert "Café Velmora" in decode_bytes(data).text


# ---- HTML dates --------------------------------------------------------------------------------------------------


def test_time_datetime_attribute_outside_article_keeps_time_and_offset(normalize):
    byline = (
        "<div class='byline'>By Ana Brisk <time class='published' datetime='2026-03-14T09:30:00+01:00'>"
        "14 March 2026</time></div>"
    )
    html = _page("<meta charset='utf-8'><title>Velmora delays ferry terminal</title>", before=byline)
    [record] = normalize({"byline.html": html}).by_path("byline.html")
    assert record["published_at"] == "2026-03-14T08:30:00Z"
    assert record["published_at_precision"] == "minute"


def test_date_only_in_json_ld_graph(normalize):
    ld = (
        '<script type="application/ld+json">{"@graph":[{"@type":"WebPage"},{"@type":"NewsArticle",'
        '"datePublished":"2026-03-14T09:30:00+02:00"}]}</script>'
    )
    html = _page(f"<meta charset='utf-8'><title>Velmora delays ferry terminal</title>{ld}")
    [record] = normalize({"ld.html": html}).by_path("ld.html")
    assert (record["published_at"], record["published_at_raw"]) == ("2026-03-14T07:30:00Z", "2026-03-14T09:30:00+02:00")


def test_a_date_found_only_in_visible_text_is_day_precision_not_midnight_minute(normalize):
    html = _page(
        "<meta charset='utf-8'><title>Velmora delays ferry terminal</title>",
        before="<p class='date'>Published: 14 March 2026</p>",
    )
    [record] = normalize({"textdate.html": html}).by_path("textdate.html")
    assert record["published_at"] == "2026-03-14T00:00:00Z"
    assert record["published_at_precision"] == "day"


# ---- news-please exports -----------------------------------------------------------------------------------------


def test_records_wrapped_in_an_object_under_a_key_are_read(normalize):
    second = {
        **NEWSPLEASE,
        "url": "https://velmora-tribune.example/news/ferry-2",
        "title": "Ferry vote, day two",
        "maintext": "A second day of debate on the Velmora ferry terminal ended without a decision.",
    }
    export = {"count": 2, "articles": [NEWSPLEASE, second]}
    result = normalize({"export.json": orjson.dumps(export)})
    assert [r["title"] for r in result.by_path("export.json")] == [
        "Velmora delays ferry terminal",
        "Ferry vote, day two",
    ]
    assert [r["provenance"]["record_index"] for r in result.by_path("export.json")] == [0, 1]
    assert result.reasons("export.json") == []


def test_an_object_without_records_is_still_quarantined(normalize):
    result = normalize({"stats.json": orjson.dumps({"count": 0, "pages": [{"views": 3}]})})
    assert result.by_path("stats.json") == [] and result.reasons("stats.json") == ["no_article"]


def test_a_pretty_printed_array_in_a_jsonl_file_is_read_as_json(normalize):
    second = {
        **NEWSPLEASE,
        "url": "https://velmora-tribune.example/news/ferry-2",
        "title": "Ferry vote, day two",
        "maintext": "A second day of debate on the Velmora ferry terminal ended without a decision.",
    }
    result = normalize({"dump.jsonl": orjson.dumps([NEWSPLEASE, second], option=orjson.OPT_INDENT_2)})
    assert len(result.by_path("dump.jsonl")) == 2
    assert result.quarantine == []


def test_a_jsonl_with_one_bad_line_still_quarantines_only_that_line(normalize):
    text = orjson.dumps(NEWSPLEASE).decode() + "\n{broken\n"
    result = normalize({"mixed.jsonl": text})
    assert len(result.by_path("mixed.jsonl")) == 1
    assert [(q["reason"], q["line"]) for q in result.quarantine] == [("malformed_json", 2)]


def test_jsonl_with_bom_crlf_and_blank_lines(normalize):
    second = {**NEWSPLEASE, "url": "https://velmora-tribune.example/news/ferry-2", "title": "Ferry vote, day two"}
    text = "\r\n".join(["", orjson.dumps(NEWSPLEASE).decode(), "", "  ", orjson.dumps(second).decode(), "", ""])
    result = normalize({"crlf.jsonl": b"\xef\xbb\xbf" + text.encode()})
    titles = [r["title"] for r in result.by_path("crlf.jsonl")]
    assert titles == ["Velmora delays ferry terminal", "Ferry vote, day two"]
    assert result.quarantine == []


def test_a_null_title_falls_back_to_the_rss_title(normalize):
    record = {**NEWSPLEASE, "title": None, "title_rss": "Velmora ferry vote delayed"}
    [article] = normalize({"rss.json": orjson.dumps(record)}).by_path("rss.json")
    assert article["title"] == "Velmora ferry vote delayed"


def test_a_null_title_without_fallback_is_quarantined_at_title(normalize):
    result = normalize({"notitle.json": orjson.dumps({**NEWSPLEASE, "title": None})})
    assert result.by_path("notitle.json") == []
    [entry] = result.quarantine
    assert entry["reason"] == "schema_invalid" and [e["path"] for e in entry["errors"]] == ["/title"]


def test_newsplease_dates_with_offsets_and_unknown_fields(normalize):
    records = [
        {**NEWSPLEASE, "date_publish": "2026-03-14 09:30:00+02:00", "rating": 4},
        {
            **NEWSPLEASE,
            "url": "https://velmora-tribune.example/news/z",
            "title": "Zulu time ferry story",
            "date_publish": "2026-03-14T09:30:00Z",
            "language": None,
        },
    ]
    result = normalize({"dates.json": orjson.dumps(records)})
    assert [r["published_at"] for r in result.by_path("dates.json")] == ["2026-03-14T07:30:00Z", "2026-03-14T09:30:00Z"]


def test_addresses_written_as_iris_are_kept_in_uri_form(normalize, pages):
    """Sites in most languages put letters in their addresses; a news-please record, a JSON Lines
    line or a sidecar that carries one is an article with the percent-encoded URI (host in IDNA),
    not a quarantined record."""
    from urllib.parse import unquote, urlsplit

    records = [
        {**NEWSPLEASE, "url": "https://velmora-tribune.example/2026/03/zoë-fährhafen-verzögert"},
        {**NEWSPLEASE, "title": "Second story", "url": "https://вельмора.example/новости/паром?q=порт #1"},
    ]
    sidecar = orjson.dumps({"url": "https://pulsewire.example/quillon-café", "source": "PulseWire"})
    result = normalize(
        {
            "iri.json": orjson.dumps(records),
            "iri.jsonl": orjson.dumps(records[0]) + b"\n",
            "q.txt": pages.aggregator,
            "q.txt.meta.json": sidecar,
        }
    )
    assert result.quarantine == []
    urls = [r["url"] for r in result.by_path("iri.json")]
    assert urls[0] == "https://velmora-tribune.example/2026/03/zo%C3%AB-f%C3%A4hrhafen-verz%C3%B6gert"
    assert urlsplit(urls[1]).hostname == "вельмора.example".encode("idna").decode()
    assert unquote(urlsplit(urls[1]).path) == "/новости/паром"
    assert all(url.isascii() and " " not in url for url in urls)
    assert [r["url"] for r in result.by_path("iri.jsonl")] == urls[:1]
    assert result.by_path("q.txt")[0]["url"] == "https://pulsewire.example/quillon-caf%C3%A9"
    plain = normalize({"plain.json": orjson.dumps(NEWSPLEASE)}).by_path("plain.json")
    assert plain[0]["url"] == NEWSPLEASE["url"]  # an address that is already a URI is left as written


# ---- text pages --------------------------------------------------------------------------------------------------


def test_one_line_related_headers_with_a_middle_dot_are_related_blocks(normalize):
    page = (
        MAIN + "\nRelated Articles\n\n5 hours ago · Cassel Gazette\nFerry operators threaten to leave Velmora\n"
        "The two ferry companies serving Velmora said they might move to Cassel Bay if the terminal is delayed.\n"
        "\nHarbour Post | Mar 12, 2026\nResidents split over harbour plans\n"
        "A survey found that residents of Velmora are evenly divided on the new terminal site.\n"
    )
    records = normalize({"agg.txt": page}).by_path("agg.txt")
    assert [(r["role"], r["title"]) for r in records] == [
        ("main", "Velmora council delays ferry terminal"),
        ("related", "Ferry operators threaten to leave Velmora"),
        ("related", "Residents split over harbour plans"),
    ]
    main, first, second = records
    assert "Related" not in main["text"] and "Cassel" not in main["text"]
    assert (first["source"], first["published_at"]) == ("Cassel Gazette", "2026-03-14T04:30:00Z")
    assert (second["source"], second["published_at"]) == ("Harbour Post", "2026-03-12T00:00:00Z")


def test_a_sentence_with_a_separator_is_not_taken_for_a_header(normalize):
    page = MAIN + "Tickets cost 5 euros | the ferry leaves at noon from the old pier on weekdays.\n"
    [record] = normalize({"plain.txt": page}).by_path("plain.txt")
    assert record["role"] == "standalone" and "Tickets cost 5 euros" in record["text"]


def test_markdown_heading_marker_is_not_part_of_the_title(normalize):
    [record] = normalize({"story.md": "# " + MAIN.replace("\n", "\n\n", 1)}).by_path("story.md")
    assert record["title"] == "Velmora council delays ferry terminal"
    assert record["text"].startswith("The harbour council")


def test_one_long_line_without_a_title_gets_a_reason_that_says_so(normalize):
    line = "The harbour council of Velmora voted on Tuesday to delay the new ferry terminal. " * 10
    result = normalize({"blob.txt": line.strip() + "\n"})
    assert result.records == []
    [entry] = result.quarantine
    assert entry["reason"] == "no_article" and "too long to be a title" in entry["detail"]


def test_a_title_only_file_is_quarantined(normalize):
    result = normalize({"title.txt": "Velmora council delays ferry terminal\n"})
    assert result.records == []
    assert [(q["reason"], q["detail"]) for q in result.quarantine] == [("no_article", "a title line without a body")]


def test_utf8_read_as_cp1252_is_repaired(normalize):
    page = (
        "CafÃ© owners in Velmora welcome delay\n"
        "The cafÃ© owners on the harbour front said the delay was good news for their trade this summer.\n"
    )
    [record] = normalize({"moji.txt": page}).by_path("moji.txt")
    assert record["title"] == "Café owners in Velmora welcome delay" and "The café owners" in record["text"]
    assert "mojibake" in record["provenance"]["repairs"]


def test_a_who_and_when_line_under_the_title_is_the_byline_not_a_related_block(normalize):
    body = MAIN.split("\n", 1)[1]
    title = "Velmora council delays ferry terminal\n"
    result = normalize(
        {
            "by.txt": title + "By Tom Reed · 5 hours ago\n" + body,
            "outlet.txt": title + "Velmora Tribune | March 12, 2026\n" + body,
        }
    )
    [by] = result.by_path("by.txt")
    assert (by["role"], by["title"], by["authors"]) == (
        "standalone",
        "Velmora council delays ferry terminal",
        ["Tom Reed"],
    )
    assert by["published_at"] == "2026-03-14T04:30:00Z" and "Tom Reed" not in by["text"]
    [outlet] = result.by_path("outlet.txt")
    assert (outlet["role"], outlet["source"], outlet["published_at"]) == (
        "standalone",
        "Velmora Tribune",
        "2026-03-12T00:00:00Z",
    )
    assert "Velmora Tribune" not in outlet["text"]


def test_an_em_dash_one_line_header_starts_a_related_block(normalize):
    page = (
        MAIN + "Related\nCassel Gazette — 3h ago\nFerry operators threaten to leave Velmora\n"
        "The two ferry companies serving Velmora said they might move to Cassel Bay soon.\n"
    )
    records = normalize({"dash.txt": page}).by_path("dash.txt")
    assert [(r["role"], r["source"]) for r in records] == [("main", None), ("related", "Cassel Gazette")]
    assert records[1]["published_at"] == "2026-03-14T06:30:00Z"


def test_read_more_and_share_lines_inside_the_article_element_stay_out_of_text(normalize):
    inside = (
        "<div class='share'>Share this article</div>"
        + BODY
        + "<p>Opponents argued that the ferry operators had already waited three years for a decision.</p>"
        + "<p class='read-more'>Read more: <a href='/x'>Ferry operators threaten to leave</a></p>"
    )
    html = (
        "<html lang='en'><head><meta charset='utf-8'><title>Velmora delays ferry terminal</title></head><body>"
        f"<article><h1>Velmora delays ferry terminal</h1>{inside}</article></body></html>"
    )
    [record] = normalize({"chrome.html": html}).by_path("chrome.html")
    assert record["text"].endswith("waited three years for a decision.")
    assert "Read more" not in record["text"] and "Share" not in record["text"]


def test_html_markup_in_newsplease_maintext_becomes_plain_paragraphs(normalize):
    record = {
        **NEWSPLEASE,
        "maintext": "<p>The harbour council of Velmora voted to delay the <b>new</b> ferry "
        "terminal.</p><p>Councillor Ana Brisk said the delay would cost &pound;2m "
        "at most.<br>Opponents disagreed.</p>",
    }
    [article] = normalize({"markup.json": orjson.dumps(record)}).by_path("markup.json")
    assert article["text"] == (
        "The harbour council of Velmora voted to delay the new ferry terminal.\n\n"
        "Councillor Ana Brisk said the delay would cost £2m at most.\n\nOpponents disagreed."
    )


def test_a_maintext_with_a_less_than_sign_is_not_treated_as_markup(normalize):
    text = "Turnout was < 40% in Velmora, the council said on Tuesday after the vote on the ferry terminal."
    [article] = normalize({"lt.json": orjson.dumps({**NEWSPLEASE, "maintext": text})}).by_path("lt.json")
    assert article["text"] == text


def test_an_epoch_date_publish_is_kept_not_dropped(normalize):
    records = [
        {**NEWSPLEASE, "date_publish": 1773480600},
        {
            **NEWSPLEASE,
            "url": "https://velmora-tribune.example/news/ms",
            "title": "Millisecond ferry story",
            "date_publish": 1773480600000,
        },
    ]
    result = normalize({"epoch.json": orjson.dumps(records)})
    assert [r["published_at"] for r in result.by_path("epoch.json")] == ["2026-03-14T09:30:00Z"] * 2


def test_outlet_over_time_blocks_after_a_related_heading_are_related_articles(normalize):
    page = (
        MAIN + "\nRelated:\n\nCassel Gazette\n5 hours ago\nFerry operators threaten to leave Velmora\n"
        "The two ferry companies serving Velmora said they might move to Cassel Bay soon.\n\n"
        "Harbour Post\n2 days ago\nResidents split over harbour plans\n"
        "A survey found residents of Velmora evenly divided on the terminal site.\n"
    )
    records = normalize({"two.txt": page}).by_path("two.txt")
    assert [(r["role"], r["source"], r["published_at"]) for r in records] == [
        ("main", None, None),
        ("related", "Cassel Gazette", "2026-03-14T04:30:00Z"),
        ("related", "Harbour Post", "2026-03-12T09:30:00Z"),
    ]
    assert records[0]["text"].endswith("more time to comment.")


def test_a_name_over_a_time_under_the_title_or_after_a_sentence_is_not_a_block(normalize):
    body = MAIN.split("\n", 1)[1]
    page = (
        "Velmora council delays ferry terminal\nAna Brisk\n5 hours ago\n"
        + body
        + "The vote was close.\nUpdate\n14:05\nThe mayor said she would sign the delay order on Friday morning.\n"
    )
    [record] = normalize({"name.txt": page}).by_path("name.txt")
    assert record["role"] == "standalone"
    assert (record["authors"], record["published_at"]) == (["Ana Brisk"], "2026-03-14T04:30:00Z")
    assert record["text"].startswith("The harbour council")
    assert record["text"].endswith("sign the delay order on Friday morning.")
