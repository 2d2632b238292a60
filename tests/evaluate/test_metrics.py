"""The scorer agrees with independent implementations: nervaluate, seqeval, scikit-learn, hand counts."""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import yaml
from nervaluate import Evaluator
from seqeval.metrics import classification_report as seqeval_report
from seqeval.metrics import f1_score as seqeval_f1
from seqeval.metrics.sequence_labeling import get_entities
from sklearn.metrics import accuracy_score, f1_score

from newsstance.errors import UserError
from newsstance.evaluate.bio import bio_chunks, bio_to_spans, spans_to_bio
from newsstance.evaluate.dataset import GoldArticle, GoldSplit, Span
from newsstance.evaluate.matching import SCHEMES, article_counts
from newsstance.evaluate.predictions import Prediction
from newsstance.evaluate.scoring import NOT_MATCHED, SystemCounts, count_matrix, metrics, system_matrix
from newsstance.scheme import Scheme, scheme_from_dict

NERVALUATE_NAMES = {"strict": "strict", "exact": "exact", "partial": "partial", "type": "ent_type"}


def score(scheme: Scheme, gold: Sequence[GoldArticle], preds: Sequence[Prediction]) -> dict[str, float]:
    counts = count_matrix(scheme, gold, preds, progress=False)
    return {key: float(values[0]) for key, values in metrics(scheme, counts.sum(axis=0, keepdims=True)).items()}


def word_article(
    number: int, n_words: int, entities: list[Span], stances: dict, tags: list[str], scheme: Scheme
) -> GoldArticle:
    """An article of words `w0 w1 ...` (token i spans [starts[i], ends[i]))."""
    words = [f"w{i}" for i in range(n_words)]
    starts, position = [], 0
    for word in words:
        starts.append(position)
        position += len(word) + 1
    ends = [s + len(w) for s, w in zip(starts, words, strict=True)]
    return GoldArticle(
        f"{number:016x}", " ".join(words), entities, stances, [scheme.bio_tags.index(t) for t in tags], starts, ends
    )


def token_ranges(rng: random.Random, n_words: int, count: int) -> list[tuple[int, int]]:
    """Non-overlapping token ranges [first, last]."""
    taken: set[int] = set()
    out = []
    for _ in range(count):
        first = rng.randrange(n_words)
        last = min(n_words - 1, first + rng.choice([0, 0, 1, 2, 4]))
        if taken.isdisjoint(range(first, last + 1)):
            taken.update(range(first, last + 1))
            out.append((first, last))
    return sorted(out)


def as_tags(ranges: list[tuple[int, int, str]], n_words: int) -> list[str]:
    tags = ["O"] * n_words
    for first, last, label in ranges:
        tags[first] = f"B-{label}"
        for index in range(first + 1, last + 1):
            tags[index] = f"I-{label}"
    return tags


@pytest.fixture(scope="module")
def word_corpus(scheme: Scheme) -> tuple[list[GoldArticle], list[Prediction], list[list[str]], list[list[str]]]:
    """Token-aligned gold and (noisy, non-overlapping) predictions, with their BIO tags built here."""
    rng = random.Random(3)
    labels = scheme.entity_names
    gold, preds, y_true, y_pred = [], [], [], []
    for number in range(80):
        n_words = rng.randint(4, 50)
        gold_ranges = [(f, la, rng.choice(labels[:4])) for f, la in token_ranges(rng, n_words, rng.randint(0, 6))]
        candidates = []
        for first, last, label in gold_ranges:
            roll = rng.random()
            if roll < 0.5:
                candidates.append((first, last, label))
            elif roll < 0.65:
                candidates.append((first, last, rng.choice(labels[:4])))
            elif roll < 0.85:
                candidates.append((first, min(n_words - 1, last + 1), label))
        candidates += [(f, la, rng.choice(labels[:4])) for f, la in token_ranges(rng, n_words, 2) if rng.random() < 0.5]
        pred_ranges, occupied = [], set()
        for first, last, label in candidates:  # keep predictions disjoint so BIO encodes every one
            if occupied.isdisjoint(range(first, last + 1)):
                pred_ranges.append((first, last, label))
                occupied.update(range(first, last + 1))
        article = word_article(number, n_words, [], {}, as_tags(gold_ranges, n_words), scheme)
        article.entities = [Span(article.token_starts[f], article.token_ends[la], lab) for f, la, lab in gold_ranges]
        gold.append(article)
        preds.append(
            Prediction(
                article.id,
                [Span(article.token_starts[f], article.token_ends[la], lab) for f, la, lab in pred_ranges],
                {},
            )
        )
        y_true.append(as_tags(gold_ranges, n_words))
        y_pred.append(as_tags(sorted(pred_ranges), n_words))
    return gold, preds, y_true, y_pred


