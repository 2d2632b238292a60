"""Marking a duplicate in place: the same bytes as parsing, setting and re-serialising the record."""

from __future__ import annotations

import orjson
import pytest

from newsstance.normalize.commit import _mark_duplicate
from newsstance.records import validator


@pytest.fixture
def unmarked_lines(normalize, pages) -> list[bytes]:
    """Record lines as the extract stage writes them (both fields null), from the fixture pages."""
    newsplease = pages.newsplease
    result = normalize(
        {
            "agg.txt": pages.aggregator,
            "page.html": pages.html,
            "np.json": orjson.dumps(newsplease),
            "np2.json": orjson.dumps({**newsplease, "url": "https://velmora-tribune.example/x", "title": "Other"}),
            "plain.txt": pages.plain,
        }
    )
    lines = []
    for record in result.records:
        record["duplicate_of"] = None
        record["provenance"]["near_duplicate_jaccard"] = None
        lines.append(orjson.dumps(record) + b"\n")
    tricky = orjson.loads(lines[0])
    tricky["text"] = 'A quote: "duplicate_of":null and "near_duplicate_jaccard":null, in the text.'
    tricky["title"] = '\\"duplicate_of\\":null'
    lines.append(orjson.dumps(tricky) + b"\n")
    return lines


def _by_parsing(line: bytes, target: str, jaccard: float) -> bytes:
    record = orjson.loads(line)
    record["duplicate_of"] = target
    record["provenance"]["near_duplicate_jaccard"] = round(jaccard, 4)
    return orjson.dumps(record) + b"\n"


@pytest.mark.parametrize("jaccard", [1.0, 0.8, 0.81234567, 0.33589999, 0.0])
def test_marking_in_place_equals_parsing_and_reserialising(jaccard: float, unmarked_lines: list[bytes]) -> None:
    article_validator = validator("article.schema.json")
    lines = unmarked_lines
    assert len(lines) >= 6
    target = orjson.loads(lines[1])["id"]
    for line in lines:
        marked = _mark_duplicate(line, target, jaccard, article_validator)
        assert marked == _by_parsing(line, target, jaccard)
        record = orjson.loads(marked)
        assert record["duplicate_of"] == target
        assert record["provenance"]["near_duplicate_jaccard"] == round(jaccard, 4)
        assert not article_validator.errors(record)


def test_a_record_already_carrying_a_jaccard_is_marked_by_parsing(unmarked_lines: list[bytes]) -> None:
    """Only a null is replaced in place; a set value (or a key that occurs twice) takes the slow path."""
    article_validator = validator("article.schema.json")
    record = orjson.loads(unmarked_lines[0])
    record["provenance"]["near_duplicate_jaccard"] = 0.5
    line = orjson.dumps(record) + b"\n"
    marked = orjson.loads(_mark_duplicate(line, record["id"], 0.9, article_validator))
    assert marked["provenance"]["near_duplicate_jaccard"] == 0.9
    assert marked["duplicate_of"] == record["id"]


@pytest.mark.parametrize("start,count", [(0, 6), (0, 1), (2, 3), (5, 1), (1, 5)])
def test_an_entrys_lines_are_marked_piecewise_as_line_by_line(unmarked_lines: list[bytes], start, count) -> None:
    """A run of an entry's lines (a shard may take only some) with the duplicates among them
    marked: the pieces join to the lines marked one by one, the unmarked lines untouched."""
    import numpy as np

    from newsstance.normalize import storage
    from newsstance.normalize.commit import _line_span, _marked

    article_validator = validator("article.schema.json")
    data = b"".join(unmarked_lines[:6])
    first = 10  # the entry's first record number in the run
    canonical = np.arange(40)
    canonical[[11, 12, 15]] = [30, 31, 10]  # records 1, 2 and 5 of the entry are duplicates
    jaccard = np.linspace(0.5, 1.0, 40)
    ids = np.arange(1000, 1040, dtype=np.uint64)
    low, high = _line_span(data, start, count)
    assert data[low:high] == b"".join(unmarked_lines[start : start + count])
    pieces = _marked(memoryview(data)[low:high], first + start, count, canonical, jaccard, ids, article_validator)
    expected = []
    for number, line in enumerate(unmarked_lines[start : start + count], start=first + start):
        if canonical[number] != number:
            line = _by_parsing(line, storage.record_id(int(ids[canonical[number]])), float(jaccard[number]))
        expected.append(line)
    assert b"".join(bytes(piece) for piece in pieces) == b"".join(expected)
