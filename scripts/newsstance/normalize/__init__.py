"""newsstance.normalize: raw news pages -> schema-valid, deduplicated article records.

Python API for other stages (e.g. `newsstance run`):

    from newsstance.normalize import run_normalize
    summary = run_normalize(["corpus/raw"], "corpus/normalized", workers=2)
    print("\n".join(summary.render()))
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsstance.normalize.runner import Summary, run_normalize

__all__ = ["Summary", "run_normalize"]


def __getattr__(name: str) -> Any:
    # Lazy: importing the package (as the CLI does to register commands) stays cheap.
    if name in __all__:
        from newsstance.normalize import runner

        return getattr(runner, name)
    raise AttributeError(name)
