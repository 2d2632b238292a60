"""Character offsets carried from one version of a text to another (annotations follow the text).

A changed cleaner (`\\n` -> `\\n\\n`, a chrome line removed, a parser upgrade) changes an article's
text and so every offset after the change. `Alignment` diffs the two texts character by
character (rapidfuzz's Indel opcodes: C++, 0.2 CPU-s on a 35 KB article where difflib takes 32 s)
and maps a span through the blocks the texts share. A span is placed only when the new text
holds exactly the same characters at the mapped offsets; when the diff cannot place it (the span
straddles a change while every character of it survived), its text is looked up in the new text
and accepted only if it occurs exactly once; a span whose own characters changed is never placed. Anything else is reported (`SpanMove.placed` False) for a person
to decide, never moved by guesswork or dropped.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rapidfuzz.distance import Indel


@dataclass(frozen=True)
class SpanMove:
    """Where a span of the old text lands in the new one (`start`/`end` None when it cannot be placed)."""

    old_start: int
    old_end: int
    start: int | None
    end: int | None
    how: str  # "diff", "unique_text" or why it failed

    @property
    def placed(self) -> bool:
        return self.start is not None


class Alignment:
    """Offsets of `old` mapped onto `new` through the character blocks the two texts share."""

    def __init__(self, old: str, new: str, offset_map: Sequence[Sequence[int]] | None = None):
        self.old, self.new = old, new
        if offset_map is None:
            offset_map = compute_offset_map(old, new)
        blocks = [(start, start + length, dest) for start, dest, length in offset_map]
        self._starts = [block[0] for block in blocks]
        self._blocks = blocks

    @property
    def offset_map(self) -> list[list[int]]:
        return offset_map_of(self._blocks)

    def char(self, position: int) -> int | None:
        """New offset of the character at old `position`, None when that character was changed."""
        index = bisect_right(self._starts, position) - 1
        if index < 0:
            return None
        src_start, src_end, dest_start = self._blocks[index]
        return dest_start + position - src_start if position < src_end else None

    def span(self, start: int, end: int) -> SpanMove:
        """Map `old[start:end]`; placed only where the new text holds the same characters."""
        piece = self.old[start:end]
        if not 0 <= start < end <= len(self.old):
            return SpanMove(start, end, None, None, f"offsets {start}..{end} outside the old text")
        first, last = self.char(start), self.char(end - 1)
        if first is not None and last is not None and self.new[first : last + 1] == piece:
            return SpanMove(start, end, first, last + 1, "diff")
        kept = all(self.char(position) is not None for position in range(start, end))
        found = self.new.find(piece)
        if kept and found >= 0 and self.new.find(piece, found + 1) < 0:
            # Every character survived but the diff paired them with another copy: the one copy left is it.
            return SpanMove(start, end, found, found + len(piece), "unique_text")
        if not kept:
            why = "the new text changed characters inside the span"
        else:
            why = "the span's text is not in the new text" if found < 0 else "the span's text occurs several times"
        return SpanMove(start, end, None, None, why)


def compute_offset_map(old: str, new: str) -> list[list[int]]:
    """The blocks two texts share, `[old_start, new_start, length]` each: a compact, JSON-ready map
    (a normaliser can store it next to the raw text's location to map offsets without the diff)."""
    return [
        [op.src_start, op.dest_start, op.src_end - op.src_start] for op in Indel.opcodes(old, new) if op.tag == "equal"
    ]


def offset_map_of(blocks: Sequence[tuple[int, int, int]]) -> list[list[int]]:
    return [[start, dest, end - start] for start, end, dest in blocks]


def move_entities(
    alignment: Alignment, entities: Iterable[Mapping[str, Any]]
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Entities re-anchored on the new text, and the ones that could not be placed (unchanged)."""
    moved, lost = [], []
    for entity in entities:
        move = alignment.span(int(entity["start"]), int(entity["end"]))
        if move.placed:
            assert move.start is not None and move.end is not None
            new = {**entity, "start": move.start, "end": move.end}
            if "text" in new:
                new["text"] = alignment.new[move.start : move.end]
            moved.append(new)
        else:
            lost.append({**entity, "why": move.how})
    return moved, lost
