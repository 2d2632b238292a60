"""The commit's reads and writes batch system calls (segments served from a read-ahead chunk,
blocks gathered into one writev); what they read and write must be exactly the bytes asked for."""

from __future__ import annotations

import hashlib
import os
import random

import pytest

from newsstance.normalize import storage


def _parts(folder, rng):
    """Two part files of random segments; returns (entries in write order, bytes per file)."""
    contents, entries = {}, []
    for part in ("pa", "pb"):
        data, offset = bytearray(), 0
        for number in range(60):
            segment = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 30, 200, 900])))
            entries.append({"part": part, "rec": [offset, len(segment)], "n": number})
            data += segment
            offset += len(segment)
        (folder / f"{part}.rec.jsonl").write_bytes(bytes(data))
        contents[part] = bytes(data)
    return entries, contents


@pytest.mark.parametrize("order", ["interleaved", "shuffled"])
def test_segments_read_ahead_are_the_bytes_asked_for(tmp_path, monkeypatch, order):
    monkeypatch.setattr(storage.SegmentReader, "READ_AHEAD", 1000)  # chunks smaller than some segments
    monkeypatch.setattr(storage.SegmentReader, "CHUNKS", 1)  # two parts, one chunk kept: re-reads
    rng = random.Random(3)
    entries, contents = _parts(tmp_path, rng)
    if order == "interleaved":  # as a re-run merges kept and new parts in path order
        entries = sorted(entries, key=lambda e: (e["n"], e["part"]))
    else:
        rng.shuffle(entries)
    with storage.SegmentReader(tmp_path) as reader:
        for entry in entries:
            offset, length = entry["rec"]
            assert reader.read(entry, "rec") == contents[entry["part"]][offset : offset + length]


def test_a_part_shorter_than_its_index_is_an_error(tmp_path):
    (tmp_path / "pa.rec.jsonl").write_bytes(b"0123456789")
    with storage.SegmentReader(tmp_path) as reader, pytest.raises(OSError, match="shorter"):
        reader.read({"part": "pa", "rec": [5, 20]}, "rec")


def test_gathered_writes_keep_every_byte_and_the_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(storage.HashingWriter, "GATHER", 5000)
    real_writev = os.writev

    def short_writev(fd, buffers):  # the kernel may write less than asked: the rest must follow
        return real_writev(fd, [bytes(b"".join(buffers)[:3000])])

    monkeypatch.setattr(os, "writev", short_writev)
    rng = random.Random(5)
    blocks = [rng.randbytes(rng.choice([1, 40, 700, 4999, 12000])) for _ in range(200)]
    writer = storage.HashingWriter(tmp_path / "shard.jsonl")
    for block in blocks:
        writer.write_block(block, 2)
    info = writer.close()
    written = (tmp_path / "shard.jsonl").read_bytes()
    assert written == b"".join(blocks)
    assert info == {"sha256": hashlib.sha256(written).hexdigest(), "bytes": len(written), "records": 400}
