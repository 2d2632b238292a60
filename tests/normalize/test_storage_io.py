"""The commit's reads and writes batch system calls (segments served from a read-ahead chunk,
blocks written a page-aligned block at a time, direct where allowed); what they read and write must be exactly the bytes asked for."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import mmap
import os
import random

import pytest

from newsstance.normalize import outfile, storage


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


def _blocks(seed):
    rng = random.Random(seed)
    return [rng.randbytes(rng.choice([1, 40, 700, 4999, 12000])) for _ in range(200)]


@pytest.mark.parametrize("direct", [True, False])
def test_block_writes_keep_every_byte_and_the_hash(tmp_path, monkeypatch, direct):
    monkeypatch.setattr(outfile.HashingWriter, "BLOCK", 3 * mmap.PAGESIZE)  # many blocks, with a tail
    blocks = _blocks(5)
    writer = outfile.HashingWriter(tmp_path / "shard.jsonl", direct=direct)
    assert writer.direct is False or direct  # asked not to: never direct
    for block in blocks:
        writer.write_block(block, 2)
    info = writer.close()
    written = (tmp_path / "shard.jsonl").read_bytes()
    assert written == b"".join(blocks)
    assert info == {"sha256": hashlib.sha256(written).hexdigest(), "bytes": len(written), "records": 400}


def test_short_and_refused_writes_lose_nothing(tmp_path, monkeypatch):
    """The kernel may write less than asked (then an unaligned rest must not go out direct), or
    refuse direct I/O only at the first write: the file goes on buffered, every byte in order."""
    monkeypatch.setattr(outfile.HashingWriter, "BLOCK", 3 * mmap.PAGESIZE)
    real_write, calls = os.write, []

    def odd_write(fd, data):
        calls.append(len(data))
        direct = bool(fcntl.fcntl(fd, fcntl.F_GETFL) & getattr(os, "O_DIRECT", 0))
        if len(calls) == 1 and direct:
            raise OSError(errno.EINVAL, "Invalid argument")
        return real_write(fd, data[: max(1, len(data) - 1000)])  # always short, never page-sized

    monkeypatch.setattr(os, "write", odd_write)
    blocks = _blocks(6)
    writer = outfile.HashingWriter(tmp_path / "shard.jsonl")
    for block in blocks:
        writer.write_block(block, 1)
    info = writer.close()
    assert writer.direct is False
    written = (tmp_path / "shard.jsonl").read_bytes()
    assert written == b"".join(blocks) and info["sha256"] == hashlib.sha256(written).hexdigest()
    assert len(calls) > len(b"".join(blocks)) // (3 * mmap.PAGESIZE)


def test_a_direct_writer_writes_whole_pages_from_aligned_memory(tmp_path):
    """Where the file system allows direct I/O, full blocks go out with O_DIRECT set."""
    writer = outfile.HashingWriter(tmp_path / "shard.jsonl")
    if not writer.direct:
        writer.abort()
        pytest.skip("this file system refuses O_DIRECT")
    assert fcntl.fcntl(writer.fd, fcntl.F_GETFL) & os.O_DIRECT
    data = os.urandom(outfile.HashingWriter.BLOCK + 123)
    writer.write_block(data, 1)
    info = writer.close()
    assert (tmp_path / "shard.jsonl").read_bytes() == data and info["bytes"] == len(data)


def test_ranges_of_old_shards_read_through_windows_are_the_bytes_asked_for(tmp_path, monkeypatch):
    """Ranges (of several files, interleaved, some longer than a window) come back exactly,
    whether the file system takes direct reads or not; a file shorter than asked is an error."""
    monkeypatch.setattr(outfile.RangeReader, "WINDOW", 2 * mmap.PAGESIZE)
    monkeypatch.setattr(outfile.RangeReader, "FILES", 2)  # three files: windows are dropped and reopened
    rng = random.Random(8)
    files = {}
    for name in ("a", "b", "c"):
        files[name] = rng.randbytes(40_000)
        (tmp_path / name).write_bytes(files[name])
    reader = outfile.RangeReader()
    at = dict.fromkeys(files, 0)
    for _ in range(300):
        name = rng.choice("abc")
        length = rng.choice([0, 1, 100, 3000, 9000])
        if at[name] + length > 40_000:
            at[name] = 0
        assert bytes(reader.read(tmp_path / name, at[name], length)) == files[name][at[name] : at[name] + length]
        at[name] += length + rng.choice([0, 0, 7, 5000])
    with pytest.raises(OSError, match="shorter"):
        reader.read(tmp_path / "a", 39_000, 2000)
    reader.close()
