"""`annotations/conflicts.jsonl`: the one reader and the one writer of the conflicts file.

Every stage that finds something a person must decide writes it here, one JSON object a line,
and `newsstance studio review` pushes the file back to Label Studio. One key says who wrote a
line: `stage` (STAGES). Each stage replaces only its own lines (and only the ones it
regenerates), keeping every other line byte for byte, so re-runs are idempotent.

    {"stage": one of STAGES, "kind": str, "annotation_id": int|null, "article_id": str|null,
     "reason": str, "detail": {...}, ...stage-specific keys}

`kind` is the stage's own classification: the problem kind for `pull`/`align`/`import`
(`span`, `label`, `overlap`, ...), `"adjudication"` for `adjudicate` (whose `reason` is a code).
Lines written before `stage` existed are migrated on read: `"kind": "adjudication"` means
`adjudicate`, any other line came from `pull`; migrated lines are rewritten with their stage.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsstance.errors import UserError
from newsstance.records import atomic_write, dumps, loads

PULL = "pull"
ADJUDICATE = "adjudicate"
ALIGN = "align"  # re-anchoring annotations/gold onto a changed text (`studio push --update`)
IMPORT = "import"  # `newsstance import-annotations`
STAGES = (PULL, ADJUDICATE, ALIGN, IMPORT)
ADJUDICATION_KIND = "adjudication"

Conflict = dict[str, Any]


def stage_of(entry: Mapping[str, Any]) -> str:
    """The stage that wrote an entry, also for lines written before `stage` existed."""
    stage = entry.get("stage")
    if isinstance(stage, str) and stage:
        return stage
    return ADJUDICATE if entry.get("kind") == ADJUDICATION_KIND else PULL


@dataclass(frozen=True)
class ConflictLine:
    """One line of the file: its bytes (kept verbatim when rewritten) and its entry."""

    raw: bytes
    entry: Conflict
    migrated: bool = False

    @property
    def stage(self) -> str:
        return stage_of(self.entry)

    def to_bytes(self) -> bytes:
        return dumps(self.entry) if self.migrated else self.raw


def read_lines(path: Path) -> list[ConflictLine]:
    """Every entry of the conflicts file (none when it does not exist); bad lines are a UserError."""
    if not path.is_file():
        return []
    lines = []
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from None
    with handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                entry = loads(line)
            except ValueError as exc:
                raise UserError(f"{path}:{number}: not valid JSON ({exc})") from None
            if not isinstance(entry, dict):
                raise UserError(f"{path}:{number}: a conflict entry must be a JSON object")
            migrated = not isinstance(entry.get("stage"), str) or not entry.get("stage")
            if migrated:
                entry = {**entry, "stage": stage_of(entry)}
            lines.append(ConflictLine(line.rstrip(b"\r\n"), entry, migrated))
    return lines


def read_conflicts(path: Path, stage: str | None = None) -> list[Conflict]:
    """Entries of the file, optionally of one stage only."""
    return [line.entry for line in read_lines(path) if stage is None or line.stage == stage]


def replace_conflicts(
    path: Path,
    new: Iterable[Conflict],
    *,
    replaced: Callable[[Conflict], bool],
    existing: list[ConflictLine] | None = None,
) -> int:
    """Rewrite the file: lines for which `replaced(entry)` holds go, `new` entries are appended.

    Every kept line stays byte for byte (migrated legacy lines gain their `stage`). Returns the
    number of lines written."""
    existing = read_lines(path) if existing is None else existing
    count = 0
    with atomic_write(path) as handle:
        for line in existing:
            if not replaced(line.entry):
                handle.write(line.to_bytes() + b"\n")
                count += 1
        for entry in new:
            if not isinstance(entry.get("stage"), str):
                raise ValueError(f"conflict entry without a stage: {entry!r}")
            handle.write(dumps(entry) + b"\n")
            count += 1
    return count


def by_article(entries: Iterable[Conflict]) -> dict[str, list[Conflict]]:
    """Entries grouped by article id (entries without one are left out)."""
    grouped: dict[str, list[Conflict]] = {}
    for entry in entries:
        article_id = entry.get("article_id")
        if isinstance(article_id, str):
            grouped.setdefault(article_id, []).append(entry)
    return grouped
