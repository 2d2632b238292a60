"""Raw bytes -> clean Unicode text, recording every repair.

Encoding rule (stated so it can be checked): strict UTF-8 (BOM stripped) first. When that
fails, two decodings compete over the whole file and the one that gets fewer spots wrong wins:

- UTF-8 with replacement: its cost is the number of invalid byte sequences (each becomes
  U+FFFD and is counted in `Decoded.invalid_bytes` / `provenance.invalid_bytes`);
- the legacy encoding (the charset the page declares, else cp1252): its cost is the number of
  UTF-8-read-as-cp1252 mojibake patterns it produces ("Ã©", "â€™") plus control characters;
  a legacy codec that cannot decode the bytes at all is out.

Ties go to UTF-8. So "Café owners…" in UTF-8 with one stray 0xFF byte stays "Café owners…"
(UTF-8 cost 1; cp1252 cost 2: "Ã©" and "â€¦"), while a cp1252 file, whose every accented
letter is an invalid UTF-8 sequence and which has no mojibake, decodes as cp1252. UTF-8 with
replacement is accepted only when its invalid sequences are at most its valid multi-byte ones
or at most 1% of the bytes (else the bytes are not UTF-8 with a few slips). When neither
decoding qualifies, charset-normalizer decides; a decoding is accepted only when the result
looks like text.

Why cp1252 and not latin-1: bytes 0x80-0x9F are printable there (smart quotes, dashes); in
latin-1 they would be C1 controls. Browsers read "iso-8859-1" labels as windows-1252 too.
"""

from __future__ import annotations

import codecs
import re
import unicodedata
from dataclasses import dataclass

from newsstance.normalize.model import Reason

_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "PNG image"),
    (b"GIF87a", "GIF image"),
    (b"GIF89a", "GIF image"),
    (b"\xff\xd8\xff", "JPEG image"),
    (b"%PDF-", "PDF document"),
    (b"PK\x03\x04", "ZIP archive"),
    (b"\x1f\x8b", "gzip archive"),
    (b"BZh", "bzip2 archive"),
    (b"7z\xbc\xaf\x27\x1c", "7z archive"),
    (b"\x7fELF", "ELF executable"),
    (b"RIFF", "RIFF media"),
    (b"OggS", "Ogg media"),
    (b"ID3", "MP3 audio"),
    (b"\xd0\xcf\x11\xe0", "OLE document"),
)
_UTF16_BOMS = ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be"))
_UTF8_BOM = b"\xef\xbb\xbf"
_SNIFF_BYTES = 8192
MAX_CHAOS = 0.1

# UTF-8 read as cp1252: a lead char (U+00C2-U+00F4) followed by 1-3 chars standing for bytes 0x80-0xBF.
_CONT = re.escape(bytes(range(0x80, 0xC0)).decode("cp1252", errors="ignore") + "\x81\x8d\x8f\x90\x9d")
_MOJIBAKE = re.compile(f"[\u00c2-\u00df][{_CONT}]|[\u00e0-\u00ef][{_CONT}]{{2}}|[\u00f0-\u00f4][{_CONT}]{{3}}")
_UNDEFINED_CP1252 = {chr(b): bytes([b]) for b in (0x81, 0x8D, 0x8F, 0x90, 0x9D)}
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_LINE_SEPARATORS = re.compile("[\u2028\u2029]")
# A charset the page declares itself: <meta charset=...>, http-equiv Content-Type, or an XML declaration.
_DECLARED_CHARSET = re.compile(
    rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]{2,40})"""
    rb"""|<\?xml[^>]{0,100}?encoding\s*=\s*["']([A-Za-z0-9_.:-]{2,40})""",
    re.IGNORECASE,
)
# Browsers (WHATWG Encoding) read these labels as windows-1252; so do we.
_CP1252_LABELS = frozenset(
    {
        "iso-8859-1",
        "iso8859-1",
        "latin1",
        "latin-1",
        "l1",
        "us-ascii",
        "ascii",
        "cp819",
        "ibm819",
        "iso_8859-1",
        "windows-1252",
        "cp1252",
        "x-cp1252",
    }
)


