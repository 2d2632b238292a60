"""On-disk state of the normalize stage, under the output folder:

    articles-00000.jsonl ...   the corpus (deterministic order: provenance path, then position)
    quarantine.jsonl           bad input with reasons
    manifest.json              raw path (relative to the corpus root) -> sha256, size, records; output hashes
    .cache/index.jsonl         raw path -> cache key and where its parse results live
    .cache/parts/P.rec.jsonl   parse results of one extract task: final record lines, one segment per raw file
    .cache/parts/P.meta.npy    per record: what clustering needs (id, identity and text digests, length, ...)
    .cache/parts/P.sig.npy     per record: MinHash signature (uint32 x NUM_PERM)
    .cache/parts/P.bands.npy   LSH band keys, one row per band (a band's keys are contiguous)
    .cache/runs/R/             one run's work folder (plan, per-task entries, datatrove logs, band pairs)
    .cache/remote-sync.json    for a URL --out (this folder is then its mirror): what was published there

Parts are immutable: a run writes new parts only for files it parsed and keeps pointing at
old segments for unchanged files (parts are compacted when mostly dead). Outputs are built
in a staging folder and swapped in through a journal: an interrupted run leaves the previous
output untouched, and a crash during the swap itself is rolled forward by the next run.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import mmap
import os
import shutil
import stat
import time
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
STATE_NAME = "state.json"  # in .cache/: the manifest without its per-input list (read by every run)
OUTPUT_STATS_NAME = "output-stats.json"  # in .cache/: stats of outputs whose hash was checked
RACY_NS = 2_000_000_000  # a stat this close to its recording proves nothing (see trusted_stat)
QUARANTINE_NAME = "quarantine.jsonl"
ARTICLES_PATTERN = "articles-{:05d}.jsonl"
ARTICLES_GLOB = "articles-*.jsonl"


RUNS_DIR = "runs"
ROLES = ("main", "related", "standalone")
META_DTYPE = np.dtype(
    [
        ("id", "<u8"),  # the 16-hex-digit article id as a number (same order as the strings)
        ("identity", "S16"),  # digest of the identity key
        ("url", "?"),  # the identity is a canonical URL
        ("text", "S16"),  # digest of the text
        ("length", "<i8"),
        ("truncated", "?"),
        ("shingles", "<i8"),
        ("signed", "?"),
        ("role", "u1"),  # index into ROLES
    ]
)


def meta_row(article: Article) -> tuple[int, bytes, bool, bytes, int, bool, int, bool, int]:
    record = article.record
    return (
        int(record["id"], 16),
        hashlib.sha256(article.identity.encode()).digest()[:16],
        article.identity.startswith("url:"),
        bytes.fromhex(record["text_sha256"][:32]),
        len(record["text"]),
        bool(record["truncated"]),
        article.shingles,
        article.signature is not None,
        ROLES.index(record["role"]),
    )


def record_id(number: int) -> str:
    """The article id string of a `META_DTYPE` id."""
    return f"{number:016x}"


class PartWriter:
    """Appends per-file segments to one part: record lines as they come, and the per-record
    arrays (meta, signatures, band keys) when the part is closed."""

    def __init__(self, parts_dir: Path, name: str, bands: int, rows: int, num_perm: int):
        self.parts_dir = parts_dir
        self.name = name
        self.bands, self.rows, self.num_perm = bands, rows, num_perm
        self._rec: BinaryIO | None = None
        self._offset = 0
        self._rows = 0
        self._meta: list[np.ndarray] = []
        self._signatures: list[np.ndarray] = []

    def write(self, articles: list[Article]) -> dict[str, Any]:
        """Store one file's articles; returns where they live."""
        from newsstance.normalize.dedup import _unmatchable_signature

        data = b"".join(orjson.dumps(a.record) + b"\n" for a in articles)
        meta = np.array([meta_row(a) for a in articles], dtype=META_DTYPE)
        signatures = np.stack(
            [
                a.signature
                if a.signature is not None
                else _unmatchable_signature(a.record["text_sha256"], self.num_perm)
                for a in articles
            ]
        )
        return self.write_raw(data, meta, signatures)

    def write_raw(self, data: bytes, meta: np.ndarray, signatures: np.ndarray) -> dict[str, Any]:
        """Store one file's segment given as record lines plus its rows of meta and signatures."""
        if self._rec is None:
            self.parts_dir.mkdir(parents=True, exist_ok=True)
            self._rec = open(self.parts_dir / f"{self.name}.rec.jsonl", "wb")  # noqa: SIM115 - closed in close()
        self._rec.write(data)
        location = {"part": self.name, "rec": [self._offset, len(data)], "rows": [self._rows, len(meta)]}
        self._offset += len(data)
        self._rows += len(meta)
        self._meta.append(np.asarray(meta, dtype=META_DTYPE))
        self._signatures.append(np.asarray(signatures, dtype=np.uint32).reshape(len(meta), self.num_perm))
        return location

    def close(self) -> bool:
        """Flush everything to disk; True when the part holds anything."""
        if self._rec is None:
            return False
        from newsstance.normalize.dedup import band_keys

        self._rec.flush()
        os.fsync(self._rec.fileno())
        self._rec.close()
        self._rec = None
        signatures = np.concatenate(self._signatures)
        bands = np.stack([band_keys(signatures, band, self.rows) for band in range(self.bands)])
        _save_npy(self.parts_dir / f"{self.name}.meta.npy", np.concatenate(self._meta))
        _save_npy(self.parts_dir / f"{self.name}.sig.npy", signatures)
        _save_npy(self.parts_dir / f"{self.name}.bands.npy", bands)
        return True


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as handle:
        np.save(handle, array, allow_pickle=False)
        handle.flush()
        os.fsync(handle.fileno())


