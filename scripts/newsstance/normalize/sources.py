"""Safe input discovery and stable reads: what `normalize` may open, and bytes that belong together.

Rules (issue 11):

- Only regular files are read. FIFOs, sockets and devices are reported (`not_a_file`) from
  `lstat` without ever being opened (opening a FIFO blocks forever); the open itself uses
  `O_NONBLOCK | O_NOFOLLOW` and `fstat` re-checks `S_ISREG`, so a file swapped for a FIFO or a
  symlink between the check and the open is still refused.
- Symlinks are not followed out of the input root: a link whose target lies outside is reported
  (`outside_root`), whether it points at a file or a folder. A symlinked folder inside the root is
  walked (each real folder once, so link cycles end); a dangling link is a `read_error`.
- A file that changes while it is read (size, mtime, inode or length read differ before vs after)
  is read again once; if it changes again it is reported `changed_during_run`. The size and hash
  returned always come from the same read.

Discovery returns every path that must end as articles or a quarantine entry (special files and
outside links included); `read_stable` decides per path. Remote inputs (`memory://`, `s3://` ...)
go through fsspec (`discover_remote`, `read_remote`): local safety checks do not apply there, but
the size limit and the before/after check (size, mtime or ETag when the store reports them) do.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path, PurePosixPath
from typing import IO, Protocol

from newsstance.normalize.crawltime import is_metadata_file
from newsstance.normalize.model import Reason

HASH_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_PROC_FD = Path("/proc/self/fd")


@cache
def _proc_fd_readable() -> bool:
    """/proc/self/fd exists (Linux): an open descriptor's real path can be checked."""
    return _PROC_FD.is_dir()


# ---------------------------------------------------------------- outcomes


@dataclass(frozen=True, slots=True)
class FileBytes:
    """The whole file, its sha256 and size, all from one read."""

    data: bytes
    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class TooLarge:
    """Over the byte limit: hashed in chunks, never held in memory."""

    sha256: str
    size: int


@dataclass(frozen=True, slots=True)
class Unreadable:
    """Why a path is not read: a quarantine reason and one readable line."""

    reason: Reason
    detail: str
    sha256: str | None = None


ReadOutcome = FileBytes | TooLarge | Unreadable


class UnreadableInput(OSError):
    """An `Unreadable` outcome raised where an OSError is expected (hashing during planning)."""

    def __init__(self, outcome: Unreadable):
        super().__init__(outcome.detail)
        self.outcome = outcome
        self.detail = outcome.detail


@dataclass(frozen=True, slots=True)
class _Snapshot:
    """What must not change while a file is read."""

    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, st: os.stat_result) -> _Snapshot:
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


# ---------------------------------------------------------------- discovery


@dataclass(slots=True)
class Discovery:
    """Paths to process (sorted) and notes about links that were not walked twice."""

    paths: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def is_inside(path: str | Path, root: Path) -> bool:
    """`path` (already resolved) is `root` or lies under it."""
    text, base = str(path), str(root)
    if os.path.normpath(text) == text and os.path.normpath(base) == base:  # compared as strings: ~10x faster
        return text == base or text.startswith(base if base.endswith("/") else base + "/")
    resolved = Path(path)
    return resolved == root or root in resolved.parents


def skip_name(name: str) -> bool:
    """Hidden files, sidecars and crawl manifests are never inputs."""
    return name.startswith(".") or is_metadata_file(name)


def discover(inputs: Sequence[Path], root: Path, exclude: Path | None = None) -> Discovery:
    """Every path under `inputs` that must end as articles or a quarantine entry.

    Regular files, special files (reported at read time, never opened) and symlinks that leave
    `root` or dangle (reported at read time) are listed under the path they were found at;
    folders, including symlinked folders inside `root`, are walked once each by real identity,
    real paths first (a link only adds folders not reachable without it; the others are noted).
    """
    root = root.resolve()
    found: set[str] = set()
    visited: set[tuple[int, int]] = set()
    linked: list[Path] = []
    notes: list[str] = []
    excluded = str(exclude.resolve()) if exclude is not None else None

    def walk(folder: Path) -> None:
        try:
            identity = os.stat(folder)
        except OSError as exc:
            notes.append(f"{folder}: cannot list ({exc.strerror or exc})")
            return
        key = (identity.st_dev, identity.st_ino)
        if key in visited:
            notes.append(f"{folder}: already walked through another path (symlink loop or alias)")
            return
        visited.add(key)
        try:
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda e: e.name)
        except OSError as exc:
            notes.append(f"{folder}: cannot list ({exc.strerror or exc})")
            return
        for entry in entries:
            if entry.name.startswith("."):
                continue
            if entry.path == excluded:
                continue
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if target == excluded:
                    continue
                if is_inside(target, root) and os.path.isdir(target):
                    linked.append(Path(entry.path))  # walked after every real folder: real paths win over aliases
                elif not skip_name(entry.name):
                    found.add(entry.path)  # file link, outside link or dangling link: read_stable decides
            elif entry.is_dir(follow_symlinks=False):
                walk(Path(entry.path))
            elif not skip_name(entry.name):
                found.add(entry.path)

    for path in inputs:
        try:
            is_dir = stat.S_ISDIR(os.lstat(path).st_mode) or (
                path.is_symlink() and is_inside(os.path.realpath(path), root) and path.is_dir()
            )
        except OSError:
            is_dir = False
        if is_dir:
            walk(path)
        elif not skip_name(path.name):
            found.add(str(path))
    while linked:  # symlinked folders inside the root, once each by real identity
        walk(linked.pop(0))
    return Discovery(sorted(found), notes)