class DecodeError(Exception):
    """The bytes are not usable text; carries a quarantine reason."""

    def __init__(self, reason: Reason, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str
    repairs: tuple[str, ...]
    invalid_bytes: int = 0  # invalid UTF-8 sequences replaced by U+FFFD


def sniff_binary(data: bytes) -> str | None:
    """What binary thing this is, or None for text-like bytes."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            return name
    head = data[:_SNIFF_BYTES]
    if any(head.startswith(bom) for bom, _ in _UTF16_BOMS):
        return None
    if b"\x00" in head:
        return "NUL bytes"
    return None


def looks_like_text(text: str) -> bool:
    """Mostly letters and ordinary punctuation, no control characters."""
    sample = text[:20000]
    if _CONTROL.search(sample.replace("\t", " ").replace("\n", " ").replace("\r", " ").replace("\f", " ")):
        return False
    visible = [ch for ch in sample if not ch.isspace()]
    if not visible:
        return True
    letters = sum(1 for ch in visible if ch.isalpha())
    symbols = sum(1 for ch in visible if unicodedata.category(ch) in ("So", "Sk", "Co", "Cn"))
    return letters / len(visible) >= 0.5 and symbols / len(visible) < 0.1


def declared_charset(data: bytes) -> str | None:
    """The Python codec name of the charset the document declares in its head (None when absent or unknown):
    a page in windows-1251 or ISO-8859-2 also "decodes" as cp1252, into the wrong letters."""
    match = _DECLARED_CHARSET.search(data[:_SNIFF_BYTES])
    if not match:
        return None
    return codec_name((match.group(1) or match.group(2)).decode("ascii"))


def codec_name(label: str) -> str | None:
    """Python's codec name for a charset label (latin-1 labels read as cp1252, as browsers do)."""
    label = label.strip().lower()
    if label in _CP1252_LABELS:
        return "cp1252"
    try:
        return codecs.lookup(label).name
    except LookupError:
        return None


MAX_INVALID_FRACTION = 0.01
_ASCII_BYTES = bytes(range(0x80))
_REPLACEMENT_UTF8 = "\ufffd".encode()


@dataclass(frozen=True, slots=True)
class _Candidate:
    text: str
    encoding: str
    cost: int
    invalid: int = 0


def _utf8_with_replacement(data: bytes) -> tuple[_Candidate, bool]:
    """UTF-8 with invalid sequences replaced, its cost, and whether it qualifies (few slips)."""
    text = data.decode("utf-8", errors="replace")
    invalid = text.count("\ufffd") - data.count(_REPLACEMENT_UTF8)
    ascii_bytes = len(data) - len(data.translate(None, _ASCII_BYTES))
    valid_multibyte = len(text) - ascii_bytes - invalid
    few = invalid <= valid_multibyte or invalid <= MAX_INVALID_FRACTION * len(data)
    return _Candidate(text, "utf-8", invalid, invalid), few


def _legacy(data: bytes, encoding: str) -> _Candidate | None:
    """A strict legacy decoding and its cost (mojibake patterns + control characters), or None."""
    try:
        text = data.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None
    cost = sum(1 for _ in _MOJIBAKE.finditer(text)) + sum(
        1 for m in _CONTROL.finditer(text) if m.group(0) not in "\t\n\r\x0b\x0c"
    )
    return _Candidate(text, encoding, cost)


def _decode_raw(data: bytes, transport: str | None) -> tuple[str, str, list[str], int]:
    for bom, encoding in _UTF16_BOMS:
        if data.startswith(bom):
            try:
                return data[len(bom) :].decode(encoding), encoding, ["bom"], 0
            except UnicodeDecodeError as exc:
                raise DecodeError(Reason.UNDECODABLE, f"invalid {encoding} at byte {exc.start}") from None
    repairs: list[str] = []
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
        repairs.append("bom")
    try:
        return data.decode("utf-8"), "utf-8", repairs, 0
    except UnicodeDecodeError as exc:
        utf8_error = f"not UTF-8 (byte 0x{data[exc.start]:02x} at {exc.start})"
    utf8, utf8_qualifies = _utf8_with_replacement(data)
    declared = (codec_name(transport) if transport else None) or declared_charset(data)
    legacy_names = [declared] if declared and declared != "utf-8" else []
    legacy_names += [] if "cp1252" in legacy_names else ["cp1252"]
    for name in legacy_names:
        legacy = _legacy(data, name)
        if legacy is None or not looks_like_text(legacy.text):
            continue
        if not utf8_qualifies or legacy.cost < utf8.cost:
            return legacy.text, legacy.encoding, [*repairs, legacy.encoding], 0
        break  # the first legacy candidate that decodes is the one compared
    if utf8_qualifies and looks_like_text(utf8.text.replace("\ufffd", " ")):
        return utf8.text, "utf-8", [*repairs, "invalid_utf8"], utf8.invalid
    del utf8
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    # Any byte soup "decodes" in some 8-bit code page: trust the detector only when the result
    # is nearly free of odd character mixes (chaos) and reads as some language (coherence).
    if best is not None and best.chaos <= MAX_CHAOS and best.coherence > 0:
        text = str(best)
        if looks_like_text(text):
            return text, best.encoding, [*repairs, best.encoding], 0
    raise DecodeError(Reason.UNDECODABLE, f"{utf8_error}; no cp1252 or detected encoding gives readable text")


def fix_mojibake(text: str) -> tuple[str, bool]:
    """Undo UTF-8-read-as-cp1252 runs ("â€™" -> "’") where each run round-trips."""

    def repair(match: re.Match[str]) -> str:
        chunk = match.group(0)
        # cp1252 leaves 0x81 0x8D 0x8F 0x90 0x9D undefined; decoders pass them through as U+0081 etc.
        raw = b"".join(_UNDEFINED_CP1252.get(ch) or ch.encode("cp1252") for ch in chunk)
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return chunk

    fixed = _MOJIBAKE.sub(repair, text)
    return fixed, fixed != text


def decode_bytes(data: bytes, transport_charset: str | None = None) -> Decoded:
    """Decode and clean: BOM, encoding, CRLF, mojibake, control chars, NFC (each recorded in `repairs`).

    `transport_charset` is what the transport declared (an HTTP Content-Type charset): it takes
    the place of the page's own declaration, as in browsers; valid UTF-8 still wins."""
    binary = sniff_binary(data)
    if binary:
        raise DecodeError(Reason.BINARY, f"looks like {binary}, not text")
    text, encoding, repairs, invalid = _decode_raw(data, transport_charset)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        repairs.append("crlf")
    ascii_only = text.isascii()  # fast path: most English pages need no Unicode repair
    if not ascii_only and _LINE_SEPARATORS.search(text):
        text = _LINE_SEPARATORS.sub("\n", text)
        repairs.append("line_separators")
    if not ascii_only and encoding == "utf-8" and _MOJIBAKE.search(text):
        text, changed = fix_mojibake(text)
        if changed:
            repairs.append("mojibake")
    if _CONTROL.search(text):
        text = _CONTROL.sub(lambda m: " " if m.group(0) in "\x0b\x0c" else "", text)
        repairs.append("control_chars")
    if not ascii_only and not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
        repairs.append("nfc")
    return Decoded(text, encoding, tuple(repairs), invalid)


def clean_inline(value: str) -> str:
    """One line or title: NFC, whitespace runs collapsed, trimmed (for strings from JSON/HTML)."""
    if not unicodedata.is_normalized("NFC", value):
        value = unicodedata.normalize("NFC", value)
    return " ".join(value.split())


_SPACES = re.compile(r"[ \t]+")


def clean_paragraph(value: str) -> str:
    """A paragraph: spaces and tabs collapsed (other whitespace such as NBSP kept), trimmed."""
    if "  " in value or "\t" in value:
        value = _SPACES.sub(" ", value)
    return value.strip()


def join_paragraphs(paragraphs: list[str]) -> str:
    return "\n\n".join(p for p in paragraphs if p)


def split_paragraphs(text: str) -> list[str]:
    """Paragraphs of text that uses one line per paragraph (news-please maintext, trafilatura output)."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _CONTROL.sub("", text)
    return [p for p in (clean_paragraph(line) for line in text.split("\n")) if p]
