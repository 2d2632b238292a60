"""Decoding and text clean-up (encodings, repairs, NFC, non-BMP) and the truncation heuristic."""

from __future__ import annotations

import unicodedata

import pytest

from newsstance.normalize.decode import decode_bytes
from newsstance.normalize.truncation import is_cut, is_truncated, splice_at

TITLE = "Harbour café reopens"
BODY = "The “Blue Anchor” café – closed since the storm – reopened on Friday, its owner said."


def test_utf8_bom_is_stripped_and_recorded(normalize):
    result = normalize({"bom.txt": b"\xef\xbb\xbf" + f"{TITLE}\n{BODY}\n".encode()})
    (record,) = result.records
    assert record["title"] == TITLE and "\ufeff" not in record["title"] + record["text"]
    assert record["provenance"]["encoding"] == "utf-8" and record["provenance"]["repairs"] == ["bom"]


def test_cp1252_smart_quotes_decode_right(normalize):
    result = normalize({"old.txt": f"{TITLE}\n{BODY}\n".encode("cp1252")})
    (record,) = result.records
    assert record["text"] == BODY  # “ ” – é, not Ä/ì or C1 controls
    assert record["provenance"]["encoding"] == "cp1252" and "cp1252" in record["provenance"]["repairs"]


def test_crlf_becomes_lf(normalize):
    result = normalize({"win.txt": f"{TITLE}\r\n\r\n{BODY}\r\n\r\nSecond paragraph here.\r\n".encode()})
    (record,) = result.records
    assert "\r" not in record["text"] and record["text"] == f"{BODY}\n\nSecond paragraph here."
    assert record["provenance"]["repairs"] == ["crlf"]


def test_nfd_input_is_normalised_to_nfc(normalize):
    decomposed = unicodedata.normalize("NFD", f"{TITLE}\nRenée Åberg met José in Malmö.\n")
    assert decomposed != unicodedata.normalize("NFC", decomposed)
    result = normalize({"nfd.txt": decomposed.encode()})
    (record,) = result.records
    assert record["title"] == TITLE and record["text"] == "Renée Åberg met José in Malmö."
    assert unicodedata.is_normalized("NFC", record["text"]) and "nfc" in record["provenance"]["repairs"]


def test_emoji_and_other_non_bmp_characters_survive(normalize):
    text = "Crews 👩🏽‍🚒 cleared the 𝔸-road by noon 🙂, and the 🏔️ pass reopened."
    result = normalize({"emoji.txt": f"Snow crews praised\n{text}\n"})
    (record,) = result.records
    assert record["text"] == text
    assert result.out.joinpath("articles-00000.jsonl").read_text(encoding="utf-8").count("👩🏽‍🚒") == 1


def test_mojibake_is_repaired():
    original = "The council’s “final” vote – café"
    # UTF-8 bytes read as cp1252 (undefined bytes passed through as C1 characters), saved again as UTF-8
    garbled = "".join(
        chr(b) if b in (0x81, 0x8D, 0x8F, 0x90, 0x9D) else bytes([b]).decode("cp1252") for b in original.encode()
    )
    assert garbled != original
    decoded = decode_bytes(garbled.encode())
    assert decoded.text == original
    assert "mojibake" in decoded.repairs


def test_latin1_only_bytes_are_not_mistaken_for_utf8():
    decoded = decode_bytes("Malmö and Åre: naïve résumé.".encode("latin-1"))
    assert decoded.text == "Malmö and Åre: naïve résumé."


# ---- truncation --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "The council will vote on the plan next week, but members of the union",
        "The council will vote on the plan next week, but members of the uni",
        "The harbour board said the pier would open next spring and that waiting times…",
        "The harbour board said the pier would open next spring and that waiting times...",
    ],
)
def test_bodies_cut_at_the_end_are_truncated(body):
    assert is_cut([body]) and is_truncated([body])


@pytest.mark.parametrize(
    "body",
    [
        "The council will vote on the plan next week.",
        "'We will build it,' she said.",
        "He asked whether the pier would be ready in time?",
        "The board said the pier would be 'ready by spring.'",
        "It was, she said, “the best day of the year.”",
    ],
)
def test_complete_bodies_are_not_cut(body):
    assert not is_cut([body])


def test_short_trailer_after_a_finished_paragraph_is_not_a_cut():
    assert not is_cut(["The council will vote on the plan next week.", "Reporting by Ana Lind"])
    assert is_cut(
        [
            "The council will vote on the plan next week.",
            "Members of the fishing union said they would protest outside the town hall if the",
        ]
    )


@pytest.mark.parametrize(
    ("body", "splice"),
    [
        # adjective + title + name + verb
        (
            "Graft is among the five biggest national Mayor Oskar Lind has on several occasions said the port will close.",
            "Mayor",
        ),
        # preposition + article + title + name + verb, inside a clause that already has a verb
        (
            "Steel accounts for nearly a quarter of the Foreign Minister Ana Voss told parliament the talks went well.",
            "Foreign",
        ),
        # a sentence opener after a lower-case word
        ("The board met on Tuesday to discuss the budget for the He said the plan was final.", "He"),
        ("Residents asked for a new crossing near the school and However the council refused.", "However"),
        ("The fund would pay for part of the work in exchange for The dam would also help the town.", "The"),
        # an article after an adjective or modal
        ("The harbour authority said it would The new pier opens in May.", "The"),
        (
            "A modal before a name: the mayor said the town would Councillor Ida Ness told reporters later.",
            "Councillor",
        ),
    ],
)
def test_spliced_sentences_are_found(body, splice):
    at = splice_at(body)
    assert at is not None and body[at:].startswith(splice)
    assert is_truncated([body])


@pytest.mark.parametrize(
    "body",
    [
        "Opposition lawmaker and former prime minister Ida Ness told The Harbour Times this week that talks had failed.",
        "Envoy Tomas Brek met Chinese official Wang Liu on Friday, and aide Kai Orr later said the talks went well.",
        "The meeting was held with Deputy Prime Minister Lena Hald, who focused on trade.",
        "Indian Prime Minister Ravi Menon has thanked the crews, while US President Dana Cole noted progress.",
        "The new Prime Minister Ilse Marrow has said the levy will rise, and the former President Ole Dam agreed.",
        "A spokesman for the Foreign Minister Ana Voss said the minister was travelling.",
        "Sources close to the Prime Minister Ilse Marrow said she would speak on Monday.",
        "The historic Paris Agreement was signed in 2015, and the controversial Tidewater Dam has divided the valley.",
        "Putin said Moscow values the role of Beijing, and officials told Reuters the visit went ahead.",
        "The latest Harbour Times poll shows the Greenway Party ahead, the largest German carmaker said on Monday.",
        "Vitamin D levels fell, the study of His Majesty's Navy found, as the film It Follows opened.",
    ],
)
def test_ordinary_news_prose_is_not_flagged_as_spliced(body):
    assert splice_at(body) is None
    assert not is_truncated([body])
