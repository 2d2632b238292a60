"""Per-article count vectors and the metrics computed from summed counts.

Every figure `newsstance evaluate` reports is a function of counts summed over articles
(outcomes per scheme and label, chunk matches, confusion counts). So each article becomes
one integer row of a matrix, the point estimate is the metric of the column sums, and a
bootstrap resample is the metric of a weighted sum - one matrix product for all resamples
(see `bootstrap.py`). The metric functions work on a batch of summed rows at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from tqdm import tqdm

from newsstance.evaluate.bio import bio_chunks, spans_to_bio
from newsstance.evaluate.dataset import GoldArticle, GoldSplit, Span
from newsstance.evaluate.matching import (
    CORRECT,
    INCORRECT,
    MISSED,
    OUTCOMES,
    PARTIAL,
    SCHEMES,
    SPURIOUS,
    article_counts,
)
from newsstance.evaluate.predictions import Prediction
from newsstance.scheme import Scheme

Metrics = dict[str, np.ndarray]  # "entities/strict/micro/f1" -> values, one per summed row


@dataclass(frozen=True)
class Layout:
    """Column blocks of the count matrix; each block is reshaped to its own axes."""

    n_labels: int
    n_targets: int
    n_doc_classes: int
    n_stance_classes: int

    @property
    def blocks(self) -> dict[str, tuple[int, ...]]:
        return {
            # [scheme, group (0 = all, 1 + label), outcome]
            "entities": (len(SCHEMES), self.n_labels + 1, len(OUTCOMES)),
            # [label, (true positives, predicted chunks, gold chunks)]
            "tokens": (self.n_labels, 3),
            # [target, (pairs, correct, tp per class..., predicted per class..., gold per class...)]
            "document": (self.n_targets, 2 + 3 * self.n_doc_classes),
            # [(gold mentions with a stance, matched pairs, correct, tp..., predicted..., gold...)]
            "mention": (3 + 3 * self.n_stance_classes,),
        }

    @property
    def width(self) -> int:
        return sum(int(np.prod(shape)) for shape in self.blocks.values())

    def view(self, sums: np.ndarray, block: str) -> np.ndarray:
        """The block's columns of `sums` (rows x width), reshaped to rows x block axes."""
        offset = 0
        for name, shape in self.blocks.items():
            size = int(np.prod(shape))
            if name == block:
                return sums[:, offset : offset + size].reshape(sums.shape[0], *shape)
            offset += size
        raise KeyError(block)


def layout_for(scheme: Scheme) -> Layout:
    return Layout(
        len(scheme.entity_names), len(scheme.target_ids), len(scheme.document_stance_names), len(scheme.stance_names)
    )


