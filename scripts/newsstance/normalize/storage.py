"""On-disk state of the normalize stage, under the output folder:

    articles-00000.jsonl ...   the corpus (deterministic order: provenance path, then position)
    quarantine.jsonl           bad input with reasons
    manifest.json              raw path -> sha256, size, records; output file hashes
    .cache/index.jsonl         raw path -> cache key and where its parse results live
    .cache/parts/*.rec.jsonl   parse results: final record lines, one segment per raw file
    .cache/parts/*.dd.jsonl    what dedup needs per record (id, identity, hash, length, signature)

Parts are immutable: a run writes new parts only for files it parsed and keeps pointing at
old segments for unchanged files (parts are compacted when mostly dead). Outputs are built
in a staging folder and swapped in through a journal: an interrupted run leaves the previous
output untouched, and a crash during the swap itself is rolled forward by the next run.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import shutil
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import orjson

from newsstance.errors import UserError
from newsstance.normalize.model import Article

CACHE_DIR = ".cache"
PARTS_DIR = "parts"
INDEX_NAME = "index.jsonl"
JOURNAL_NAME = ".swap-journal.json"
LOCK_NAME = ".lock"
STAGING_PREFIX = ".staging-"
MANIFEST_NAME = "manifest.json"
QUARANTINE_NAME = "quarantine.jsonl"
ARTICLES_PATTERN = "articles-{:05d}.jsonl"
ARTICLES_GLOB = "articles-*.jsonl"


def dedup_line(article: Article) -> bytes:
    record = article.record
    signature = article.signature
    entry: dict[str, Any] = {
        "id": record["id"],
        "identity": article.identity,
        "text_sha256": record["text_sha256"],
        "length": len(record["text"]),
        "truncated": record["truncated"],
        "role": record["role"],
    }
    if signature is not None:
        array = np.ascontiguousarray(signature)
        entry["dtype"] = array.dtype.str
        entry["sig"] = base64.b64encode(array.tobytes()).decode("ascii")
    return orjson.dumps(entry) + b"\n"


def decode_signature(entry: dict[str, Any]) -> np.ndarray | None:
    if "sig" not in entry:
        return None
    return np.frombuffer(base64.b64decode(entry["sig"]), dtype=np.dtype(entry["dtype"]))


class PartWriter:
    """Appends per-file segments to one part (a pair of files) in the cache."""

    def __init__(self, parts_dir: Path, name: str):
        self.parts_dir = parts_dir
        self.name = name
        self._rec: BinaryIO | None = None
        self._dd: BinaryIO | None = None
        self._offsets = [0, 0]

    def _open(self) -> None:
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self._rec = open(self.parts_dir / f"{self.name}.rec.jsonl", "wb")  # noqa: SIM115 - closed in close()
        self._dd = open(self.parts_dir / f"{self.name}.dd.jsonl", "wb")  # noqa: SIM115

    def write(self, rec: bytes, dd: bytes) -> dict[str, Any]:
        """Store one file's segment; returns where it lives."""
        if self._rec is None:
            self._open()
        assert self._rec is not None and self._dd is not None
        self._rec.write(rec)
        self._dd.write(dd)
        location = {"part": self.name, "rec": [self._offsets[0], len(rec)], "dd": [self._offsets[1], len(dd)]}
        self._offsets[0] += len(rec)
        self._offsets[1] += len(dd)
        return location

    def close(self) -> bool:
        """Flush to disk; True when the part holds anything."""
        wrote = self._rec is not None
        for handle in (self._rec, self._dd):
            if handle is not None:
                handle.flush()
                os.fsync(handle.fileno())
                handle.close()
        self._rec = self._dd = None
        return wrote


class SegmentReader:
    """Reads segments with pread, keeping a bounded set of part files open."""

    def __init__(self, parts_dir: Path, max_open: int = 64):
        self.parts_dir = parts_dir
        self.max_open = max_open
        self._fds: OrderedDict[str, int] = OrderedDict()

    def _fd(self, filename: str) -> int:
        fd = self._fds.get(filename)
        if fd is None:
            fd = os.open(self.parts_dir / filename, os.O_RDONLY)
            self._fds[filename] = fd
            if len(self._fds) > self.max_open:
                os.close(self._fds.popitem(last=False)[1])
        else:
            self._fds.move_to_end(filename)
        return fd

    def read(self, entry: dict[str, Any], kind: str) -> bytes:
        offset, length = entry[kind]
        if not length:
            return b""
        data = os.pread(self._fd(f"{entry['part']}.{kind}.jsonl"), length, offset)
        if len(data) != length:
            raise OSError(f"cache part {entry['part']} is shorter than its index says")
        return data

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def segment_available(parts_dir: Path, entry: dict[str, Any]) -> bool:
    """The index entry's segment exists (a quarantine-only entry needs no part)."""
    if not entry.get("part"):
        return True
    rec = parts_dir / f"{entry['part']}.rec.jsonl"
    dd = parts_dir / f"{entry['part']}.dd.jsonl"
    try:
        return rec.stat().st_size >= sum(entry["rec"]) and dd.stat().st_size >= sum(entry["dd"])
    except OSError:
        return False