class PartArrays:
    """The parts' arrays, memory-mapped on demand (a bounded number open at a time). A map holds
    address space, not a file descriptor, and the dedup stages touch every part once per pass
    (per band, per chunk of pairs): a bound below the number of parts would reopen every map on
    every pass (at 1M pages, ~3,900 parts: most of the bands stage's time). Pages read through
    `take` leave the resident set at once."""

    def __init__(self, parts_dir: Path, max_open: int = 16384):
        self.parts_dir = parts_dir
        self.max_open = max_open
        self._open: OrderedDict[tuple[str, str], tuple[np.ndarray, Any]] = OrderedDict()

    def get(self, part: str, kind: str) -> np.ndarray:
        key = (part, kind)
        opened = self._open.get(key)
        if opened is None:
            mapped = np.load(self.parts_dir / f"{part}.{kind}.npy", mmap_mode="r", allow_pickle=False)
            # indexing a plain array is cheaper than indexing a np.memmap
            opened = (mapped.view(np.ndarray), getattr(mapped, "_mmap", None))
            self._open[key] = opened
            if len(self._open) > self.max_open:
                self._open.popitem(last=False)
        else:
            self._open.move_to_end(key)
        return opened[0]

    def take(self, part: str, kind: str, index: Any) -> np.ndarray:
        """`array[index]` of one part's array (a copy; a view for a slice, whose pages are read
        again on access); the pages read are then dropped from the resident set, so a pass over
        every part holds one part's pages at a time."""
        array = self.get(part, kind)
        taken = array[index]
        mapping = self._open[(part, kind)][1]
        if mapping is not None and hasattr(mapping, "madvise"):
            with contextlib.suppress(OSError, ValueError):
                mapping.madvise(mmap.MADV_DONTNEED)
        return taken


