"""Where the project's files live.

The toolkit is run from a checkout (or any folder laid out like one): `schema/`,
`annotations/`, `corpus/`. The project root is `NEWSSTANCE_ROOT`, else the nearest
ancestor of the working directory holding `annotations/scheme.yaml`, else the
checkout this package was installed from.
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent
INSTALL_ROOT = PACKAGE_DIR.parents[1]


def _is_root(path: Path) -> bool:
    return (path / "annotations" / "scheme.yaml").is_file() and (path / "schema").is_dir()


def project_root() -> Path:
    env = os.environ.get("NEWSSTANCE_ROOT")
    if env:
        return Path(env).resolve()
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _is_root(candidate):
            return candidate
    return INSTALL_ROOT


def schema_dir() -> Path:
    """Schemas ship with the toolkit (the checkout it was installed from)."""
    local = project_root() / "schema"
    return local if (local / "article.schema.json").is_file() else INSTALL_ROOT / "schema"


def schema_path(name: str) -> Path:
    return schema_dir() / name


def state_dir() -> Path:
    """Git-ignored local state: Label Studio data dir, its virtualenv, credentials."""
    return Path(os.environ.get("NEWSSTANCE_STATE_DIR", project_root() / ".newsstance"))
