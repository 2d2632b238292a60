"""The commit stage: the run's clusters from the confirmed band pairs, article shards with
`duplicate_of` marked (by record position: no record is parsed to find its id), quarantine,
index and manifest, staged and swapped in through the journal (`storage.Staging`).

One task today (it streams every record line once, in output order). A shard is planned before
it is written (`_Shards`): one whose inputs, parse and duplicate marks are those of the last
commit, and whose file is intact, is kept without being read or written; outputs whose bytes come
out the same are not moved.
"""

from __future__ import annotations

import hashlib
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from datatrove.pipeline.base import PipelineStep as DatatroveStep

from newsstance.normalize import dedup, engine, outfile, remote, storage
from newsstance.normalize.model import PARSER_VERSION, SCHEMA_VERSION
from newsstance.records import Validator

ROLES = storage.ROLES
COMPACT_MIN_DEAD_BYTES = 16 * 1024 * 1024


class Commit(DatatroveStep):
    """Last stage (one task): clusters from the confirmed band pairs, article shards with
    `duplicate_of` marked, quarantine, index and manifest staged and swapped in atomically."""

    name = "commit"
    type = "newsstance"

    def __init__(self, work: str):
        super().__init__()
        self.work = work

    def run(self, data: Any = None, rank: int = 0, world_size: int = 1) -> Iterator[Any]:
        work = Path(self.work)
        run = engine.load_run(work)
        out = Path(run["out_dir"])
        if run["take_lock"]:
            with storage.locked(out):
                storage.replay_journal(out)
                commit(work)
                if run.get("remote"):  # a Slurm run into a URL: out is its mirror
                    remote.publish(remote.connect(run["remote"]), out)
        else:
            commit(work)
        return iter(())


def _pairs(work: Path) -> np.ndarray:
    found = [np.load(p, allow_pickle=False) for p in sorted((work / engine.PAIRS_DIR).glob("*.npy"))]
    found = [f for f in found if len(f)]
    if not found:
        return np.empty((0, 2), dtype=np.int64)
    return np.unique(np.concatenate(found), axis=0)