def test_entity_schemes_equal_nervaluate_on_messy_spans(scheme: Scheme) -> None:
    """Character spans with overlaps, nesting, long spans (<1% overlap) and wrong labels."""
    rng = random.Random(11)
    labels = scheme.entity_names
    gold_docs, pred_docs, total = [], [], np.zeros((4, len(labels) + 1, 5), dtype=np.int64)

    def spans(count: int) -> list[tuple[int, int, int]]:
        out = set()
        for _ in range(count):
            start = rng.randrange(0, 400)
            out.add((start, start + rng.randint(1, rng.choice([4, 30, 250])), rng.randrange(len(labels))))
        return sorted(out)

    for _ in range(250):
        gold = spans(rng.randint(0, 8))
        pred = []
        for start, end, label in gold:
            roll = rng.random()
            if roll < 0.4:
                pred.append((start, end, label))
            elif roll < 0.55:
                pred.append((start, end, rng.randrange(len(labels))))
            elif roll < 0.8:
                pred.append((max(0, start + rng.randint(-3, 3)), end + rng.randint(0, 5), label))
        pred = sorted(set(pred) | set(spans(rng.randint(0, 3))))
        gold_docs.append(gold)
        pred_docs.append(pred)
        total += article_counts(gold, pred, len(labels))

    def as_dicts(docs: list) -> list:  # nervaluate spans have inclusive ends
        return [[{"label": labels[la], "start": s, "end": e - 1} for s, e, la in doc] for doc in docs]

    expected = Evaluator(as_dicts(gold_docs), as_dicts(pred_docs), tags=labels, loader="dict").evaluate()
    for index, name in enumerate(SCHEMES):
        theirs = expected["overall"][NERVALUATE_NAMES[name]]
        assert tuple(total[index, 0]) == (
            theirs.correct,
            theirs.incorrect,
            theirs.partial,
            theirs.missed,
            theirs.spurious,
        ), name
        for label_index, label in enumerate(labels, start=1):
            per_label = expected["entities"][label][NERVALUATE_NAMES[name]]
            assert tuple(total[index, label_index]) == (
                per_label.correct,
                per_label.incorrect,
                per_label.partial,
                per_label.missed,
                per_label.spurious,
            ), (name, label)


def test_strict_f1_equals_seqeval_and_nervaluate(scheme: Scheme, word_corpus) -> None:
    gold, preds, y_true, y_pred = word_corpus
    ours = score(scheme, gold, preds)
    assert ours["tokens/micro/f1"] == pytest.approx(seqeval_f1(y_true, y_pred))
    report = seqeval_report(y_true, y_pred, output_dict=True, zero_division=0)
    assert ours["tokens/macro/f1"] == pytest.approx(report["macro avg"]["f1-score"])
    for label in ("PERSON", "NORP", "ORG", "GPE"):
        assert ours[f"tokens/per_label/{label}/f1"] == pytest.approx(report[label]["f1-score"])
        assert ours[f"tokens/per_label/{label}/precision"] == pytest.approx(report[label]["precision"])
    # On token-aligned spans strict entity F1 and seqeval's chunk F1 are the same number.
    assert ours["entities/strict/micro/f1"] == pytest.approx(seqeval_f1(y_true, y_pred))
    nerv = Evaluator(
        [[{"label": s.label, "start": s.start, "end": s.end - 1} for s in g.entities] for g in gold],
        [[{"label": s.label, "start": s.start, "end": s.end - 1} for s in p.entities] for p in preds],
        tags=scheme.entity_names,
        loader="dict",
    ).evaluate()
    for name in SCHEMES:
        result = nerv["overall"][NERVALUATE_NAMES[name]]
        assert ours[f"entities/{name}/micro/f1"] == pytest.approx(result.f1)
        assert ours[f"entities/{name}/micro/precision"] == pytest.approx(result.precision)
        assert ours[f"entities/{name}/micro/recall"] == pytest.approx(result.recall)
    used = [label for label in scheme.entity_names if label in nerv["entities"]]
    assert ours["entities/strict/macro/f1"] == pytest.approx(
        np.mean([nerv["entities"][la]["strict"].f1 for la in used])
    )


