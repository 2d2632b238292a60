"""Outputs at an fsspec URL (`--out s3://bucket/prefix`, `memory://x`, `file:///srv/out`).

Object stores have neither rename nor locks, so a run works in a local mirror folder exactly as
it does for a local `--out` (staging, journal, lock, parse caches), then `publish` copies the
published outputs - the article shards, `quarantine.jsonl` and `manifest.json`; never `.cache/` -
to the URL. The mirror lives under `$NEWSSTANCE_REMOTE_CACHE` (or `--remote-cache`), else
`~/.cache/newsstance/remote`, in a folder named after the URL's hash.

Only files whose bytes differ from what the remote holds are uploaded: a sync state file in the
mirror (`.cache/remote-sync.json`) records the digest of every file this machine put at the URL,
and the remote listing's sizes confirm it (a file deleted or replaced there is uploaded again).
An unchanged re-run uploads nothing.

Order, and what a reader of the URL can rely on:
1. every changed file is uploaded under a temporary name (`.newsstance-upload-<name>`);
2. each is moved into place, shards and quarantine first, `manifest.json` last;
3. shards the new manifest no longer names are deleted.
An upload that fails or is interrupted in step 1 leaves the remote as it was (the old manifest and
the shards it names, byte for byte; only hidden temporary files are added, and the next sync
removes them). The manifest never names a shard that is not
there. On file systems with an atomic rename (local `file://`, `memory://`) each file appears
whole; object stores (S3, GCS) have no rename: fsspec copies server side and deletes, and each
object still appears whole, but during step 2 a shard may already hold its new bytes while the
old manifest lists the old digest (a reader that checks digests sees the difference). The next
run finishes an interrupted sync. One writer per URL: the lock guards this machine's mirror only.

A new machine (no mirror for the URL) first fetches the remote manifest and the files it names
into the mirror. Parse caches are never published, so that first run reparses every input, but
its shards come out byte-identical and only the manifest (whose `reparsed` count changed) is
uploaded.
"""

from __future__ import annotations

import contextlib
import fnmatch
import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from newsstance.errors import UserError
from newsstance.normalize import storage

CACHE_ENV = "NEWSSTANCE_REMOTE_CACHE"
STATE_NAME = "remote-sync.json"
UPLOAD_PREFIX = ".newsstance-upload-"
_OUTPUT_NAME = re.compile(r"articles-\d{5,}\.jsonl|quarantine\.jsonl")


@dataclass
class Target:
    """An output URL and its file system; `root` is the folder's path inside the file system."""

    url: str
    fs: Any
    root: str

    def path(self, name: str) -> str:
        return f"{self.root}/{name}" if self.root else name

    def contains(self, url: str) -> bool:
        """`url` (an input) lies under the output folder: a published output, never an input."""
        if url.split("://", 1)[0] != self.url.split("://", 1)[0]:
            return False
        return str(self.fs._strip_protocol(url)).startswith(self.root.rstrip("/") + "/")

    def listing(self) -> dict[str, int]:
        """The folder's files (name -> size); empty when the folder does not exist yet."""
        with contextlib.suppress(AttributeError):
            self.fs.invalidate_cache(self.root)
        try:
            entries = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return {}
        return {
            str(entry["name"]).rstrip("/").rsplit("/", 1)[-1]: int(entry.get("size") or 0)
            for entry in entries
            if entry.get("type") != "directory"
        }


def connect(url: str) -> Target:
    """The output URL's file system; a one-line UserError for an unknown protocol, a missing
    driver (say s3fs) or a file system that cannot be reached."""
    import fsspec

    url = url.rstrip("/")
    try:
        fs, root = fsspec.core.url_to_fs(url)
    except (ValueError, ImportError) as exc:
        raise UserError(f"--out {url}: {_one_line(exc)}") from None
    root = str(root).rstrip("/")
    try:
        is_file = fs.isfile(root)
    except Exception as exc:  # drivers raise their own types (botocore, aiohttp, ...)
        raise UserError(f"--out {url} cannot be reached: {type(exc).__name__}: {_one_line(exc)}") from None
    if is_file:
        raise UserError(f"--out {url} is a file, not a folder")
    return Target(url, fs, root)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def mirror_folder(url: str, cache_root: Path | str | None = None) -> Path:
    """The local folder a run on `url` works in: one per URL under the mirrors' folder."""
    if cache_root is None:
        cache_root = os.environ.get(CACHE_ENV) or None
    if cache_root is None:
        cache_root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsstance" / "remote"
    digest = hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]
    return (Path(cache_root).expanduser() / digest).resolve()


# ---------------------------------------------------------------- what this machine put at the URL


@dataclass
class _State:
    """Digest and size of every file this machine put at (or fetched from) the URL."""

    path: Path
    url: str
    files: dict[str, dict[str, Any]] = field(default_factory=dict)
    known: bool = False

    @classmethod
    def load(cls, mirror: Path, url: str) -> _State:
        path = mirror / storage.CACHE_DIR / STATE_NAME
        try:
            data = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            return cls(path, url)
        if not isinstance(data, dict) or data.get("url") != url or not isinstance(data.get("files"), dict):
            return cls(path, url)  # another URL's mirror (a shared --remote-cache): assume nothing
        return cls(path, url, data["files"], known=True)

    def holds(self, name: str, digest: dict[str, Any], present: dict[str, int]) -> bool:
        return self.files.get(name) == digest and present.get(name) == digest["bytes"]

    def record(self, name: str, digest: dict[str, Any] | None) -> None:
        if digest is None:
            self.files.pop(name, None)
        else:
            self.files[name] = digest
        self.known = True
        storage.write_bytes_atomic(self.path, orjson.dumps({"url": self.url, "files": self.files}))