def commit(work: Path) -> None:
    """Write and swap in the outputs of the run whose work folder is `work`. The index is streamed
    in path order (one entry in memory at a time); per record only the run's columns are held."""
    from tqdm import tqdm

    from newsstance.records import validator

    run = engine.load_run(work)
    out = Path(run["out_dir"])
    parts_dir = Path(run["parts_dir"])
    meta = np.load(work / engine.META_FILE, allow_pickle=False)
    node = np.load(work / "node.npy", allow_pickle=False)
    nodes = np.load(work / engine.NODES_FILE, allow_pickle=False)
    groups = np.load(work / engine.GROUPS_FILE, allow_pickle=False)
    parts: list[str] = orjson.loads((work / "parts.json").read_bytes())
    arrays = storage.PartArrays(parts_dir)
    records = engine.record_columns(meta)
    known = engine.known_pair_values(run, engine.JACCARD_VALUES)
    clusters = dedup.finish(records, node, groups, _pairs(work), engine.signature_rows(arrays, parts, nodes), known)
    engine.save_pair_values(work, run, f"{engine.JACCARD_VALUES}-commit", known)
    canonical, jaccard = clusters.canonical, clusters.jaccard
    # duplicates among the first i records: an entry without any is written as it was read
    dup_prefix = np.concatenate(([0], np.cumsum(canonical != np.arange(len(canonical)))))
    del node, nodes, groups, records, clusters, known
    counts = engine.count_roles(meta)
    counts["duplicates"] = int(dup_prefix[-1])
    article_validator = validator("article.schema.json")
    live_bytes: dict[str, int] = orjson.loads((work / engine.LIVE_FILE).read_bytes())
    compactor = _Compactor(parts_dir, f"c{run['run_id']}") if _needs_compaction(parts_dir, live_bytes) else None
    old_state = storage.load_state(out)
    planned = run.get("changes")
    changes: _Changes | _PlannedChanges = (
        _PlannedChanges(work / PREVIOUS_FILE, planned["new"], planned["deleted"])
        if isinstance(planned, dict)
        else _Changes(out / storage.CACHE_DIR / storage.INDEX_NAME)
    )

    staging = storage.Staging(out, run["run_id"])
    try:
        index_out = staging.file(storage.INDEX_NAME).open("wb")
        shards = _Shards(
            staging,
            out,
            old_state,
            run["shard_size"],
            _Marks(canonical, jaccard, meta["id"], dup_prefix, article_validator),
            index_out,
        )
        quarantine = outfile.HashingWriter(staging.file(storage.QUARANTINE_NAME))
        files_out = staging.file(FILES_PART).open("wb")
        live_parts: set[str] = set()
        files = 0
        number = 0  # the record's position in output order = its row in `meta`
        bar = tqdm(
            total=len(meta),
            desc="write",
            unit="rec",
            file=sys.stderr,
            disable=not run["progress"] or len(meta) < 10_000,
            leave=False,
        )
        with storage.SegmentReader(parts_dir) as reader, index_out, files_out, shards:
            shards.reader = reader
            for entry in engine.merged_index(work):
                files += 1
                changes.see(entry)
                for item in entry["quarantine"]:
                    quarantine.write_line(orjson.dumps(item) + b"\n")
                    counts[f"quarantine:{item['reason']}"] += 1
                data = None
                if compactor and entry["records"]:  # the entry moves to a new part: its bytes are read and kept
                    data = reader.read(entry, "rec")
                    entry.update(compactor.add(entry, data, arrays))
                shards.add(entry, number, data)  # also writes its index line, once its shard is done
                number += entry["records"]
                bar.update(entry["records"])
                if entry.get("part"):
                    live_parts.add(entry["part"])
                files_out.write(_file_line(entry, first=files == 1))
            outputs = shards.finish()
        bar.close()
        outputs[storage.QUARANTINE_NAME] = quarantine.close()
        if compactor:
            compactor.close()
        summary = _summary_dict(run, files, changes.finish(), counts, len(meta))
        state = {
            "corpus_root": run["corpus_root_label"],
            "settings": run["settings"],
            "summary": summary,
            "outputs": outputs,
        }
        _write_manifest(staging, state, staging.file(FILES_PART))
        saved = {
            **state,
            "parts": sorted(live_parts),
            "fingerprints": shards.fingerprints,
            "shard_format": SHARD_FORMAT,
        }
        staging.file(storage.STATE_NAME).write_bytes(orjson.dumps(saved))
        targets = {name: name for name in outputs}
        targets[storage.INDEX_NAME] = f"{storage.CACHE_DIR}/{storage.INDEX_NAME}"
        targets[storage.STATE_NAME] = f"{storage.CACHE_DIR}/{storage.STATE_NAME}"
        targets[storage.MANIFEST_NAME] = storage.MANIFEST_NAME
        kept = shards.reused | _unchanged_outputs(out, outputs, old_state, shards)
        staging.commit(targets, kept)
        shards.stats.record_written(out, {name: info for name, info in outputs.items() if name not in kept})
    except BaseException:
        staging.discard()
        raise
    engine.install_pair_values(work, run)
    # this run's work folder stays until the runner has read its stage counters (then removes it)
    storage.remove_stale(out, live_parts, keep_run=work.name)


FILES_PART = "files.part"
PREVIOUS_FILE = "previous.jsonl"  # in the work folder: [path, previous sha256] per changed input the last index had


def _file_line(entry: dict[str, Any], first: bool) -> bytes:
    """One input's line of the manifest's `files` object."""
    info = {
        "sha256": entry["sha256"],
        "size": entry["size"],
        "records": entry["records"],
        "quarantined": len(entry["quarantine"]),
        "parser_version": PARSER_VERSION,
    }
    return (b"" if first else b",\n") + b"    " + orjson.dumps(entry["path"]) + b": " + orjson.dumps(info)


