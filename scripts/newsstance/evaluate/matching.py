"""Entity matching of one article under the MUC / SemEval-2013 schemes, as nervaluate defines them.

nervaluate (1.x) walks predictions in order and, for each, the gold entities in order,
greedily: a gold entity is used at most once. The four schemes:

- strict: exact boundaries and label -> correct; otherwise overlapping a free gold -> incorrect;
- exact: exact boundaries, any label -> correct; otherwise overlapping -> incorrect;
- partial: exact boundaries -> correct; otherwise overlapping -> partial (counts 0.5);
- type: overlapping with the same label -> correct (closest boundaries win); overlapping another label -> incorrect.

Unmatched predictions are spurious, unmatched gold entities missed. "Overlapping" is
nervaluate's: the shared characters are at least `min_overlap` percent of the gold span.
Both lists are sorted by (start, end, label) first, so a model's output order does not
change its score. Only gold entities that can overlap a prediction are visited, which
gives nervaluate's result in linear time on typical articles.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections.abc import Sequence

import numpy as np

Entity = tuple[int, int, int]  # start, end (exclusive), label index

SCHEMES = ("strict", "exact", "partial", "type")
OUTCOMES = ("correct", "incorrect", "partial", "missed", "spurious")
CORRECT, INCORRECT, PARTIAL, MISSED, SPURIOUS = range(5)


def _sufficient_overlap(pred: Entity, gold: Entity, min_overlap: float) -> bool:
    shared = min(pred[1], gold[1]) - max(pred[0], gold[0])
    return shared > 0 and shared * 100.0 >= min_overlap * (gold[1] - gold[0])


class Window:
    """Gold entities sorted by start, with the range of those that can overlap a given prediction."""

    __slots__ = ("gold", "longest", "starts")

    def __init__(self, gold: Sequence[Entity]):
        self.gold = gold
        self.starts = [entity[0] for entity in gold]
        self.longest = max((entity[1] - entity[0] for entity in gold), default=0)

    def candidates(self, pred: Entity) -> range:
        return range(bisect_right(self.starts, pred[0] - self.longest), bisect_left(self.starts, pred[1]))


def boundary_counts(
    window: Window, pred: Sequence[Entity], *, with_label: bool, min_overlap: float
) -> tuple[int, int, int, int]:
    """nervaluate's strict (`with_label`) or exact scheme: (correct, incorrect, missed, spurious).

    The partial scheme has the same outcome with `incorrect` read as `partial`.
    """
    gold = window.gold
    used = [False] * len(gold)
    correct = incorrect = spurious = 0
    for p in pred:
        found = -1
        overlapping = -1
        for index in window.candidates(p):
            if used[index]:
                continue
            g = gold[index]
            if g[0] == p[0] and g[1] == p[1] and (not with_label or g[2] == p[2]):
                found = index
                break
            if overlapping < 0 and _sufficient_overlap(p, g, min_overlap):
                overlapping = index
        if found >= 0:
            correct += 1
            used[found] = True
        elif overlapping >= 0:
            incorrect += 1
            used[overlapping] = True
        else:
            spurious += 1
    return correct, incorrect, len(gold) - correct - incorrect, spurious


def type_counts(window: Window, pred: Sequence[Entity], *, min_overlap: float) -> tuple[int, int, int, int]:
    """nervaluate's ent_type scheme: (correct, incorrect, missed, spurious)."""
    gold = window.gold
    used = [False] * len(gold)
    correct = incorrect = spurious = 0
    for p in pred:
        best = -1
        best_distance = -1
        wrong_label = -1
        for index in window.candidates(p):
            if used[index]:
                continue
            g = gold[index]
            if not _sufficient_overlap(p, g, min_overlap):
                continue
            if g[2] == p[2]:
                distance = abs(p[0] - g[0]) + abs(p[1] - g[1])
                if best < 0 or distance < best_distance:
                    best, best_distance = index, distance
            elif wrong_label < 0:
                wrong_label = index
        if best >= 0:
            correct += 1
            used[best] = True
        elif wrong_label >= 0:
            incorrect += 1
            used[wrong_label] = True
        else:
            spurious += 1
    return correct, incorrect, len(gold) - correct - incorrect, spurious


def group_counts(gold: Sequence[Entity], pred: Sequence[Entity], min_overlap: float) -> list[list[int]]:
    """Outcome rows [scheme][outcome] of one group of sorted gold and predicted entities."""
    if not pred:
        return [[0, 0, 0, len(gold), 0]] * len(SCHEMES)
    window = Window(gold)
    s_correct, s_wrong, s_missed, s_spurious = boundary_counts(window, pred, with_label=True, min_overlap=min_overlap)
    e_correct, e_wrong, e_missed, e_spurious = boundary_counts(window, pred, with_label=False, min_overlap=min_overlap)
    t_correct, t_wrong, t_missed, t_spurious = type_counts(window, pred, min_overlap=min_overlap)
    return [
        [s_correct, s_wrong, 0, s_missed, s_spurious],
        [e_correct, e_wrong, 0, e_missed, e_spurious],
        [e_correct, 0, e_wrong, e_missed, e_spurious],
        [t_correct, t_wrong, 0, t_missed, t_spurious],
    ]


def article_counts(
    gold: Sequence[Entity], pred: Sequence[Entity], n_labels: int, min_overlap: float = 1.0
) -> np.ndarray:
    """Outcome counts of one article: array [scheme, group, outcome], group 0 = all labels, 1 + k = label k.

    Per-label groups score only that label's gold and predicted entities, as nervaluate does.
    """
    gold = sorted(gold)
    pred = sorted(pred)
    groups = [[[0] * len(OUTCOMES)] * len(SCHEMES) for _ in range(n_labels + 1)]
    groups[0] = group_counts(gold, pred, min_overlap)
    for label in {entity[2] for entity in gold} | {entity[2] for entity in pred}:
        groups[label + 1] = group_counts(
            [g for g in gold if g[2] == label], [p for p in pred if p[2] == label], min_overlap
        )
    return np.array(groups, dtype=np.int32).transpose(1, 0, 2)