def _digest(path: Path) -> dict[str, Any]:
    return {"sha256": storage.sha256_file(path), "bytes": path.stat().st_size}


# ---------------------------------------------------------------- before and after the run


def prepare(target: Target, mirror: Path) -> str:
    """Called under the mirror's lock before the run: a new mirror first fetches the remote
    outputs, so the run compares against them. Returns the summary line naming the mirror."""
    line = f"local mirror {mirror}"
    if _State.load(mirror, target.url).known or (mirror / storage.MANIFEST_NAME).exists():
        return line
    try:
        fetched = _fetch(target, mirror)
    except OSError as exc:
        raise UserError(f"cannot read the outputs at {target.url}: {_one_line(exc)}") from None
    return f"{line} (new: fetched {fetched} file(s) from {target.url})" if fetched else f"{line} (new)"


def _fetch(target: Target, mirror: Path) -> int:
    try:
        manifest = orjson.loads(target.fs.cat_file(target.path(storage.MANIFEST_NAME)))
    except (FileNotFoundError, orjson.JSONDecodeError):
        return 0  # nothing published yet (or not by us): the sync uploads everything
    outputs = manifest.get("outputs") if isinstance(manifest, dict) else None
    names = [name for name in outputs if _OUTPUT_NAME.fullmatch(name)] if isinstance(outputs, dict) else []
    state = _State(mirror / storage.CACHE_DIR / STATE_NAME, target.url)
    mirror.mkdir(parents=True, exist_ok=True)
    fetched = 0
    for name in [*names, storage.MANIFEST_NAME]:  # the manifest last: a half-fetched mirror has none
        partial = mirror / f".{name}.download"
        try:
            target.fs.get_file(target.path(name), str(partial))
        except FileNotFoundError:
            continue  # named but gone: the run writes it and the sync uploads it
        os.replace(partial, mirror / name)
        state.record(name, _digest(mirror / name))
        fetched += 1
    return fetched


@dataclass
class SyncReport:
    url: str
    uploaded: list[str] = field(default_factory=list)
    uploaded_bytes: int = 0
    deleted: list[str] = field(default_factory=list)
    moving: bool = False  # past the uploads: files are being moved into place

    def line(self) -> str:
        if not self.uploaded and not self.deleted:
            return f"remote       {self.url}: up to date, nothing uploaded"
        return (
            f"remote       {self.url}: {len(self.uploaded)} file(s) uploaded ({self.uploaded_bytes:,} bytes), "
            f"{len(self.deleted)} shard(s) removed"
        )


def publish(target: Target, mirror: Path) -> SyncReport:
    """Make the URL hold the mirror's published outputs (see the module docstring for the order
    and the guarantees); a failure is a one-line UserError and the next run finishes the sync."""
    report = SyncReport(target.url)
    try:
        return _publish(target, mirror, report)
    except OSError as exc:
        left = (
            "some files are in place, the manifest may still be the old one"
            if report.moving
            else "the remote still holds its previous outputs"
        )
        raise UserError(
            f"uploading to {target.url} failed ({type(exc).__name__}: {_one_line(exc)}); {left}; re-run to finish"
        ) from None


def _publish(target: Target, mirror: Path, report: SyncReport) -> SyncReport:
    outputs = storage.load_state(mirror).get("outputs")
    if not isinstance(outputs, dict) or not outputs:
        return report  # no complete output in the mirror: nothing to publish
    wanted = {name: {"sha256": info["sha256"], "bytes": info["bytes"]} for name, info in outputs.items()}
    wanted[storage.MANIFEST_NAME] = _digest(mirror / storage.MANIFEST_NAME)
    state = _State.load(mirror, target.url)
    present = target.listing()
    changed = [name for name in outputs if not state.holds(name, wanted[name], present)]
    if changed or not state.holds(storage.MANIFEST_NAME, wanted[storage.MANIFEST_NAME], present):
        changed.append(storage.MANIFEST_NAME)  # last
    vanished = sorted(
        name for name in present if fnmatch.fnmatchcase(name, storage.ARTICLES_GLOB) and name not in wanted
    )
    if changed:
        with contextlib.suppress(FileExistsError):
            target.fs.makedirs(target.root, exist_ok=True)
    for name in changed:
        target.fs.put_file(str(mirror / name), target.path(UPLOAD_PREFIX + name))
        report.uploaded.append(name)
        report.uploaded_bytes += wanted[name]["bytes"]
    report.moving = True
    for name in changed:
        target.fs.mv(target.path(UPLOAD_PREFIX + name), target.path(name))
        state.record(name, wanted[name])
    for name in vanished:
        target.fs.rm_file(target.path(name))
        state.record(name, None)
        report.deleted.append(name)
    for name in present:  # temporary files of an interrupted sync that this one did not reuse
        if name.startswith(UPLOAD_PREFIX) and name[len(UPLOAD_PREFIX) :] not in changed:
            with contextlib.suppress(FileNotFoundError):
                target.fs.rm_file(target.path(name))
    return report
