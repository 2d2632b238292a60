"""Load a built release with `datasets`, for the evaluation stage and for users of a local copy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from newsstance.errors import UserError
from newsstance.release.features import DEFAULT
from newsstance.release.versions import existing_versions, read_manifest


def release_dir(path: Path | str, version: str | None = None) -> Path:
    """`path` itself when it holds a release (README.md), else `path/<version>` or the latest version in it."""
    path = Path(path)
    if (path / "README.md").is_file() and version is None:
        return path
    if version is None:
        found = existing_versions(path)
        if not found:
            raise UserError(f"no release in {path} (run `newsstance build`)")
        version = found[-1]
    folder = path / version
    if not (folder / "README.md").is_file():
        raise UserError(f"no release {version} in {path}")
    return folder


def release_gold(folder: Path | None) -> str | None:
    """Which gold a local release was built from (`run`/`build`'s default, see `options.resolve_gold`),
    as `evaluate` and `baseline` report it; None for a Hub dataset or an older release."""
    if folder is None:
        return None
    try:
        gold = (read_manifest(Path(folder)).get("inputs") or {}).get("gold") or {}
    except UserError:
        return None
    if not gold.get("path"):
        return None
    kind = {"adjudicated": "adjudicated gold", "sample": "sample gold", "explicit": "--gold"}.get(
        str(gold.get("kind")), ""
    )
    return f"{gold['path']} ({kind})" if kind else str(gold["path"])


def load_release_dataset(
    path: Path | str,
    config: str = DEFAULT,
    split: str | None = None,
    *,
    version: str | None = None,
    streaming: bool = False,
    cache_dir: Path | str | None = None,
) -> Any:
    """`datasets.load_dataset` on a release folder (or on `dist` + version; latest when omitted).

    Data file names are content-addressed, so the normal cache is safe even for rebuilt folders.
    """
    import datasets

    folder = release_dir(path, version)
    return datasets.load_dataset(
        str(folder), config, split=split, streaming=streaming, cache_dir=str(cache_dir) if cache_dir else None
    )
