"""Bounded memory for big inputs: no step holds more than a few copies of a file's text.

Python-level allocations are measured with tracemalloc (numpy's arrays included); the figures
for whole processes (peak RSS vs file size) are in benchmarks/sources_bench.py."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from newsstance.normalize import dedup

WORDS = ["Velmora", "quay", "ferry", "Straße", "café", "naïve", "«pier»", "—", "x1", "ﬁsh", "ÅRE", "tide"]


def _text(rng: random.Random, words: int) -> str:
    separators = [" ", "  ", ", ", "\n", ". ", " — ", "\n\n"]
    return "".join(rng.choice(WORDS) + rng.choice(separators) for _ in range(words))


@pytest.mark.parametrize("piece", [1, 4, 9, 64])
def test_signature_in_pieces_equals_the_whole_text(piece):
    rng = random.Random(piece)
    for words in [0, 1, 3, 4, 5, 6, 40, 300]:
        text = _text(rng, words)
        blocks = list(dedup._shingle_blocks(text, dedup.NGRAM, piece))
        assert np.array_equal(np.concatenate(blocks), dedup.shingle_hashes(text)), (piece, text)


def _traced_peak(function):
    tracemalloc.start()
    try:
        result = function()
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_signature_memory_is_bounded_by_the_piece_size(monkeypatch):
    text = _text(random.Random(1), 300_000)  # ~2 MB
    dedup.signature(text[:100])  # warm caches outside the measurements
    monkeypatch.setattr(dedup, "_TEXT_PIECE", 1 << 30)
    whole, whole_peak = _traced_peak(lambda: dedup.signature(text))
    monkeypatch.setattr(dedup, "_TEXT_PIECE", 8 * 1024)
    pieces, pieces_peak = _traced_peak(lambda: dedup.signature(text))
    assert np.array_equal(whole, pieces)
    assert whole_peak > 10 * len(text)  # ~30 bytes of arrays per character at once
    assert pieces_peak * 5 < whole_peak


_CHILD = """
import resource, sys
from newsstance.normalize import dedup
from newsstance.normalize.runner import run_normalize
dedup._TEXT_PIECE = 8 * 1024  # the signature's fixed working set, small next to the file
run_normalize([sys.argv[1]], sys.argv[2], crawl_time="2026-03-14T09:30:00Z", max_bytes=1 << 30)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024)
"""


def _peak_rss(folder: Path, out: Path) -> int:
    env = {**os.environ, "PYTHONPATH": str(Path(dedup.__file__).parents[2])}
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(folder), str(out)], env=env, capture_output=True, text=True, check=True
    )
    return int(done.stdout.split()[-1])


def test_a_big_text_file_is_normalised_with_a_few_copies_at_most(tmp_path):
    """Peak RSS of a whole run (own process) over an 8 MB one-article text file, minus a tiny run."""
    rng = random.Random(5)
    big = tmp_path / "big"
    big.mkdir()
    with (big / "log.txt").open("w", encoding="utf-8") as handle:
        handle.write("Velmora harbour log\n\n")
        for _ in range(20_000):
            handle.write(" ".join(rng.choice(WORDS[:3] + WORDS[-1:]) for _ in range(60)) + ".\n\n")
    size = (big / "log.txt").stat().st_size
    small = tmp_path / "small"
    small.mkdir()
    (small / "note.txt").write_text("Tide note\n\nThe quay opens at six today.\n", encoding="utf-8")
    baseline = _peak_rss(small, tmp_path / "out-small")
    peak = _peak_rss(big, tmp_path / "out-big")
    assert (peak - baseline) < 5 * size, f"peak {(peak - baseline) / size:.1f}x the file"


def test_a_file_with_many_records_is_written_in_batches_and_read_back_whole(normalize, pages):
    """More records than one write batch: the file's index entry spans consecutive batches."""
    import orjson

    from newsstance.normalize.engine import _FileResults

    count = _FileResults.BATCH * 2 + 17
    lines = [
        orjson.dumps({**pages.newsplease, "url": f"https://penhallowdaily.example/n/{i}", "title": f"Pier note {i}"})
        for i in range(count)
    ]
    result = normalize({"a.jsonl": b"\n".join(lines) + b"\n", "b.txt": pages.plain})
    indexes = [r["provenance"]["record_index"] for r in result.records if r["provenance"]["path"] == "a.jsonl"]
    assert indexes == list(range(count))
    assert [r["provenance"]["path"] for r in result.records][-1] == "b.txt"
    again = normalize({"a.jsonl": b"\n".join(lines) + b"\n", "b.txt": pages.plain})
    assert again.summary.up_to_date and again.records == result.records


def test_part_arrays_take_copies_rows_and_keeps_the_resident_set_small(tmp_path) -> None:
    """`take` gives the rows indexing would give (the same after the pages were dropped), and a
    pass over many parts does not leave their pages resident."""
    import numpy as np

    from newsstance.normalize import storage

    rng = np.random.default_rng(0)
    parts = {}
    for number in range(40):
        array = rng.integers(0, 2**32, size=(2048, 128), dtype=np.uint32)  # 1 MiB each
        np.save(tmp_path / f"p{number}.sig.npy", array)
        parts[f"p{number}"] = array
    arrays = storage.PartArrays(tmp_path)  # every map stays open

    def resident_kib() -> int:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("RssFile:"):
                return int(line.split()[1])
        return 0

    before = resident_kib()
    for _ in range(2):
        for name, array in parts.items():
            index = rng.integers(0, len(array), size=700)
            assert np.array_equal(arrays.take(name, "sig", index), array[index])
            assert np.array_equal(arrays.take(name, "sig", slice(5, 9)), array[5:9])
            columns = rng.integers(0, array.shape[1], size=50)
            assert np.array_equal(arrays.take(name, "sig", (3, columns)), array[3, columns])
    # 40 MiB of parts were read almost entirely; far less stays resident
    assert resident_kib() - before < 16 * 1024
