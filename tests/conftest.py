"""Fixtures shared by every stage's tests.

Stage-specific fixtures live in `tests/<stage>/conftest.py` (e.g. the session-scoped
Label Studio server in `tests/studio/conftest.py`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_SEEDS = REPO_ROOT.parent / "shared" / "seeds"


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def sample_raw_dir() -> Path:
    """The embedded fictional sample corpus (every reader format and edge case)."""
    return REPO_ROOT / "corpus" / "raw" / "sample"


@pytest.fixture(scope="session")
def seeds_dir() -> Path:
    """Real scraped pages in ../shared/seeds; tests using them skip when absent."""
    if not SHARED_SEEDS.is_dir() or not any(SHARED_SEEDS.glob("*.txt")):
        pytest.skip("../shared/seeds is not present on this machine")
    return SHARED_SEEDS