def test_hand_computed_partial_matches(scheme: Scheme) -> None:
    """Gold PERSON, ORG, LOC, GPE; predicted: exact PERSON, ORG with a short start, PERSON on the LOC, spurious."""
    text = "x" * 100
    gold_entities = [Span(0, 10, "PERSON"), Span(20, 30, "ORG"), Span(40, 50, "LOC"), Span(70, 80, "GPE")]
    predicted = [Span(60, 65, "MISC"), Span(40, 50, "PERSON"), Span(22, 30, "ORG"), Span(0, 10, "PERSON")]
    article = GoldArticle("00000000000000aa", text, gold_entities, {}, [0], [0], [100])
    ours = score(scheme, [article], [Prediction(article.id, predicted, {})])
    # strict: 1 correct, 2 incorrect, 1 missed, 1 spurious -> P = R = 1/4.
    assert ours["entities/strict/micro/precision"] == pytest.approx(1 / 4)
    assert ours["entities/strict/micro/recall"] == pytest.approx(1 / 4)
    # exact: boundaries of PERSON and of the PERSON-on-LOC match -> 2/4.
    assert ours["entities/exact/micro/f1"] == pytest.approx(2 / 4)
    # partial: 2 correct + 0.5 x 1 partial over 4 -> 0.625.
    assert ours["entities/partial/micro/precision"] == pytest.approx(2.5 / 4)
    assert ours["entities/partial/micro/recall"] == pytest.approx(2.5 / 4)
    # type: PERSON and the overlapping ORG are correct; PERSON on LOC is incorrect -> 2/4.
    assert ours["entities/type/micro/f1"] == pytest.approx(2 / 4)
    # per label (nervaluate scores each label on its own entities): ORG strict 0, ORG partial 0.5.
    assert ours["entities/strict/per_label/ORG/f1"] == 0
    assert ours["entities/partial/per_label/ORG/f1"] == pytest.approx(0.5)
    assert ours["entities/strict/per_label/PERSON/precision"] == pytest.approx(1 / 2)
    # EVENT is neither in gold nor predicted: not evaluated (null), and left out of the macro average.
    assert np.isnan(ours["entities/strict/per_label/EVENT/f1"])
    per_label = [ours[f"entities/strict/per_label/{label}/f1"] for label in ("PERSON", "ORG", "LOC", "GPE", "MISC")]
    assert ours["entities/strict/macro/f1"] == pytest.approx(np.mean(per_label))


def test_prediction_order_does_not_change_the_score(scheme: Scheme) -> None:
    gold = [(0, 10, 0), (5, 12, 1), (20, 30, 2)]
    pred = [(0, 12, 1), (5, 10, 0), (21, 30, 2), (40, 41, 3)]
    counts = article_counts(gold, pred, 7)
    assert (article_counts(gold[::-1], pred[::-1], 7) == counts).all()