def _write_manifest(staging: storage.Staging, state: dict[str, Any], files_part: Path) -> None:
    """manifest.json: the run's state plus one line per input under `files`, streamed from the part
    written during the commit (a million inputs are never one dict in memory)."""
    head = {"parser_version": PARSER_VERSION, "schema_version": SCHEMA_VERSION, **state}
    text = orjson.dumps(head, option=orjson.OPT_INDENT_2)
    with staging.file(storage.MANIFEST_NAME).open("wb") as handle, files_part.open("rb") as files:
        handle.write(text[: text.rindex(b"}")].rstrip() + b',\n  "files": {\n')
        while chunk := files.read(1 << 20):
            handle.write(chunk)
        handle.write(b"\n  }\n}\n")
    files_part.unlink()


class _Changes:
    """New, modified and deleted inputs against the previous index, by a merge join of two
    path-ordered streams (nothing of either index is held)."""

    def __init__(self, previous_index: Path):
        self._previous = self._stream(previous_index)
        self._pending: tuple[str, str | None] | None = next(self._previous, None)
        self.new = self.modified = self.deleted = 0

    @staticmethod
    def _stream(path: Path) -> Iterator[tuple[str, str | None]]:
        if not path.is_file():  # no cache (a new machine, a cleared .cache): the manifest says what was there
            files = storage.load_manifest(path.parents[1]).get("files")
            if isinstance(files, dict):
                yield from sorted((str(name), info.get("sha256")) for name, info in files.items())
            return
        with path.open("rb") as handle:
            for line in handle:
                try:
                    entry = orjson.loads(line)
                except orjson.JSONDecodeError:
                    return
                yield str(entry["path"]), entry.get("sha256")

    def see(self, entry: dict[str, Any]) -> None:
        path = str(entry["path"])
        while self._pending is not None and self._pending[0] < path:
            self.deleted += 1
            self._pending = next(self._previous, None)
        if self._pending is not None and self._pending[0] == path:
            self.modified += self._pending[1] != entry["sha256"]
            self._pending = next(self._previous, None)
        else:
            self.new += 1

    def finish(self) -> dict[str, int]:
        while self._pending is not None:
            self.deleted += 1
            self._pending = next(self._previous, None)
        return {"new": self.new, "modified": self.modified, "deleted": self.deleted}


class _PlannedChanges:
    """New, modified and deleted inputs when the plan joined the inputs with the previous index: it
    counted the new and deleted ones and listed, in path order, the previous content hash of each
    input it sent to be parsed again; a merge join with that list counts the modified ones (kept
    inputs are unchanged by definition), so the previous index is not read again."""

    def __init__(self, previous: Path, new: int, deleted: int):
        self._handle = previous.open("rb")
        self._pending = self._next()
        self.new, self.deleted, self.modified = new, deleted, 0

    def _next(self) -> tuple[str, str | None] | None:
        line = self._handle.readline()
        if not line:
            return None
        path, sha256 = orjson.loads(line)
        return str(path), sha256

    def see(self, entry: dict[str, Any]) -> None:
        path = str(entry["path"])
        while self._pending is not None and self._pending[0] < path:
            self._pending = self._next()
        if self._pending is not None and self._pending[0] == path:
            self.modified += self._pending[1] != entry["sha256"]
            self._pending = self._next()

    def finish(self) -> dict[str, int]:
        self._handle.close()
        return {"new": self.new, "modified": self.modified, "deleted": self.deleted}


def _unchanged_outputs(
    out: Path, outputs: dict[str, dict[str, Any]], old: dict[str, Any], shards: _Shards
) -> frozenset[str]:
    """Outputs (other than the shards kept unwritten) whose bytes are already in place (same hash
    as recorded and on disk): not moved, so their modification times stay."""
    recorded = old.get("outputs")
    if not isinstance(recorded, dict):
        recorded = {}
    same = {
        name
        for name, info in outputs.items()
        if name not in shards.kept and recorded.get(name) == info and shards.stats.in_place(out / name, info)
    }
    shards.stats.save()
    return frozenset(same)