def input_root(path: str, rel: str) -> Path:
    """The input root of a file known by its absolute path and its root-relative path."""
    if rel and path.endswith("/" + rel) and os.path.normpath(path) == path and os.path.normpath(rel) == rel:
        return Path(path[: -len(rel) - 1] or "/")  # the common case, without splitting paths (~8x faster)
    depth = len(PurePosixPath(rel).parts)
    return Path(path).parents[depth - 1] if depth else Path(path)


# ---------------------------------------------------------------- local reads


def _kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISDIR(mode):
        return "a folder"
    return "not a regular file"


def _error(exc: OSError) -> Unreadable:
    return Unreadable(Reason.READ_ERROR, f"{type(exc).__name__}: {exc.strerror or exc}")


def open_regular(path: str | Path, root: Path | None) -> tuple[int, os.stat_result] | Unreadable:
    """An open file descriptor on a regular file inside `root` (None: no root check), or why not.

    Never blocks: special files are refused from `lstat` before any open, and the open itself
    is non-blocking and refuses a final symlink; `fstat` on the descriptor closes the race.
    """
    try:
        st = os.lstat(path)
    except OSError as exc:
        return _error(exc)
    target = str(path)
    if stat.S_ISLNK(st.st_mode):
        target = os.path.realpath(path)
        if root is not None and not is_inside(target, root):
            return Unreadable(Reason.OUTSIDE_ROOT, f"symlink to {target}, outside the input root {root}")
        try:
            st = os.stat(target)
        except OSError as exc:
            return Unreadable(Reason.READ_ERROR, f"dangling symlink ({exc.strerror or exc})")
    if not stat.S_ISREG(st.st_mode):
        return Unreadable(Reason.NOT_A_FILE, f"{_kind(st.st_mode)}, not a regular file: not opened")
    try:
        fd = os.open(target, _OPEN_FLAGS)
    except OSError as exc:
        return _error(exc)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Refused(Unreadable(Reason.NOT_A_FILE, f"{_kind(st.st_mode)} (replaced while opening)"))
        if root is not None and _proc_fd_readable():
            opened = os.readlink(f"{_PROC_FD}/{fd}")
            if opened.startswith("/") and not is_inside(opened, root):
                raise _Refused(Unreadable(Reason.OUTSIDE_ROOT, f"resolves to {opened}, outside the input root {root}"))
    except _Refused as refused:
        os.close(fd)
        return refused.outcome
    except OSError as exc:
        os.close(fd)
        return _error(exc)
    return fd, st


class _Refused(Exception):
    def __init__(self, outcome: Unreadable):
        super().__init__(outcome.detail)
        self.outcome = outcome


def _read_once(handle: IO[bytes], size: int, max_bytes: int) -> tuple[bytes | None, str, int]:
    """One pass over an open file: (data or None when over the limit, sha256, bytes seen).

    Reads `size + 1` bytes in one call (one allocation, no copy) so growth is noticed; over
    the limit it only hashes, in chunks.
    """
    if size <= max_bytes:
        data = handle.read(size + 1)
        while 0 < len(data) <= size:  # one read() returns at most ~2 GiB: continue (rare, copies)
            more = handle.read(size + 1 - len(data))
            if not more:
                break
            data += more
        if len(data) <= max_bytes:
            return data, hashlib.sha256(data).hexdigest(), len(data)
        digest = hashlib.sha256(data)
        seen = len(data)
        del data
    else:
        digest = hashlib.sha256()
        seen = 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        seen += len(chunk)
    return None, digest.hexdigest(), seen


