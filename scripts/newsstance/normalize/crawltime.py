"""When was a raw file crawled? `--crawl-time`, else a sidecar `<file>.meta.json`
(`{"crawled_at": ..., "url"?: ..., "source"?: ..., "language"?: ...}`), else a
`crawl_manifest.jsonl` in the file's folder or a parent up to the corpus root (lines
`{"path": <relative to that folder>, "crawled_at": ...}`), else - decided per record - a
news-please record's `date_download`, else the file's mtime.

Sidecars and manifests describe inputs; they are never inputs themselves.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from newsstance.normalize.dates import parse_timestamp
from newsstance.normalize.model import CrawlContext

SIDECAR_SUFFIX = ".meta.json"
MANIFEST_NAME = "crawl_manifest.jsonl"


def is_metadata_file(name: str) -> bool:
    return name.endswith(SIDECAR_SUFFIX) or name == MANIFEST_NAME


class CrawlPlanner:
    """Resolves file-level crawl contexts; each crawl manifest is read once."""

    def __init__(self, corpus_root: Path, cli_time: datetime | None):
        self.corpus_root = corpus_root
        self.cli_time = cli_time
        self._manifests: dict[Path, dict[str, str]] = {}
        self._names: dict[str, frozenset[str] | None] = {}
        self._root = str(corpus_root)
        self.warnings: list[str] = []
        self._cli_key: str | None = None

    def _listed(self, folder: str, name: str) -> bool:
        """`name` may exist in `folder`: one listing per folder instead of one stat per file
        (None: the folder cannot be listed, so every name may exist)."""
        if folder not in self._names:
            try:
                self._names[folder] = frozenset(os.listdir(folder))
            except OSError:
                self._names[folder] = None
        names = self._names[folder]
        return names is None or name in names

    def _manifest(self, folder: Path) -> dict[str, str]:
        if folder not in self._manifests:
            entries: dict[str, str] = {}
            path = folder / MANIFEST_NAME
            if path.is_file():
                with path.open("rb") as handle:
                    for number, line in enumerate(handle, start=1):
                        if not line.strip():
                            continue
                        try:
                            entry = orjson.loads(line)
                            entries[str(entry["path"]).removeprefix("./")] = str(entry["crawled_at"])
                        except (orjson.JSONDecodeError, KeyError, TypeError):
                            self.warnings.append(f"{path}:{number}: not a {{path, crawled_at}} line; ignored")
            self._manifests[folder] = entries
        return self._manifests[folder]

    def _sidecar(self, path: str | Path) -> dict[str, Any] | None:
        folder, name = os.path.split(path)
        if not self._listed(folder, name + SIDECAR_SUFFIX):
            return None
        sidecar = Path(folder, name + SIDECAR_SUFFIX)
        if not sidecar.is_file():
            return None
        try:
            data = orjson.loads(sidecar.read_bytes())
        except (orjson.JSONDecodeError, OSError) as exc:
            self.warnings.append(f"{sidecar}: unreadable sidecar ({exc}); ignored")
            return None
        if not isinstance(data, dict):
            self.warnings.append(f"{sidecar}: sidecar is not a JSON object; ignored")
            return None
        return data

    def _from_manifests(self, path: str | Path) -> datetime | None:
        folder = os.path.dirname(path)
        while True:
            if self._listed(folder, MANIFEST_NAME):
                value = self._manifest(Path(folder)).get(str(path)[len(folder) :].lstrip("/"))
                if value is not None:
                    moment = parse_timestamp(value)
                    if moment is None:
                        manifest = os.path.join(folder, MANIFEST_NAME)
                        name = os.path.basename(path)
                        self.warnings.append(f"{manifest}: unreadable crawled_at {value!r} for {name}")
                    return moment
            parent = os.path.dirname(folder)
            if folder == self._root or parent == folder or not folder.startswith(self._root.rstrip("/") + "/"):
                return None
            folder = parent

    def key(self, path: str, stat: os.stat_result) -> str:
        """`context(path, stat).key()`, without building the context for a file that has no
        sidecar when --crawl-time is given (then every such file's key is the same)."""
        if self.cli_time is not None:
            folder, name = os.path.split(path)
            if not self._listed(folder, name + SIDECAR_SUFFIX):
                if self._cli_key is None:
                    self._cli_key = CrawlContext(self.cli_time, "cli", datetime.fromtimestamp(0, tz=UTC)).key()
                return self._cli_key
        return self.context(path, stat).key()

    def context(self, path: str | Path, stat: os.stat_result) -> CrawlContext:
        """The file's crawl context (`path` as a string spares building a Path per input)."""
        mtime = datetime.fromtimestamp(int(stat.st_mtime), tz=UTC)
        sidecar = self._sidecar(path) or {}

        def text(key: str) -> str | None:
            value = sidecar.get(key)
            return value.strip() if isinstance(value, str) and value.strip() else None

        url, outlet, language = (text("url"), text("source"), text("language")) if sidecar else (None, None, None)
        if self.cli_time is not None:
            return CrawlContext(self.cli_time, "cli", mtime, url=url, outlet=outlet, language=language)
        if "crawled_at" in sidecar:
            moment = parse_timestamp(text("crawled_at"))
            if moment is not None:
                return CrawlContext(moment, "sidecar", mtime, url=url, outlet=outlet, language=language)
            self.warnings.append(
                f"{os.path.basename(path)}{SIDECAR_SUFFIX}: unreadable crawled_at {sidecar['crawled_at']!r}"
            )
        moment = self._from_manifests(path)
        if moment is not None:
            return CrawlContext(moment, "manifest", mtime, url=url, outlet=outlet, language=language)
        return CrawlContext(None, None, mtime, url=url, outlet=outlet, language=language)
