"""The encoding rule: valid UTF-8 text is never turned into mojibake by a few bad bytes; a legacy
encoding wins only when the whole file decodes better that way (decode.py states the measure)."""

from __future__ import annotations

from newsstance.normalize.decode import decode_bytes

CAFE = "Café owners… along the Velmora quay say the new tram timetable helped them."


def test_utf8_with_one_stray_byte_keeps_its_text():
    data = CAFE.encode() + b" \xff More later."
    decoded = decode_bytes(data)
    assert decoded.encoding == "utf-8"
    assert decoded.text.startswith("Café owners…")
    assert "Ã" not in decoded.text and decoded.text.count("\ufffd") == 1
    assert decoded.invalid_bytes == 1 and "invalid_utf8" in decoded.repairs


def test_a_few_bad_bytes_in_a_long_ascii_file_are_replaced_not_guessed():
    body = ("The harbour board of Penhallow met on Tuesday to vote on the ferry plan. " * 40).encode()
    data = body + b"\x81" + body  # 0x81 is undefined in cp1252: only UTF-8 with replacement reads this
    decoded = decode_bytes(data)
    assert decoded.encoding == "utf-8" and decoded.invalid_bytes == 1
    assert decoded.text.count("\ufffd") == 1


def test_cp1252_file_still_decodes_as_cp1252():
    text = "Malmö and Åre: naïve résumé, “quoted” – done."
    decoded = decode_bytes(text.encode("cp1252"))
    assert decoded.encoding == "cp1252" and decoded.text == text and decoded.invalid_bytes == 0


def test_more_bad_bytes_than_good_utf8_picks_the_legacy_decoding():
    # one UTF-8 é among many cp1252 letters: cp1252 gets one spot wrong ("Ã©"), UTF-8 gets four
    data = "Brønsted ".encode("cp1252") + "é".encode() + " Malmö Århus Åre".encode("cp1252")
    decoded = decode_bytes(data)
    assert decoded.encoding == "cp1252"
    assert decoded.text.startswith("Brønsted")


def test_stray_byte_reaches_provenance(normalize):
    page = f"Tram timetable praised\n{CAFE}\nThe council will review it again in spring.\n".encode()
    result = normalize({"cafe.txt": page.replace(b"spring", b"spr\xffing")})
    [record] = result.by_path("cafe.txt")
    assert "Café owners…" in record["text"] and "Ã" not in record["text"]
    assert record["provenance"]["encoding"] == "utf-8"
    assert record["provenance"]["invalid_bytes"] == 1