class SegmentReader:
    """Reads segments with pread, keeping a bounded set of part files open. The commit reads each
    part's segments in the order they were written (a part holds a contiguous run of inputs in
    path order), so a read fetches `READ_AHEAD` bytes at once and the part's next segments are
    served from that chunk: one system call per chunk, not per input. The last chunk of each of
    the `CHUNKS` most recently read parts is kept: a re-run interleaves old parts with new ones."""

    READ_AHEAD = 1 << 20
    CHUNKS = 16

    def __init__(self, parts_dir: Path, max_open: int = 64):
        self.parts_dir = parts_dir
        self.max_open = max_open
        self._fds: OrderedDict[str, int] = OrderedDict()
        self._chunks: OrderedDict[str, tuple[int, bytes]] = OrderedDict()  # file -> (offset, bytes)

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
        filename = f"{entry['part']}.{kind}.jsonl"
        found = self._chunks.get(filename)
        if found is not None and found[0] <= offset and offset + length <= found[0] + len(found[1]):
            start = offset - found[0]
            return found[1][start : start + length]
        data = os.pread(self._fd(filename), max(length, self.READ_AHEAD), offset)
        if len(data) < length:
            raise OSError(f"cache part {entry['part']} is shorter than its index says")
        if len(data) == length:
            return data
        self._chunks[filename] = (offset, data)
        self._chunks.move_to_end(filename)
        if len(self._chunks) > self.CHUNKS:
            self._chunks.popitem(last=False)
        return data[:length]

    def close(self) -> None:
        for fd in self._fds.values():
            os.close(fd)
        self._fds.clear()

    def __enter__(self) -> SegmentReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def part_sizes(parts_dir: Path, part: str) -> tuple[int, int] | None:
    """(bytes of record lines, rows of per-record arrays) of a part; None when it is damaged or gone."""
    try:
        rows = np.load(parts_dir / f"{part}.meta.npy", mmap_mode="r", allow_pickle=False).shape[0]
        return (parts_dir / f"{part}.rec.jsonl").stat().st_size, int(rows)
    except (OSError, ValueError):
        return None


def segment_available(parts_dir: Path, entry: dict[str, Any], sizes: dict[str, tuple[int, int] | None]) -> bool:
    """The index entry's segment exists (a quarantine-only entry needs no part); `sizes` caches
    `part_sizes` per part."""
    if not entry.get("part"):
        return True
    if "rows" not in entry:
        return False  # written by an older layout: reparse
    part = entry["part"]
    if part not in sizes:
        sizes[part] = part_sizes(parts_dir, part)
    found = sizes[part]
    return found is not None and found[0] >= sum(entry["rec"]) and found[1] >= sum(entry["rows"])


def iter_index(out_dir: Path) -> Iterator[tuple[bytes, dict[str, Any]]]:
    """The previous run's index, streamed in path order as (line, entry); entries whose segment
    vanished are skipped. A damaged or unordered index ends the stream: the rest is reparsed."""
    for line, entry, usable in iter_index_all(out_dir):
        if usable:
            yield line, entry