def _summary_dict(
    run: dict[str, Any], files: int, changes: dict[str, int], counts: Counter[str], articles: int
) -> dict[str, Any]:
    return {
        "files": files,
        "changed": changes["new"] + changes["modified"] + changes["deleted"],
        **changes,
        "reparsed": run["reparsed"],
        "articles": articles,
        "roles": {role: counts[f"role:{role}"] for role in ROLES},
        "duplicates": counts["duplicates"],
        "truncated": counts["truncated"],
        "quarantined": {k.split(":", 1)[1]: v for k, v in sorted(counts.items()) if k.startswith("quarantine:")},
    }


# what a shard's bytes depend on besides its inputs' results and their marks: this module (how
# records are marked and laid out), the parser and schema versions
SHARD_FORMAT = hashlib.sha256(Path(__file__).read_bytes() + f"{PARSER_VERSION}|{SCHEMA_VERSION}".encode()).hexdigest()


class _Marks:
    """The run's duplicate marks by record number (`canonical`, `jaccard`, `ids` in output order),
    with a 128-bit digest of any run of records' marks in constant time (`digest`): two prefix
    sums of a per-record mix of the record's id, its canonical's id and its Jaccard (0 for a
    record that is not a duplicate). A file's records have distinct ids, so the digest of a
    file's run changes when any of its marks does."""

    def __init__(
        self,
        canonical: np.ndarray,
        jaccard: np.ndarray,
        ids: np.ndarray,
        dup_prefix: np.ndarray,
        article_validator: Validator,
    ):
        self.canonical, self.jaccard, self.ids, self.dup_prefix = canonical, jaccard, ids, dup_prefix
        self.article_validator = article_validator
        ids = np.asarray(ids, dtype=np.uint64)
        duplicate = canonical != np.arange(len(canonical))
        bits = np.asarray(jaccard, dtype="<f8").view(np.uint64)
        self._sums = []
        for seed in (0x9E3779B97F4A7C15, 0xD1B54A32D192ED03):
            mixed = _mix(ids ^ _mix(ids[canonical] + np.uint64(seed)) ^ _mix(bits ^ np.uint64(seed)))
            sums = np.zeros(len(canonical) + 1, dtype=np.uint64)  # ([0], cumsum) would promote to float
            np.cumsum(np.where(duplicate, mixed, np.uint64(0)), dtype=np.uint64, out=sums[1:])
            self._sums.append(sums)

    def any(self, low: int, high: int) -> bool:
        """Whether any of records `low` ... `high - 1` is a duplicate."""
        return bool(self.dup_prefix[high] != self.dup_prefix[low])

    def digest(self, low: int, high: int) -> str:
        """The digest of the marks of records `low` ... `high - 1` ("" when none is a duplicate)."""
        if not self.any(low, high):
            return ""
        first, second = (int(sums[high]) - int(sums[low]) for sums in self._sums)
        return f"{first & _MASK:016x}{second & _MASK:016x}"

    def marked(self, lines: memoryview, first: int, count: int) -> list[memoryview | bytes]:
        return _marked(lines, first, count, self.canonical, self.jaccard, self.ids, self.article_validator)


_MASK = (1 << 64) - 1