def read_stable(path: str | Path, root: Path | None, max_bytes: int, attempts: int = 2) -> ReadOutcome:
    """The file's bytes (or its hash when over `max_bytes`), from a read during which it did not
    change; re-read once on change, then `changed_during_run`."""
    changes: list[str] = []
    for _ in range(attempts):
        opened = open_regular(path, root)
        if isinstance(opened, Unreadable):
            return opened
        fd, before_stat = opened
        before = _Snapshot.of(before_stat)
        try:
            with os.fdopen(fd, "rb", buffering=0) as handle:
                data, sha256, seen = _read_once(handle, before.size, max_bytes)
                after = _Snapshot.of(os.fstat(handle.fileno()))
        except OSError as exc:
            return _error(exc)
        try:  # a rename over the path (editor save) keeps the old inode open: check the path too
            current = _Snapshot.of(os.stat(path))
        except OSError:
            current = after
        if before == after == current and seen == before.size:
            if data is None:
                return TooLarge(sha256, seen)
            return FileBytes(data, sha256, seen)
        changes.append(_describe_change(before, after if after != before else current, seen))
    return Unreadable(Reason.CHANGED_DURING_RUN, f"changed while being read ({'; then '.join(changes)}); not recorded")


def _describe_change(before: _Snapshot, after: _Snapshot, seen: int) -> str:
    if seen != before.size:
        return f"{before.size} bytes at open, {seen} read"
    if after.inode != before.inode or after.device != before.device:
        return "replaced by another file"
    if after.size != before.size:
        return f"size {before.size} -> {after.size}"
    return "modified during the read"


def snapshot(handle: IO[bytes]) -> tuple[int, int, int, int]:
    """(size, mtime_ns, inode, device) of an open file, to compare before and after a stream."""
    st = os.fstat(handle.fileno())
    return st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev


def sha256_handle(handle: IO[bytes]) -> tuple[str, int]:
    """sha256 and length of an open file from its start, in chunks (the handle is rewound)."""
    handle.seek(0)
    digest = hashlib.sha256()
    size = 0
    while chunk := handle.read(HASH_CHUNK):
        digest.update(chunk)
        size += len(chunk)
    handle.seek(0)
    return digest.hexdigest(), size


# ---------------------------------------------------------------- remote (fsspec)


class _RemoteFS(Protocol):
    def find(self, path: str, detail: bool = ...) -> dict[str, dict[str, object]]: ...
    def info(self, path: str) -> dict[str, object]: ...
    def open(self, path: str, mode: str = ...) -> IO[bytes]: ...
    def unstrip_protocol(self, name: str) -> str: ...


def is_remote(path: str | Path) -> bool:
    """A URL with a scheme other than `file://` (a Windows drive letter is not a scheme)."""
    text = str(path)
    scheme, sep, _ = text.partition("://")
    return bool(sep) and len(scheme) > 1 and scheme != "file"


def _filesystem(url: str) -> tuple[_RemoteFS, str]:
    from fsspec.core import url_to_fs

    fs, stripped = url_to_fs(url)
    return fs, stripped


def discover_remote(url: str) -> list[tuple[str, str]]:
    """(full URL, path relative to `url`) of every file under a remote folder (or the file itself),
    sorted; hidden files, sidecars and crawl manifests skipped as for local inputs."""
    fs, base = _filesystem(url)
    base = base.rstrip("/")
    listing = fs.find(base, detail=True)
    found = []
    for name, info in listing.items():
        if info.get("type") not in (None, "file"):
            continue
        rel = name[len(base) :].lstrip("/") if name.startswith(base) else PurePosixPath(name).name
        rel = rel or PurePosixPath(name).name
        if any(part.startswith(".") for part in PurePosixPath(rel).parts) or skip_name(PurePosixPath(rel).name):
            continue
        found.append((fs.unstrip_protocol(name), rel))
    return sorted(found, key=lambda pair: pair[1])


def _remote_version(info: dict[str, object]) -> tuple[object, ...]:
    return tuple(info.get(key) for key in ("size", "mtime", "LastModified", "ETag", "etag", "created"))


def read_remote(url: str, max_bytes: int, attempts: int = 2) -> ReadOutcome:
    """A remote file's bytes (or hash when over `max_bytes`), with the same before/after rule as
    local reads, using what the store reports (size, mtime, ETag)."""
    fs, path = _filesystem(url)
    changes: list[str] = []
    for _ in range(attempts):
        try:
            info = fs.info(path)
            size = int(str(info.get("size") or 0))
            with fs.open(path, "rb") as handle:
                data, sha256, seen = _read_once(handle, size, max_bytes)
            after = fs.info(path)
        except (OSError, ValueError) as exc:
            return Unreadable(Reason.READ_ERROR, f"{type(exc).__name__}: {exc}")
        if _remote_version(info) == _remote_version(after) and seen == size:
            return TooLarge(sha256, seen) if data is None else FileBytes(data, sha256, seen)
        changes.append(f"{size} bytes listed, {seen} read")
    return Unreadable(Reason.CHANGED_DURING_RUN, f"changed while being read ({'; then '.join(changes)})")