def iter_index_all(out_dir: Path) -> Iterator[tuple[bytes, dict[str, Any], bool]]:
    """`iter_index` with the entries whose segment vanished too, as (line, entry, usable)."""
    path = out_dir / CACHE_DIR / INDEX_NAME
    if not path.is_file():
        return
    parts_dir = out_dir / CACHE_DIR / PARTS_DIR
    sizes: dict[str, tuple[int, int] | None] = {}
    last = ""
    with path.open("rb") as handle:
        for line in handle:
            try:
                entry = orjson.loads(line)
                rel = str(entry["path"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                return
            if rel <= last:
                return
            last = rel
            usable = segment_available(parts_dir, entry, sizes)
            yield (line if line.endswith(b"\n") else line + b"\n"), entry, usable


def load_index(out_dir: Path) -> dict[str, dict[str, Any]]:
    """The previous run's index (raw path -> entry), in memory: for small folders and tests; the
    runner streams it (`iter_index`)."""
    return {entry["path"]: entry for _, entry in iter_index(out_dir)}


def trusted_stat(st: os.stat_result, trusted_before: int) -> tuple[int, int, int, int, int] | None:
    """(size, mtime, ctime, inode, device) of a regular file whose last change is older than
    `trusted_before` (ns), else None. A file changed within RACY_NS of the moment its stat is
    recorded may change again within the file system's timestamp granularity without its stat
    changing (git's racy-clean rule); ctime cannot be set back, so any later write shows."""
    if not stat.S_ISREG(st.st_mode) or max(st.st_mtime_ns, st.st_ctime_ns) >= trusted_before:
        return None
    return st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev


def live_parts(out_dir: Path) -> set[str]:
    """The parts the current index points at (recorded in the state; else read from the index)."""
    parts = load_state(out_dir).get("parts")
    if isinstance(parts, list):
        return {str(part) for part in parts}
    return {entry["part"] for entry in load_index(out_dir).values() if entry.get("part")}


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


def load_state(out_dir: Path) -> dict[str, Any]:
    """The last commit's settings, corpus root, summary and outputs: manifest.json without its
    per-input list, so a run over a million inputs does not parse that list to plan. Outputs
    written before the state file existed fall back to the manifest."""
    try:
        data = orjson.loads((out_dir / CACHE_DIR / STATE_NAME).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        manifest = load_manifest(out_dir)
        return {key: manifest[key] for key in ("corpus_root", "settings", "summary", "outputs") if key in manifest}
    return data if isinstance(data, dict) else {}


class OutputStats:
    """Which outputs were hashed and found intact, by their stat (size, mtime, ctime, inode):
    a later check trusts an unchanged stat instead of reading the shard again. Like the input
    stats, a stat taken within RACY_NS of the file's last change is not kept."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / CACHE_DIR / OUTPUT_STATS_NAME
        try:
            self.known: dict[str, list[Any]] = orjson.loads(self.path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            self.known = {}
        self.changed = False

    def in_place(self, path: Path, info: dict[str, Any]) -> bool:
        """`path` holds exactly the bytes `info` (sha256, bytes) describes."""
        try:
            st = os.stat(path)
        except OSError:
            return False
        if not stat.S_ISREG(st.st_mode) or st.st_size != info.get("bytes"):
            return False
        key = [info.get("sha256"), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino, st.st_dev]
        if self.known.get(path.name) == key:
            return True
        if sha256_file(path) != info.get("sha256"):
            return False
        if trusted_stat(st, time.time_ns() - RACY_NS) is not None:
            self.known[path.name] = key
            self.changed = True
        return True

    def record_written(self, out_dir: Path, written: dict[str, dict[str, Any]]) -> None:
        """Trust the stat the outputs this commit just wrote and swapped in have now: their bytes
        are the ones hashed while writing, and no other writer knew the files before the swap.
        (The racy rule cannot apply here: the swap itself changes their ctime.) Without this, the
        next run would hash every shard it copies lines from."""
        for name, info in written.items():
            with contextlib.suppress(OSError):
                st = os.stat(out_dir / name)
                if stat.S_ISREG(st.st_mode) and st.st_size == info.get("bytes"):
                    self.known[name] = [
                        info.get("sha256"),
                        st.st_size,
                        st.st_mtime_ns,
                        st.st_ctime_ns,
                        st.st_ino,
                        st.st_dev,
                    ]
                    self.changed = True
        self.save()

    def save(self) -> None:
        """Best effort: a folder the user cannot write to only costs hashing again next time."""
        if self.changed and self.path.parent.is_dir():
            with contextlib.suppress(OSError):
                write_bytes_atomic(self.path, orjson.dumps(self.known))
            self.changed = False


def outputs_intact(out_dir: Path, state: dict[str, Any]) -> bool:
    """Every output the state lists exists with its recorded hash, and no stray shard exists."""
    outputs = state.get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return False
    present = {p.name for p in out_dir.glob(ARTICLES_GLOB)}
    if present - set(outputs):
        return False
    stats = OutputStats(out_dir)
    intact = all(stats.in_place(out_dir / name, info) for name, info in outputs.items())
    stats.save()
    return intact


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

    def commit(self, targets: dict[str, str], unchanged: frozenset[str] = frozenset()) -> None:
        """Swap the staged files in (staged name -> path relative to the output folder; the manifest
        last) via a journal, and drop article shards no longer produced. `unchanged` outputs are
        produced but not moved: the file in place already holds exactly these bytes."""
        moving = {name: target for name, target in targets.items() if name not in unchanged}
        moves = [[f"{self.path.name}/{name}", target] for name, target in moving.items() if target != MANIFEST_NAME]
        moves += [[f"{self.path.name}/{name}", target] for name, target in moving.items() if target == MANIFEST_NAME]
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


def remove_stale(out_dir: Path, live_parts: set[str], keep_run: str | None = None) -> None:
    """Delete staging and work folders of interrupted runs and parts no index entry points at."""
    for staging in out_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(staging, ignore_errors=True)
    runs = out_dir / CACHE_DIR / RUNS_DIR
    if runs.is_dir():
        for run in runs.iterdir():
            if run.name != keep_run:
                shutil.rmtree(run, ignore_errors=True)
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