def test_stance_scores_equal_scikit_learn(scheme: Scheme) -> None:
    rng = random.Random(5)
    names = scheme.document_stance_names
    gold, preds = [], []
    for number in range(120):
        stances_gold = {t: rng.choices(names, weights=[4, 3, 2, 1])[0] for t in scheme.target_ids}
        if number % 17 == 0:
            stances_gold["carbon_levy"] = None  # unlabelled: not scored
        stances_pred = {
            t: (v if rng.random() < 0.5 else rng.choice(names))
            for t, v in stances_gold.items()
            if v is not None and rng.random() < 0.95
        }  # some targets left unpredicted
        entities = [Span(i * 10, i * 10 + 5, "PERSON", rng.choice([*scheme.stance_names, None])) for i in range(4)]
        predicted = [
            Span(s.start, s.end, "ORG", rng.choice([*scheme.stance_names, None]))
            for s in entities
            if rng.random() < 0.7
        ]
        gold.append(GoldArticle(f"{number:016x}", "x" * 60, entities, stances_gold, [], [], []))
        preds.append(Prediction(gold[-1].id, predicted, stances_pred))
    ours = score(scheme, gold, preds)

    def check(prefix: str, y_true: list[str], y_pred: list[str], f_avg: bool = True) -> None:
        present = [name for name in names if name in y_true or name in y_pred]
        assert ours[f"{prefix}/accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        assert ours[f"{prefix}/macro_f1"] == pytest.approx(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        )
        if f_avg:
            favor, against = f1_score(y_true, y_pred, labels=["favor", "against"], average=None, zero_division=0)
            assert ours[f"{prefix}/f_avg"] == pytest.approx((favor + against) / 2)

    pooled_true, pooled_pred = [], []
    for target in scheme.target_ids:
        pairs = [
            (g.stances[target], p.stances.get(target, "<none>"))
            for g, p in zip(gold, preds, strict=True)
            if g.stances[target] is not None
        ]
        check(f"document_stance/per_target/{target}", [t for t, _ in pairs], [p for _, p in pairs])
        pooled_true += [t for t, _ in pairs]
        pooled_pred += [p for _, p in pairs]
    check("document_stance/overall", pooled_true, pooled_pred)

    mention_true, mention_pred = [], []
    for article, prediction in zip(gold, preds, strict=True):
        by_span = {(s.start, s.end): s.stance for s in prediction.entities}
        for span in article.entities:
            if span.stance is not None and (span.start, span.end) in by_span:
                mention_true.append(span.stance)
                mention_pred.append(by_span[(span.start, span.end)] or "<none>")
    check("mention_stance", mention_true, mention_pred, f_avg=False)


def test_chunks_equal_seqeval_get_entities_on_arbitrary_tags(scheme: Scheme) -> None:
    rng = random.Random(2)
    tags = [rng.randrange(len(scheme.bio_tags)) if rng.random() < 0.6 else 0 for _ in range(3000)]
    labels, first, last = bio_chunks(np.array(tags))
    ours = [(scheme.entity_names[la], int(f), int(e)) for la, f, e in zip(labels, first, last, strict=True)]
    assert ours == get_entities([scheme.bio_tags[t] for t in tags])


def test_spans_to_bio_projects_misaligned_and_overlapping_spans() -> None:
    starts, ends = [0, 4, 10, 15], [3, 9, 14, 20]  # "aaa bbbbb cccc ddddd"
    assert spans_to_bio(starts, ends, [(5, 12, 1)]) == [0, 3, 4, 0]  # touches tokens 1-2
    assert spans_to_bio(starts, ends, [(4, 14, 0), (10, 20, 2)]) == [0, 1, 2, 0]  # overlap dropped
    assert spans_to_bio(starts, ends, [(9, 10, 0)]) == [0, 0, 0, 0]  # only whitespace
    assert bio_to_spans([1, 2, 0, 4], starts, ends) == [(0, 9, 0), (15, 20, 1)]


def test_spans_to_bio_agrees_with_the_release_tokeniser(scheme: Scheme, fixture_rows: dict) -> None:
    release_tokens = pytest.importorskip("newsstance.release.tokens")
    for row in fixture_rows["train"]:
        spans = [(e["start"], e["end"], e["label"]) for e in row["entities"]]
        starts, ends = release_tokens.token_offsets(row["text"], [o for s in spans for o in s[:2]])
        assert spans_to_bio(starts, ends, spans) == release_tokens.bio_tag_ids(starts, ends, spans)
        assert spans_to_bio(row["token_starts"], row["token_ends"], spans) == row["ner_tags"]


def test_f_avg_averages_the_schemes_polar_labels(scheme: Scheme) -> None:
    """F_avg is the mean F1 over `polar_stance_labels`, whatever they are called (scikit-learn as reference)."""
    custom = dataclasses.replace(scheme, polar_stance_labels=(scheme.stance_names[1], scheme.stance_names[2]))
    rng = random.Random(8)
    names = scheme.document_stance_names
    target = scheme.target_ids[0]
    gold, preds, y_true, y_pred = [], [], [], []
    for number in range(90):
        truth = rng.choice(names)
        guess = truth if rng.random() < 0.6 else rng.choice(names)
        gold.append(GoldArticle(f"{number:016x}", "x", [], {target: truth}, [], [], []))
        preds.append(Prediction(gold[-1].id, [], {target: guess}))
        y_true.append(truth)
        y_pred.append(guess)
    ours = score(custom, gold, preds)
    expected = f1_score(y_true, y_pred, labels=list(custom.polar_stance_labels), average=None, zero_division=0)
    assert ours[f"document_stance/per_target/{target}/f_avg"] == pytest.approx(float(np.mean(expected)))
    assert scheme.polar_stance_names == ["favor", "against"]  # the shipped scheme names them explicitly
    default = dataclasses.replace(scheme, polar_stance_labels=())
    assert default.polar_stance_names == scheme.stance_names[:2]


def test_compared_mention_stance_uses_the_gold_mentions_both_systems_matched(scheme: Scheme) -> None:
    """Two systems matching different mentions are scored on the intersection (scikit-learn as reference)."""
    rng = random.Random(13)
    stances = scheme.stance_names
    gold, preds_a, preds_b = [], [], []
    for number in range(60):
        entities = [Span(i * 10, i * 10 + 5, "PERSON", rng.choice([*stances, None])) for i in range(5)]
        gold.append(GoldArticle(f"{number:016x}", "x" * 60, entities, {}, [], [], []))
        for preds in (preds_a, preds_b):
            found = [Span(s.start, s.end, "ORG", rng.choice(stances)) for s in entities if rng.random() < 0.6]
            preds.append(Prediction(gold[-1].id, found, None))
    split = GoldSplit.from_articles(gold, scheme)
    systems = []
    for preds in (preds_a, preds_b):
        system = SystemCounts(scheme, split)
        for row, prediction in enumerate(preds):
            system.add(row, prediction)
        systems.append(system.finish())
    a, b = systems
    for system, other, preds in ((a, b, preds_a), (b, a, preds_b)):
        sums = system_matrix(system, matched=other.mention != NOT_MATCHED).sum(axis=0, keepdims=True)
        ours = {key: float(values[0]) for key, values in metrics(scheme, sums).items()}
        y_true, y_pred = [], []
        for number, article in enumerate(gold):
            by_a = {(s.start, s.end): s.stance for s in preds_a[number].entities or []}
            by_b = {(s.start, s.end): s.stance for s in preds_b[number].entities or []}
            mine = {(s.start, s.end): s.stance for s in preds[number].entities or []}
            for span in article.entities:
                key = (span.start, span.end)
                if span.stance is not None and key in by_a and key in by_b:
                    y_true.append(span.stance)
                    y_pred.append(mine[key])
        assert len(y_true) > 20
        assert ours["mention_stance/accuracy"] == pytest.approx(accuracy_score(y_true, y_pred))
        present = [name for name in stances if name in y_true or name in y_pred]
        assert ours["mention_stance/macro_f1"] == pytest.approx(
            f1_score(y_true, y_pred, labels=present, average="macro", zero_division=0)
        )
        assert ours["mention_stance/coverage"] == pytest.approx(
            len(y_true) / sum(s.stance is not None for g in gold for s in g.entities)
        )


def test_streaming_in_small_batches_and_any_order_gives_the_same_counts(scheme: Scheme, word_corpus) -> None:
    """Token chunks are counted per batch of articles and rows arrive in file order: neither changes a count."""
    gold, preds, y_true, y_pred = word_corpus
    split = GoldSplit.from_articles(gold, scheme)
    whole = count_matrix(scheme, gold, preds, progress=False)
    system = SystemCounts(scheme, split, batch=3)
    order = list(range(len(gold)))
    random.Random(4).shuffle(order)
    for row in order:
        system.add(row, preds[row])
    streamed = system_matrix(system.finish())
    assert (streamed == whole).all()
    ours = {key: float(v[0]) for key, v in metrics(scheme, streamed.sum(axis=0, keepdims=True)).items()}
    assert ours["tokens/micro/f1"] == pytest.approx(seqeval_f1(y_true, y_pred))


def test_polar_labels_must_be_stance_labels(scheme: Scheme) -> None:
    data = yaml.safe_load((Path(__file__).resolve().parents[2] / "annotations" / "scheme.yaml").read_text())
    data["polar_stance_labels"] = ["favor", "pro"]
    with pytest.raises(UserError, match="polar_stance_labels pro not among the stance labels"):
        scheme_from_dict(data)
    del data["polar_stance_labels"]
    assert scheme_from_dict(data).polar_stance_names == [label["name"] for label in data["stance_labels"][:2]]