def _token_counts(
    gold: GoldSplit, rows: Sequence[int], spans: Sequence[Sequence[tuple[int, int, int]]], n_labels: int
) -> np.ndarray:
    """seqeval's chunk counts (tp, predicted, gold) per label for a batch of articles: rows x label x 3.

    Gold tags come from the release, predictions are projected onto its tokens. The batch's
    articles are concatenated with an O between them, as seqeval does with sentences.
    """
    lengths = np.array([gold.tag_offsets[row + 1] - gold.tag_offsets[row] + 1 for row in rows], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    gold_tags = np.zeros(int(offsets[-1]), dtype=np.int64)
    pred_tags = np.zeros(int(offsets[-1]), dtype=np.int64)
    for number, (row, predicted) in enumerate(zip(rows, spans, strict=True)):
        begin, stop = gold.tag_offsets[row], gold.tag_offsets[row + 1]
        at = offsets[number]
        gold_tags[at : at + stop - begin] = gold.tags[begin:stop]
        if predicted:
            pred_tags[at : at + stop - begin] = spans_to_bio(
                gold.token_starts[begin:stop], gold.token_ends[begin:stop], predicted
            )
    total = int(offsets[-1]) + 1
    n_rows = len(rows)
    out = np.zeros((n_rows, n_labels, 3), dtype=np.int32)

    def keyed(tags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels, first, last = bio_chunks(tags)
        keys = (first * total + last) * n_labels + labels
        articles = np.searchsorted(offsets, first, side="right") - 1
        return keys, labels, articles

    gold_keys, gold_labels, gold_rows = keyed(gold_tags)
    pred_keys, pred_labels, pred_rows = keyed(pred_tags)
    hits = np.isin(pred_keys, gold_keys)
    for column, (labels, articles, weights) in enumerate(
        (
            (pred_labels, pred_rows, hits.astype(np.float64)),
            (pred_labels, pred_rows, None),
            (gold_labels, gold_rows, None),
        )
    ):
        flat = articles * n_labels + labels
        counts = np.bincount(flat, weights=weights, minlength=n_rows * n_labels)
        out[:, :, column] = counts.reshape(n_rows, n_labels)
    return out


def _class_counts(gold: np.ndarray, pred: np.ndarray, n_classes: int) -> np.ndarray:
    """(pairs, correct, tp per class, predicted per class, gold per class) over the last axis; -1 = none."""
    present = gold >= 0
    classes = np.arange(n_classes)
    gold_hot = (gold[..., None] == classes) & present[..., None]
    pred_hot = (pred[..., None] == classes) & present[..., None]
    correct = present & (gold == pred)
    return np.concatenate(
        [
            present[..., None],
            correct[..., None],
            gold_hot & pred_hot,
            pred_hot,
            gold_hot,
        ],
        axis=-1,
    ).astype(np.int32)


NOT_MATCHED = -2  # mention_pred of a gold mention no predicted span matches exactly


class SystemCounts:
    """Counts of one system, filled one article at a time as its predictions stream in.

    Entity outcomes are counted per article on arrival; token chunks in batches of `batch`
    articles; document and mention stance are kept as one small integer per gold item
    (the predicted class) and counted at the end, so two systems can be scored on the same
    gold mentions. Memory: a few bytes per gold entity and a row of counts per article.
    """

    def __init__(self, scheme: Scheme, gold: GoldSplit, min_overlap: float = 1.0, batch: int = 256):
        self.scheme = scheme
        self.gold = gold
        self.layout = layout_for(scheme)
        self.min_overlap = min_overlap
        self.batch = batch
        self.label_index = {name: index for index, name in enumerate(scheme.entity_names)}
        self.stance_index = {name: index for index, name in enumerate(scheme.stance_names)}
        self.doc_index = {name: index for index, name in enumerate(scheme.document_stance_names)}
        self.target_column = {target: column for column, target in enumerate(scheme.target_ids)}
        n = len(gold)
        self.entities = np.zeros((n, *self.layout.blocks["entities"]), dtype=np.int32)
        self.tokens = np.zeros((n, *self.layout.blocks["tokens"]), dtype=np.int32)
        self.document = np.full((n, self.layout.n_targets), -1, dtype=np.int8)
        self.mention = np.full(len(gold.entity_starts), NOT_MATCHED, dtype=np.int8)
        self._rows: list[int] = []
        self._spans: list[list[tuple[int, int, int]]] = []

    def add(self, row: int, prediction: Prediction) -> None:
        """Count one article's predictions (row = its position in the gold split)."""
        if prediction.entities is not None:
            predicted = [(span.start, span.end, self.label_index[span.label]) for span in prediction.entities]
            self.entities[row] = article_counts(
                self.gold.entities(row), predicted, self.layout.n_labels, self.min_overlap
            )
            self._rows.append(row)
            self._spans.append(predicted)
            if len(self._rows) >= self.batch:
                self._flush()
            self._mentions(row, prediction.entities)
        if prediction.stances:
            for target, value in prediction.stances.items():
                self.document[row, self.target_column[target]] = self.doc_index[value]

    def _mentions(self, row: int, entities: Sequence[Span]) -> None:
        begin, stop = int(self.gold.entity_offsets[row]), int(self.gold.entity_offsets[row + 1])
        if begin == stop or not entities:
            return
        stance_of: dict[tuple[int, int], str | None] = {}
        for span in entities:
            stance_of.setdefault((span.start, span.end), span.stance)
        starts = self.gold.entity_starts[begin:stop].tolist()
        ends = self.gold.entity_ends[begin:stop].tolist()
        for offset, key in enumerate(zip(starts, ends, strict=True)):
            if key in stance_of:
                value = stance_of[key]
                self.mention[begin + offset] = -1 if value is None else self.stance_index[value]

    def _flush(self) -> None:
        if self._rows:
            self.tokens[self._rows] = _token_counts(self.gold, self._rows, self._spans, self.layout.n_labels)
            self._rows, self._spans = [], []

    def finish(self) -> SystemCounts:
        self._flush()
        return self


def _per_article(values: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Sums of consecutive row groups `offsets[i]:offsets[i + 1]` of `values` (entities -> articles)."""
    cumulative = np.concatenate((np.zeros((1, *values.shape[1:]), dtype=np.int64), np.cumsum(values, axis=0)))
    return cumulative[offsets[1:]] - cumulative[offsets[:-1]]


def system_matrix(system: SystemCounts, matched: np.ndarray | None = None) -> np.ndarray:
    """One row of counts per article (layout width). Mention stance is scored on the gold mentions
    with a stance that the system matched exactly and, when given, that `matched` marks too
    (the other system's matches, for a paired comparison on the same mentions)."""
    gold, layout = system.gold, system.layout
    n = len(gold)
    document = _class_counts(gold.document.astype(np.int64), system.document.astype(np.int64), layout.n_doc_classes)
    with_stance = gold.entity_stances >= 0
    usable = with_stance & (system.mention != NOT_MATCHED)
    if matched is not None:
        usable &= matched
    pairs = _class_counts(
        np.where(usable, gold.entity_stances, -1).astype(np.int64),
        system.mention.astype(np.int64),
        layout.n_stance_classes,
    )
    mention = _per_article(
        np.concatenate([with_stance[:, None].astype(np.int32), pairs], axis=1), gold.entity_offsets
    ).astype(np.int32)
    return np.concatenate(
        [
            system.entities.reshape(n, -1),
            system.tokens.reshape(n, -1),
            document.reshape(n, -1),
            mention.reshape(n, -1),
        ],
        axis=1,
    )


def count_matrix(
    scheme: Scheme,
    gold: Sequence[GoldArticle],
    preds: Sequence[Prediction],
    min_overlap: float = 1.0,
    progress: bool = True,
) -> np.ndarray:
    """One row of counts per article (gold and predictions aligned by position; in-memory convenience)."""
    system = SystemCounts(scheme, GoldSplit.from_articles(gold, scheme), min_overlap)
    pairs = tqdm(
        enumerate(preds),
        total=len(preds),
        desc="matching",
        unit="article",
        disable=None if progress else True,
        leave=False,
    )
    for row, prediction in pairs:
        system.add(row, prediction)
    return system_matrix(system.finish())


# --- metrics from summed counts ----------------------------------------------------------------


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, 0 where the denominator is 0 (nervaluate's and sklearn's zero_division=0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / np.where(denominator > 0, denominator, 1), 0.0)


def _f1(precision: np.ndarray, recall: np.ndarray) -> np.ndarray:
    return _ratio(2 * precision * recall, precision + recall)


def _masked_mean(values: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Mean over the last axis where `mask`; NaN when nothing is present (no such class or label)."""
    count = mask.sum(axis=-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, (values * mask).sum(axis=-1) / np.where(count > 0, count, 1), np.nan)


def _only_present(values: np.ndarray, present: np.ndarray) -> np.ndarray:
    """NaN (reported as null) for a label or class with neither gold nor predictions: it was not evaluated."""
    return np.where(present, values, np.nan)


def _prf(tp: np.ndarray, predicted: np.ndarray, gold: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, gold)
    return precision, recall, _f1(precision, recall)


def entity_metrics(counts: np.ndarray, label_names: Sequence[str]) -> Metrics:
    """counts: rows x scheme x group x outcome. Micro = all labels together, macro = mean over labels present."""
    out: Metrics = {}
    correct = counts[..., CORRECT]
    partial = counts[..., PARTIAL]
    actual = correct + counts[..., INCORRECT] + partial + counts[..., SPURIOUS]
    possible = correct + counts[..., INCORRECT] + partial + counts[..., MISSED]
    for index, scheme in enumerate(SCHEMES):
        hits = correct[:, index] + (0.5 * partial[:, index] if scheme in ("partial", "type") else 0)
        precision = _ratio(hits, actual[:, index])
        recall = _ratio(hits, possible[:, index])
        f1 = _f1(precision, recall)
        present = (actual[:, index, 1:] + possible[:, index, 1:]) > 0
        for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"entities/{scheme}/micro/{metric}"] = values[:, 0]
            out[f"entities/{scheme}/macro/{metric}"] = _masked_mean(values[:, 1:], present)
            for label_number, label in enumerate(label_names, start=1):
                out[f"entities/{scheme}/per_label/{label}/{metric}"] = _only_present(
                    values[:, label_number], present[:, label_number - 1]
                )
    return out


def token_metrics(counts: np.ndarray, label_names: Sequence[str]) -> Metrics:
    """seqeval (default mode) precision/recall/F1 from chunk counts: rows x label x (tp, predicted, gold)."""
    out: Metrics = {}
    tp, predicted, gold = counts[..., 0], counts[..., 1], counts[..., 2]
    micro = _prf(tp.sum(axis=1), predicted.sum(axis=1), gold.sum(axis=1))
    per_label = _prf(tp, predicted, gold)
    present = (predicted + gold) > 0
    for metric, micro_values, label_values in zip(("precision", "recall", "f1"), micro, per_label, strict=True):
        out[f"tokens/micro/{metric}"] = micro_values
        out[f"tokens/macro/{metric}"] = _masked_mean(label_values, present)
        for number, label in enumerate(label_names):
            out[f"tokens/per_label/{label}/{metric}"] = _only_present(label_values[:, number], present[:, number])
    return out


def classification_metrics(
    counts: np.ndarray, class_names: Sequence[str], prefix: str, *, polar: Sequence[str] = ()
) -> Metrics:
    """Accuracy, macro-F1 over classes present in gold or predictions, per-class P/R/F1, and F_avg.

    counts: rows x (pairs, correct, tp..., predicted..., gold...). F_avg is SemEval-2016's
    mean F1 over the polar classes (the scheme's `polar_stance_labels`, e.g. favor and against);
    no F_avg when `polar` is empty.
    """
    n_classes = len(class_names)
    pairs, correct = counts[:, 0], counts[:, 1]
    tp = counts[:, 2 : 2 + n_classes]
    predicted = counts[:, 2 + n_classes : 2 + 2 * n_classes]
    gold = counts[:, 2 + 2 * n_classes : 2 + 3 * n_classes]
    precision, recall, f1 = _prf(tp, predicted, gold)
    with np.errstate(invalid="ignore", divide="ignore"):
        accuracy = np.where(pairs > 0, correct / np.where(pairs > 0, pairs, 1), np.nan)
    out: Metrics = {
        f"{prefix}/accuracy": accuracy,
        f"{prefix}/macro_f1": _masked_mean(f1, (predicted + gold) > 0),  # sklearn: labels=classes present
    }
    if polar:
        columns = [class_names.index(name) for name in polar]
        out[f"{prefix}/f_avg"] = np.where(pairs > 0, f1[:, columns].mean(axis=1), np.nan)
    present = (predicted + gold) > 0
    for number, name in enumerate(class_names):
        for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"{prefix}/per_class/{name}/{metric}"] = _only_present(values[:, number], present[:, number])
    return out


def metrics(scheme: Scheme, sums: np.ndarray, targets: Sequence[str] | None = None) -> Metrics:
    """Every reported figure for each row of summed counts (rows x layout width).

    The overall document stance pools `targets` (default: all; pass the predicted ones).
    """
    layout = layout_for(scheme)
    sums = np.atleast_2d(sums)
    polar = scheme.polar_stance_names
    out = entity_metrics(layout.view(sums, "entities"), scheme.entity_names)
    out.update(token_metrics(layout.view(sums, "tokens"), scheme.entity_names))
    document = layout.view(sums, "document")
    pooled = [number for number, target in enumerate(scheme.target_ids) if targets is None or target in targets]
    out.update(
        classification_metrics(
            document[:, pooled].sum(axis=1), scheme.document_stance_names, "document_stance/overall", polar=polar
        )
    )
    for number, target in enumerate(scheme.target_ids):
        out.update(
            classification_metrics(
                document[:, number], scheme.document_stance_names, f"document_stance/per_target/{target}", polar=polar
            )
        )
    mention = layout.view(sums, "mention")
    out.update(classification_metrics(mention[:, 1:], scheme.stance_names, "mention_stance"))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mention_stance/coverage"] = np.where(
            mention[:, 0] > 0, mention[:, 1] / np.where(mention[:, 0] > 0, mention[:, 0], 1), np.nan
        )
    return out


def raw_counts(scheme: Scheme, totals: np.ndarray, targets: Sequence[str] | None = None) -> dict[str, int]:
    """Integer counts worth reporting next to the figures (support, outcomes per scheme)."""
    layout = layout_for(scheme)
    pooled = [number for number, target in enumerate(scheme.target_ids) if targets is None or target in targets]
    totals = np.atleast_2d(totals)
    out: dict[str, int] = {}
    entities = layout.view(totals, "entities")[0]
    for index, scheme_name in enumerate(SCHEMES):
        for group, group_name in enumerate(["micro", *(f"per_label/{label}" for label in scheme.entity_names)]):
            for outcome_index, outcome in enumerate(OUTCOMES):
                out[f"entities/{scheme_name}/{group_name}/{outcome}"] = int(entities[index, group, outcome_index])
    tokens = layout.view(totals, "tokens")[0]
    out["tokens/micro/true_positives"] = int(tokens[:, 0].sum())
    out["tokens/micro/predicted"] = int(tokens[:, 1].sum())
    out["tokens/micro/support"] = int(tokens[:, 2].sum())
    for number, label in enumerate(scheme.entity_names):
        out[f"tokens/per_label/{label}/support"] = int(tokens[number, 2])
    document = layout.view(totals, "document")[0]
    n_classes = layout.n_doc_classes
    out["document_stance/overall/pairs"] = int(document[pooled, 0].sum())
    for number, target in enumerate(scheme.target_ids):
        out[f"document_stance/per_target/{target}/pairs"] = int(document[number, 0])
        for class_number, name in enumerate(scheme.document_stance_names):
            out[f"document_stance/per_target/{target}/per_class/{name}/support"] = int(
                document[number, 2 + 2 * n_classes + class_number]
            )
    for class_number, name in enumerate(scheme.document_stance_names):
        out[f"document_stance/overall/per_class/{name}/support"] = int(
            document[pooled, 2 + 2 * n_classes + class_number].sum()
        )
    mention = layout.view(totals, "mention")[0]
    out["mention_stance/gold_with_stance"] = int(mention[0])
    out["mention_stance/matched"] = int(mention[1])
    for class_number, name in enumerate(scheme.stance_names):
        out[f"mention_stance/per_class/{name}/support"] = int(mention[3 + 2 * layout.n_stance_classes + class_number])
    return out
