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
from newsstance.evaluate.dataset import GoldArticle
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


def _token_blocks(
    gold: Sequence[GoldArticle], preds: Sequence[Prediction], label_index: dict[str, int], n_labels: int
) -> np.ndarray:
    """seqeval's chunk counts per article and label, from the release's gold tags and projected predictions.

    Articles are concatenated with an O between them, as seqeval does with sentences.
    """
    lengths = np.array([len(article.ner_tags) + 1 for article in gold], dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    gold_tags = np.zeros(int(offsets[-1]), dtype=np.int64)
    pred_tags = np.zeros(int(offsets[-1]), dtype=np.int64)
    for number, (article, prediction) in enumerate(zip(gold, preds, strict=True)):
        begin = offsets[number]
        gold_tags[begin : begin + len(article.ner_tags)] = article.ner_tags
        spans = [(span.start, span.end, label_index[span.label]) for span in prediction.entities]
        if spans:
            pred_tags[begin : begin + len(article.ner_tags)] = spans_to_bio(
                article.token_starts, article.token_ends, spans
            )
    total = int(offsets[-1]) + 1
    n_articles = len(gold)
    out = np.zeros((n_articles, n_labels, 3), dtype=np.int32)

    def keyed(tags: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        labels, first, last = bio_chunks(tags)
        keys = (first * total + last) * n_labels + labels
        articles = np.searchsorted(offsets, first, side="right") - 1
        return keys, labels, articles

    gold_keys, gold_labels, gold_articles = keyed(gold_tags)
    pred_keys, pred_labels, pred_articles = keyed(pred_tags)
    hits = np.isin(pred_keys, gold_keys)
    for column, (labels, articles, weights) in enumerate(
        (
            (pred_labels, pred_articles, hits.astype(np.float64)),
            (pred_labels, pred_articles, None),
            (gold_labels, gold_articles, None),
        )
    ):
        flat = articles * n_labels + labels
        counts = np.bincount(flat, weights=weights, minlength=n_articles * n_labels)
        out[:, :, column] = counts.reshape(n_articles, n_labels)
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


def count_matrix(
    scheme: Scheme,
    gold: Sequence[GoldArticle],
    preds: Sequence[Prediction],
    min_overlap: float = 1.0,
    progress: bool = True,
) -> np.ndarray:
    """One row of counts per article (gold and predictions aligned by position)."""
    layout = layout_for(scheme)
    label_index = {name: index for index, name in enumerate(scheme.entity_names)}
    stance_index = {name: index for index, name in enumerate(scheme.stance_names)}
    doc_index = {name: index for index, name in enumerate(scheme.document_stance_names)}
    n = len(gold)
    entities = np.zeros((n, *layout.blocks["entities"]), dtype=np.int32)
    doc_gold = np.full((n, layout.n_targets), -1, dtype=np.int64)
    doc_pred = np.full((n, layout.n_targets), -1, dtype=np.int64)
    mention_counts = np.zeros((n, 1), dtype=np.int32)
    mention_gold: list[int] = []
    mention_pred: list[int] = []
    mention_article: list[int] = []
    pairs = tqdm(
        enumerate(zip(gold, preds, strict=True)),
        total=n,
        desc="matching",
        unit="article",
        disable=None if progress else True,
        leave=False,
    )
    for number, (article, prediction) in pairs:
        gold_entities = [(span.start, span.end, label_index[span.label]) for span in article.entities]
        pred_entities = [(span.start, span.end, label_index[span.label]) for span in prediction.entities]
        entities[number] = article_counts(gold_entities, pred_entities, layout.n_labels, min_overlap)
        for column, target in enumerate(scheme.target_ids):
            gold_value = article.stances.get(target)
            if gold_value is not None:
                doc_gold[number, column] = doc_index[gold_value]
                predicted = prediction.stances.get(target)
                doc_pred[number, column] = doc_index[predicted] if predicted is not None else -1
        predicted_stance: dict[tuple[int, int], str | None] = {}
        for span in prediction.entities:
            predicted_stance.setdefault((span.start, span.end), span.stance)
        for span in article.entities:
            if span.stance is None:
                continue
            mention_counts[number, 0] += 1
            if (span.start, span.end) in predicted_stance:
                value = predicted_stance[(span.start, span.end)]
                mention_gold.append(stance_index[span.stance])
                mention_pred.append(stance_index[value] if value is not None else -1)
                mention_article.append(number)
    tokens = _token_blocks(gold, preds, label_index, layout.n_labels)
    document = _class_counts(doc_gold, doc_pred, layout.n_doc_classes)
    pair_counts = _class_counts(
        np.array(mention_gold, dtype=np.int64), np.array(mention_pred, dtype=np.int64), layout.n_stance_classes
    )
    mention = np.zeros((n, 2 + 3 * layout.n_stance_classes), dtype=np.int32)
    np.add.at(mention, np.array(mention_article, dtype=np.int64), pair_counts)
    return np.concatenate(
        [
            entities.reshape(n, -1),
            tokens.reshape(n, -1),
            document.reshape(n, -1),
            mention_counts,
            mention,
        ],
        axis=1,
    )


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


def classification_metrics(counts: np.ndarray, class_names: Sequence[str], prefix: str, *, f_avg: bool) -> Metrics:
    """Accuracy, macro-F1 over classes present in gold or predictions, per-class P/R/F1, and F_avg.

    counts: rows x (pairs, correct, tp..., predicted..., gold...). F_avg is SemEval-2016's
    mean of the favor and against F1.
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
    if f_avg:
        favor, against = class_names.index("favor"), class_names.index("against")
        out[f"{prefix}/f_avg"] = np.where(pairs > 0, (f1[:, favor] + f1[:, against]) / 2, np.nan)
    present = (predicted + gold) > 0
    for number, name in enumerate(class_names):
        for metric, values in (("precision", precision), ("recall", recall), ("f1", f1)):
            out[f"{prefix}/per_class/{name}/{metric}"] = _only_present(values[:, number], present[:, number])
    return out


def metrics(scheme: Scheme, sums: np.ndarray) -> Metrics:
    """Every reported figure for each row of summed counts (rows x layout width)."""
    layout = layout_for(scheme)
    sums = np.atleast_2d(sums)
    out = entity_metrics(layout.view(sums, "entities"), scheme.entity_names)
    out.update(token_metrics(layout.view(sums, "tokens"), scheme.entity_names))
    document = layout.view(sums, "document")
    out.update(
        classification_metrics(
            document.sum(axis=1), scheme.document_stance_names, "document_stance/overall", f_avg=True
        )
    )
    for number, target in enumerate(scheme.target_ids):
        out.update(
            classification_metrics(
                document[:, number], scheme.document_stance_names, f"document_stance/per_target/{target}", f_avg=True
            )
        )
    mention = layout.view(sums, "mention")
    out.update(classification_metrics(mention[:, 1:], scheme.stance_names, "mention_stance", f_avg=False))
    with np.errstate(invalid="ignore", divide="ignore"):
        out["mention_stance/coverage"] = np.where(
            mention[:, 0] > 0, mention[:, 1] / np.where(mention[:, 0] > 0, mention[:, 0], 1), np.nan
        )
    return out


def raw_counts(scheme: Scheme, totals: np.ndarray) -> dict[str, int]:
    """Integer counts worth reporting next to the figures (support, outcomes per scheme)."""
    layout = layout_for(scheme)
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
    out["document_stance/overall/pairs"] = int(document[:, 0].sum())
    for number, target in enumerate(scheme.target_ids):
        out[f"document_stance/per_target/{target}/pairs"] = int(document[number, 0])
        for class_number, name in enumerate(scheme.document_stance_names):
            out[f"document_stance/per_target/{target}/per_class/{name}/support"] = int(
                document[number, 2 + 2 * n_classes + class_number]
            )
    for class_number, name in enumerate(scheme.document_stance_names):
        out[f"document_stance/overall/per_class/{name}/support"] = int(
            document[:, 2 + 2 * n_classes + class_number].sum()
        )
    mention = layout.view(totals, "mention")[0]
    out["mention_stance/gold_with_stance"] = int(mention[0])
    out["mention_stance/matched"] = int(mention[1])
    for class_number, name in enumerate(scheme.stance_names):
        out[f"mention_stance/per_class/{name}/support"] = int(mention[3 + 2 * layout.n_stance_classes + class_number])
    return out