def load_index(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The previous run's index (raw path -> entry); entries whose segment vanished are dropped."""
    path = out_dir / CACHE_DIR / INDEX_NAME
    if not path.is_file():
        return {}
    parts_dir = out_dir / CACHE_DIR / PARTS_DIR
    index: dict[str, dict[str, Any]] = {}
    with path.open("rb") as handle:
        for line in handle:
            try:
                entry = orjson.loads(line)
            except orjson.JSONDecodeError:
                return {}  # a damaged index only costs a full reparse
            if segment_available(parts_dir, entry):
                index[entry["path"]] = entry
    return index


def load_manifest(out_dir: Path) -> dict[str, Any]:
    try:
        data = orjson.loads((out_dir / MANIFEST_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def outputs_intact(out_dir: Path, manifest: dict[str, Any]) -> bool:
    """Every output the manifest lists exists with its recorded hash, and no stray shard exists."""
    outputs = manifest.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return False
    present = {p.name for p in out_dir.glob(ARTICLES_GLOB)}
    if present - set(outputs):
        return False
    for name, info in outputs.items():
        path = out_dir / name
        if not path.is_file() or path.stat().st_size != info.get("bytes") or sha256_file(path) != info.get("sha256"):
            return False
    return True


class HashingWriter:
    """A staging output file that hashes what it writes and is fsynced on close."""

    def __init__(self, path: Path):
        self.path = path
        self.handle = open(path, "wb")  # noqa: SIM115 - closed in close()
        self.digest = hashlib.sha256()
        self.bytes = 0
        self.records = 0

    def write_line(self, line: bytes) -> None:
        self.handle.write(line)
        self.digest.update(line)
        self.bytes += len(line)
        self.records += 1

    def close(self) -> dict[str, Any]:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        self.handle.close()
        return {"sha256": self.digest.hexdigest(), "bytes": self.bytes, "records": self.records}


class Staging:
    """A folder next to the outputs where a run builds its complete output set."""

    def __init__(self, out_dir: Path, run_id: str):
        self.out_dir = out_dir
        self.path = out_dir / f"{STAGING_PREFIX}{run_id}"
        self.path.mkdir(parents=True)

    def file(self, name: str) -> Path:
        return self.path / name

    def discard(self) -> None:
        """Drop the staged files - unless the swap has begun: then the journal needs them."""
        if not (self.out_dir / JOURNAL_NAME).exists():
            shutil.rmtree(self.path, ignore_errors=True)

    def commit(self, targets: dict[str, str]) -> None:
        """Swap the staged files in (staged name -> path relative to the output folder; the manifest
        last) via a journal, and drop article shards no longer produced."""
        moves = [[f"{self.path.name}/{name}", target] for name, target in targets.items() if target != MANIFEST_NAME]
        moves += [[f"{self.path.name}/{name}", target] for name, target in targets.items() if target == MANIFEST_NAME]
        produced = set(targets.values())
        remove = sorted(p.name for p in self.out_dir.glob(ARTICLES_GLOB) if p.name not in produced)
        journal = {"staging": self.path.name, "moves": moves, "remove": remove}
        write_bytes_atomic(self.out_dir / JOURNAL_NAME, orjson.dumps(journal, option=orjson.OPT_INDENT_2))
        replay_journal(self.out_dir)


def write_bytes_atomic(path: Path, data: bytes) -> None:
    from newsstance.records import atomic_write

    with atomic_write(path) as handle:
        handle.write(data)


def replay_journal(out_dir: Path) -> bool:
    """Finish a swap that a previous run started (idempotent); True when there was one."""
    journal_path = out_dir / JOURNAL_NAME
    if not journal_path.is_file():
        return False
    journal = orjson.loads(journal_path.read_bytes())
    for source, target in journal["moves"]:
        src = out_dir / source
        if src.exists():
            dst = out_dir / target
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
    for name in journal["remove"]:
        with contextlib.suppress(FileNotFoundError):
            (out_dir / name).unlink()
    _fsync_dir(out_dir)
    journal_path.unlink()
    shutil.rmtree(out_dir / journal["staging"], ignore_errors=True)
    return True


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def remove_stale(out_dir: Path, live_parts: set[str]) -> None:
    """Delete staging folders of interrupted runs and parts no index entry points at."""
    for staging in out_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(staging, ignore_errors=True)
    parts_dir = out_dir / CACHE_DIR / PARTS_DIR
    if parts_dir.is_dir():
        for path in parts_dir.iterdir():
            if path.name.split(".", 1)[0] not in live_parts:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()


@contextlib.contextmanager
def locked(out_dir: Path) -> Iterator[None]:
    """One normalize run per output folder at a time."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)  # never truncated: a no-op run changes nothing
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UserError(f"another `newsstance normalize` is writing to {out_dir}") from None
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