def _mix(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser over uint64 values (wrapping arithmetic)."""
    x = values ^ (values >> np.uint64(30))
    x = x * np.uint64(0xBF58476D1CE4E5B9)
    x = x ^ (x >> np.uint64(27))
    x = x * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


class _Shards:
    """Article shards of `shard_size` records in output order, and the index lines of their inputs.

    A shard is planned before it is written: its fingerprint covers, per input it holds, the
    input's path, parse key (code, config, crawl context) and content hash with the slice of its
    records, and each record's mark (canonical id, Jaccard). A shard whose fingerprint matches the
    last commit's and whose file is intact is kept as it is - not read, marked, hashed or written -
    so a re-run after new inputs in one place of the tree (a new day's crawl folder) rewrites only
    the shards from there on.

    Inputs scattered through the tree change every shard, so each input's index entry also records
    where its marked lines went (`out`: shard number, offset, length, digest of its marks). When a
    shard is rewritten, an input whose parse result is kept, whose marks are unchanged and whose
    old shard is intact has its lines copied from that shard (read past the page cache, as shards
    are written) instead of being read from its part and marked again."""

    def __init__(
        self,
        staging: storage.Staging,
        out: Path,
        old_state: dict[str, Any],
        shard_size: int,
        marks: _Marks,
        index_out: Any,
    ):
        self.staging, self.out, self.shard_size, self.marks = staging, out, shard_size, marks
        self.index_out = index_out
        old_outputs, old_prints = old_state.get("outputs"), old_state.get("fingerprints")
        self.old_outputs: dict[str, Any] = old_outputs if isinstance(old_outputs, dict) else {}
        self.old_prints: dict[str, Any] = old_prints if isinstance(old_prints, dict) else {}
        self.copy_old = old_state.get("shard_format") == SHARD_FORMAT  # old lines are laid out as now
        self.stats = storage.OutputStats(out)
        self.reader: storage.SegmentReader | None = None
        self.old_shards = outfile.RangeReader()
        self.outputs: dict[str, dict[str, Any]] = {}
        self.fingerprints: dict[str, str] = {}
        self.kept: set[str] = set()
        self._usable: dict[int, Path | None] = {}
        self._pieces: list[tuple[dict[str, Any], int, int, int, bytes | None]] = []
        self._entries: list[dict[str, Any]] = []  # inputs whose index lines wait for their shard
        self._records = 0  # records planned into the current shard
        self._first = 0  # number of its first record
        self._digest = self._new_digest()

    @property
    def reused(self) -> frozenset[str]:
        return frozenset(self.kept)

    def _new_digest(self) -> Any:
        return hashlib.blake2b(f"{SHARD_FORMAT}|{self.shard_size}".encode(), digest_size=16)

    def add(self, entry: dict[str, Any], first: int, data: bytes | None) -> None:
        """An input (records numbered `first`...), in output order; `data` when already read."""
        count, done = entry["records"], 0
        self._entries.append(entry)
        while done < count:  # one piece per shard the entry's records fall in
            room = min(count - done, self.shard_size - self._records)
            self._pieces.append((entry, first, done, room, data))
            self._digest.update(orjson.dumps([entry["path"], entry.get("key"), entry["sha256"], count, done, room]))
            self._records += room
            done += room
            if self._records >= self.shard_size:
                self._flush(open_entry=done < count)

    def finish(self) -> dict[str, dict[str, Any]]:
        if self._pieces or not self.outputs:  # an empty corpus still gets its (empty) first shard
            self._flush(open_entry=False)
        for entry in self._entries:  # inputs without records after the last shard
            self._index_line(entry)
        self._entries = []
        return self.outputs

    def _flush(self, open_entry: bool) -> None:
        """Keep or write the planned shard, then the index lines of the inputs it completes (an
        input whose records go on into the next shard waits for it)."""
        number = len(self.outputs)
        name = storage.ARTICLES_PATTERN.format(number)
        low, high = self._first, self._first + self._records
        targets = self.marks.canonical[low:high]
        duplicate = targets != np.arange(low, high)
        self._digest.update(np.where(duplicate, self.marks.ids[targets], 0).astype("<u8").tobytes())
        self._digest.update(np.where(duplicate, self.marks.jaccard[low:high], 0).astype("<f8").tobytes())
        fingerprint = self._digest.hexdigest()
        old = self.old_outputs.get(name)
        if (
            self.old_prints.get(name) == fingerprint
            and isinstance(old, dict)
            and old.get("records") == self._records
            and self.stats.in_place(self.out / name, old)
        ):
            self.outputs[name] = old
            self.kept.add(name)
            for entry, _, start, count, _ in self._pieces:  # same pieces, same marks: `out` still holds
                out = entry.get("out")
                if not (start == 0 and count == entry["records"] and isinstance(out, list) and out[:1] == [number]):
                    entry.pop("out", None)
        else:
            self.outputs[name] = self._write(name, number)
        self.fingerprints[name] = fingerprint
        done = self._entries[:-1] if open_entry else self._entries
        for entry in done:
            self._index_line(entry)
        self._entries = self._entries[-1:] if open_entry else []
        self._pieces, self._first, self._records = [], high, 0
        self._digest = self._new_digest()

    def _index_line(self, entry: dict[str, Any]) -> None:
        self.index_out.write(orjson.dumps(entry) + b"\n")

    def _old_shard(self, number: Any) -> Path | None:
        """Old shard `number`'s path, when it exists with the bytes the last commit recorded."""
        if not isinstance(number, int):
            return None
        if number not in self._usable:
            name = storage.ARTICLES_PATTERN.format(number)
            old = self.old_outputs.get(name)
            usable = isinstance(old, dict) and self.stats.in_place(self.out / name, old)
            self._usable[number] = self.out / name if usable else None
        return self._usable[number]

    def _copied(self, old: Any, marks: str | None, first: int) -> memoryview | None:
        """An input's marked lines (records `first`...) from the old shard its entry points at
        (`old`), when the marks are the same and that shard is intact; None to mark them afresh.
        A range that does not start and end at a line's end, or whose first line is not record
        `first` (an index edited by hand), is not trusted either."""
        if not (self.copy_old and isinstance(old, list) and len(old) == 4 and old[3] == marks):
            return None
        number, offset, length = old[:3]
        if not (isinstance(offset, int) and isinstance(length, int) and offset >= 0 and length > 0):
            return None
        path = self._old_shard(number)
        if path is None:
            return None
        before = 1 if offset else 0  # the byte before the range ends the previous line
        try:
            lines = self.old_shards.read(path, offset - before, length + before)
        except OSError:
            return None
        head = b'{"id":"' + storage.record_id(int(self.marks.ids[first])).encode() + b'"'
        if lines[-1] != 10 or (before and lines[0] != 10) or lines[before : before + len(head)] != head:
            return None
        return lines[before:]

    def _write(self, name: str, number: int) -> dict[str, Any]:
        assert self.reader is not None
        writer = outfile.HashingWriter(self.staging.file(name))
        try:
            for entry, first, start, count, data in self._pieces:
                whole = count == entry["records"]
                old, at = entry.pop("out", None), writer.bytes
                low = first + start
                marks = self.marks.digest(low, low + count) if whole else None
                copied = self._copied(old, marks, low) if whole else None
                if copied is not None:
                    writer.write_block(copied, count)
                else:
                    if data is None:
                        data = self.reader.read(entry, "rec")
                    view = memoryview(data)
                    if not whole:
                        span = _line_span(data, start, count)
                        view = view[span[0] : span[1]]
                    if self.marks.any(low, low + count):
                        for piece in self.marks.marked(view, low, count):
                            writer.write_block(piece, 0)
                        writer.records += count
                    else:
                        writer.write_block(view, count)
                if whole:
                    entry["out"] = [number, at, writer.bytes - at, marks]
        except BaseException:
            writer.abort()  # the staged file is discarded with the staging folder
            raise
        return writer.close()

    def __enter__(self) -> _Shards:
        return self

    def __exit__(self, *exc: object) -> None:
        self.old_shards.close()


def _line_span(data: bytes, start: int, count: int) -> tuple[int, int]:
    """Byte offsets of lines `start` to `start + count` of `data` (record lines end with a newline;
    orjson escapes every other line break)."""
    low = 0
    for _ in range(start):
        low = data.index(b"\n", low) + 1
    high = low
    for _ in range(count):
        high = data.index(b"\n", high) + 1
    return low, high


def _marked(
    lines: memoryview,
    first: int,
    count: int,
    canonical: np.ndarray,
    jaccard: np.ndarray,
    ids: np.ndarray,
    article_validator: Validator,
) -> list[memoryview | bytes]:
    """An entry's record lines (records `first` ... `first + count - 1`) with `duplicate_of` marked,
    as pieces to write: the unmarked runs are views of `lines`, not copies."""
    data = lines.obj if isinstance(lines.obj, bytes) and len(lines) == len(lines.obj) else bytes(lines)
    here = np.arange(first, first + count)
    pieces: list[memoryview | bytes] = []
    line, begin, rest = 0, 0, 0  # the line `begin` starts, where the unwritten rest starts
    for at in np.flatnonzero(canonical[here] != here).tolist():
        for _ in range(at - line):
            begin = data.index(b"\n", begin) + 1
        end = data.index(b"\n", begin) + 1
        number = first + at
        target = storage.record_id(int(ids[canonical[number]]))
        pieces.append(lines[rest:begin])
        pieces.append(_mark_duplicate(data[begin:end], target, float(jaccard[number]), article_validator))
        line, begin, rest = at + 1, end, end
    pieces.append(lines[rest:])
    return pieces


_NO_DUPLICATE, _NO_JACCARD = b'"duplicate_of":null', b'"near_duplicate_jaccard":null'


def _mark_duplicate(line: bytes, canonical_id: str, jaccard: float, article_validator: Validator) -> bytes:
    """The record line with `duplicate_of` and `provenance.near_duplicate_jaccard` set. The two
    null fields are replaced in place when each occurs exactly once (a quote inside a JSON string
    is escaped, so only a key can match): the same bytes as parsing and re-serialising with orjson,
    at a tenth of the cost; anything else is parsed, set and validated."""
    at, jaccard_at = line.find(_NO_DUPLICATE), line.find(_NO_JACCARD)
    if (
        at >= 0
        and jaccard_at > at  # serialised in this order (record, then provenance): splice from the end
        and line.find(_NO_DUPLICATE, at + 1) < 0
        and line.find(_NO_JACCARD, jaccard_at + 1) < 0
    ):
        return b"".join(
            (
                line[:at],
                b'"duplicate_of":' + orjson.dumps(canonical_id),
                line[at + len(_NO_DUPLICATE) : jaccard_at],
                b'"near_duplicate_jaccard":' + orjson.dumps(round(jaccard, 4)),
                line[jaccard_at + len(_NO_JACCARD) :],
            )
        )
    record = orjson.loads(line)
    record["duplicate_of"] = canonical_id
    record["provenance"]["near_duplicate_jaccard"] = round(jaccard, 4)
    errors = article_validator.errors(record)
    if errors:  # dedup only sets two fields with known-good values: a failure here is a bug
        raise RuntimeError(f"record {record['id']} invalid after dedup: {errors[0]}")
    return orjson.dumps(record) + b"\n"


class _Compactor:
    """Rewrites live segments into one fresh part while the commit streams them anyway."""

    def __init__(self, parts_dir: Path, name: str):
        bands, rows = dedup.lsh_bands(dedup.THRESHOLD, dedup.NUM_PERM)
        self.writer = storage.PartWriter(parts_dir, name, bands, rows, dedup.NUM_PERM)

    def add(self, entry: dict[str, Any], data: bytes, arrays: storage.PartArrays) -> dict[str, Any]:
        """The entry's new location in the fresh part."""
        start, count = entry["rows"]
        meta = np.asarray(arrays.take(entry["part"], "meta", slice(start, start + count)))
        signatures = np.asarray(arrays.take(entry["part"], "sig", slice(start, start + count)))
        return self.writer.write_raw(data, meta, signatures)

    def close(self) -> None:
        self.writer.close()


def _needs_compaction(parts_dir: Path, live: dict[str, int]) -> bool:
    """Dead bytes (segments no entry points at) outweigh the live ones: `live` is bytes of record
    lines per part, counted by the collect stage."""
    total = 0
    for part in live:
        path = parts_dir / f"{part}.rec.jsonl"
        total += path.stat().st_size if path.is_file() else 0
    dead = total - sum(live.values())
    return dead > COMPACT_MIN_DEAD_BYTES and dead > sum(live.values())
