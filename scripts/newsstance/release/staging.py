"""Where a build writes before it publishes, and what an OS error means to the user.

A release is staged in a folder *inside* `--out` (`.newsstance-build-<version>-*`), so the final
`os.rename` to `out/<version>` never crosses a filesystem and is atomic. The verification cache
(`.newsstance-verify-*`) lives there too, never in the system temp dir. Each such folder holds an
owner file (pid + process start time); the next build removes every folder whose owner is gone
(killed with -9, power loss), and never one whose owner still runs. OS errors are turned into one
line that says what to do (`os_error`).
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import orjson

from newsstance.errors import UserError

STAGING_PREFIX = ".newsstance-build-"
VERIFY_PREFIX = ".newsstance-verify-"
LEGACY_VERIFY_PREFIX = "newsstance-verify-"  # verification caches of older builds, in the system temp dir
OWNER_FILE = ".newsstance-owner.json"
ORPHAN_GRACE_SECONDS = 600  # a folder without an owner file (older builds) is removed after this age


def _start_time(pid: int) -> float | None:
    try:
        import psutil

        return float(psutil.Process(pid).create_time())
    except Exception:  # psutil.NoSuchProcess, AccessDenied, ImportError: treat as not running / unknown
        return None


def _owner_alive(folder: Path) -> bool:
    try:
        owner = orjson.loads((folder / OWNER_FILE).read_bytes())
    except (OSError, orjson.JSONDecodeError):
        try:
            return time.time() - folder.stat().st_mtime < ORPHAN_GRACE_SECONDS
        except OSError:
            return False
    started = _start_time(int(owner.get("pid", -1)))
    return started is not None and abs(started - float(owner.get("start", 0))) < 1.0


def clean_stale(folder: Path, prefixes: tuple[str, ...] = (STAGING_PREFIX, VERIFY_PREFIX)) -> list[Path]:
    """Remove staging and verification folders in `folder` whose owner process is gone; returns them."""
    removed: list[Path] = []
    if not folder.is_dir():
        return removed
    for child in folder.iterdir():
        if child.name.startswith(prefixes) and child.is_dir() and not _owner_alive(child):
            shutil.rmtree(child, ignore_errors=True)
            removed.append(child)
    return removed


def clean_all_stale(out: Path) -> list[Path]:
    """Everything a dead build may have left: in `out`, beside it (older builds staged there) and the
    verification caches older builds left in the system temp dir (no owner file: removed after a grace)."""
    return [
        *clean_stale(out),
        *clean_stale(out.parent),
        *clean_stale(Path(tempfile.gettempdir()), (LEGACY_VERIFY_PREFIX,)),
    ]


def owned_tempdir(parent: Path, prefix: str) -> Path:
    """A new folder in `parent` with an owner file naming this process."""
    parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    pid = os.getpid()
    (folder / OWNER_FILE).write_bytes(orjson.dumps({"pid": pid, "start": _start_time(pid) or 0.0}))
    return folder


@contextlib.contextmanager
def verify_dir(parent: Path) -> Iterator[Path]:
    """A throw-away `datasets` cache next to the release (cleaned at the next start if this process dies)."""
    folder = owned_tempdir(parent, VERIFY_PREFIX)
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def publish_dir(staging: Path, target: Path) -> None:
    """Atomic rename of the finished staging folder to its version folder (same filesystem by construction)."""
    (staging / OWNER_FILE).unlink(missing_ok=True)
    if target.exists():
        raise UserError(f"release {target.name} appeared in {target.parent} while building; not overwriting it")
    os.rename(staging, target)


def link_or_copy(source: Path, target: Path) -> None:
    """Hard link when possible (same filesystem, no extra space), else copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


class HashingSink:
    """A binary file written with `os.write` that hashes what it writes (content-addressed names without
    reading the file back). pyarrow writes parquet into it as into any Python file object."""

    def __init__(self, path: Path):
        self.path = path
        self.fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self.digest = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> int:
        view = memoryview(data).cast("B")
        self.digest.update(view)
        written = 0
        while written < len(view):
            written += os.write(self.fd, view[written:])
        self.size += len(view)
        return len(view)

    def flush(self) -> None:
        pass

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readable(self) -> bool:
        return False

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            os.close(self.fd)


def os_error(exc: OSError, out: Path) -> UserError:
    """One line for an OS error while building into `out`, saying what to do."""
    where = exc.filename or out
    code = exc.errno
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        return UserError(
            f"disk full while writing {where}: free some space or pass --out on a disk with room "
            f"(nothing was published; {out} is unchanged)"
        )
    if code == errno.EROFS:
        return UserError(f"{out} is on a read-only filesystem: pass --out DIR on a writable disk")
    if code in (errno.EACCES, errno.EPERM):
        return UserError(f"permission denied on {where}: pass --out to a folder you can write, or fix its permissions")
    if code == errno.EXDEV:
        return UserError(f"cannot move {where} across filesystems: pass --out on the same disk as its parent folder")
    if code == errno.ENOENT:
        return UserError(
            f"{where} does not exist and cannot be created, or was removed while building: "
            "pass --out DIR on a writable disk and build again"
        )
    return UserError(f"cannot write {where}: {exc.strerror or exc} (check --out {out})")
