"""Where the project's files live.

The toolkit is run from a checkout (or any folder laid out like one): `schema/`,
`annotations/`, `corpus/`. The project root is `NEWSSTANCE_ROOT`, else the nearest
ancestor of the working directory holding `annotations/scheme.yaml`, else the
checkout this package was installed from.
"""

from __future__ import annotations

import glob
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


# --- the project's files (relative to the project root) ------------------------------------------

ANNOTATIONS_DIR = Path("annotations")
SCHEME_YAML = ANNOTATIONS_DIR / "scheme.yaml"
GUIDELINES_MD = ANNOTATIONS_DIR / "guidelines.md"
LABEL_CONFIG_XML = ANNOTATIONS_DIR / "label_config.xml"
ANNOTATIONS_JSONL = ANNOTATIONS_DIR / "annotations.jsonl"
CONFLICTS_JSONL = ANNOTATIONS_DIR / "conflicts.jsonl"
GOLD_JSONL = ANNOTATIONS_DIR / "gold.jsonl"
AGREEMENT_JSON = ANNOTATIONS_DIR / "agreement.json"
ADJUDICATION_JSON = ANNOTATIONS_DIR / "adjudication.json"  # gold articles per method, for the card
EXPORTS_DIR = ANNOTATIONS_DIR / "exports"
SAMPLE_GOLD_JSONL = ANNOTATIONS_DIR / "sample" / "gold.jsonl"
ARTICLES_GLOB = "corpus/normalized/articles*.jsonl"


def in_project(relative: Path | str) -> Path:
    """A project file: `relative` (one of the constants above) under the project root."""
    return project_root() / relative


def article_paths(pattern: str | None = None) -> list[Path]:
    """Article files matching the glob (relative to the project root unless absolute), sorted."""
    pattern = pattern or ARTICLES_GLOB
    full = pattern if Path(pattern).is_absolute() else str(project_root() / pattern)
    return [Path(p) for p in sorted(glob.glob(full))]
