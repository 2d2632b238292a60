"""Baselines to beat: majority stance, a train-set gazetteer, the spaCy pre-annotation model and a
TF-IDF + logistic-regression document stance classifier.

Each baseline learns (at most) from the train split and writes a predictions file in the
format `newsstance evaluate` reads, so baselines and user models go through one scorer.
A baseline writes only the tasks it predicts: `stance` has no `entities` (NER is then
reported as "not predicted", not as 0).
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from newsstance.errors import UserError
from newsstance.evaluate.dataset import GoldArticle, Span
from newsstance.ner import DEFAULT_MODEL, SpacyNER
from newsstance.scheme import Scheme

BASELINES = ("majority", "gazetteer", "spacy", "stance")


def _most_common(counter: Counter, order: Sequence[str]) -> str | None:
    """Most frequent value; ties go to the earlier name in the scheme, so the choice is deterministic."""
    if not counter:
        return None
    return max(counter, key=lambda name: (counter[name], -order.index(name)))


def majority_stances(train: Iterable[GoldArticle], scheme: Scheme) -> dict[str, str]:
    """Most frequent document stance per target in train (targets never labelled are left out)."""
    counters: dict[str, Counter] = defaultdict(Counter)
    for article in train:
        for target, value in article.stances.items():
            if value is not None:
                counters[target][value] += 1
    stances = {}
    for target in scheme.target_ids:
        value = _most_common(counters[target], scheme.document_stance_names)
        if value is not None:
            stances[target] = value
    return stances


def majority_mention_stance(train: Iterable[GoldArticle], scheme: Scheme) -> str | None:
    counter = Counter(span.stance for article in train for span in article.entities if span.stance)
    return _most_common(counter, scheme.stance_names)


def prediction_record(
    article_id: str, entities: Iterable[Span] | None, stances: dict[str, str] | None
) -> dict[str, Any]:
    """One line of a predictions file; None leaves the task out (not predicted)."""
    record: dict[str, Any] = {"id": article_id}
    if entities is not None:
        out_entities = []
        for span in sorted(entities, key=lambda s: (s.start, s.end, s.label)):
            entity: dict[str, Any] = {"start": span.start, "end": span.end, "label": span.label}
            if span.stance is not None:
                entity["stance"] = span.stance
            out_entities.append(entity)
        record["entities"] = out_entities
    if stances is not None:
        record["stances"] = dict(stances)
    return record


def majority_predictions(
    train: Sequence[GoldArticle], articles: Sequence[GoldArticle], scheme: Scheme
) -> Iterator[dict[str, Any]]:
    """Document stance only (no `entities`: NER is reported as not predicted)."""
    stances = majority_stances(train, scheme)
    for article in articles:
        yield prediction_record(article.id, None, stances)


class Gazetteer:
    """Entity strings seen in train with their most frequent label (and mention stance).

    Tagging is leftmost-longest: one regex alternation of every string, longest first,
    anchored at word boundaries, so `Port Vessen Council` wins over `Port Vessen`.
    """

    def __init__(self, train: Iterable[GoldArticle], scheme: Scheme):
        labels: dict[str, Counter] = defaultdict(Counter)
        stances: dict[str, Counter] = defaultdict(Counter)
        for article in train:
            for span in article.entities:
                surface = article.text[span.start : span.end]
                if surface.strip():
                    labels[surface][span.label] += 1
                    if span.stance:
                        stances[surface][span.stance] += 1
        self.labels: dict[str, str] = {
            surface: label
            for surface, counter in labels.items()
            if (label := _most_common(counter, scheme.entity_names)) is not None
        }
        self.stances = {surface: _most_common(counter, scheme.stance_names) for surface, counter in stances.items()}
        names = sorted(self.labels, key=lambda s: (-len(s), s))
        self.pattern = re.compile(r"(?<!\w)(?:" + "|".join(map(re.escape, names)) + r")(?!\w)") if names else None

    def __len__(self) -> int:
        return len(self.labels)

    def tag(self, text: str) -> list[Span]:
        if self.pattern is None:
            return []
        return [
            Span(match.start(), match.end(), self.labels[match.group()], self.stances.get(match.group()))
            for match in self.pattern.finditer(text)
        ]


def gazetteer_predictions(
    train: Sequence[GoldArticle], articles: Sequence[GoldArticle], scheme: Scheme
) -> Iterator[dict[str, Any]]:
    gazetteer = Gazetteer(train, scheme)
    stances = majority_stances(train, scheme)
    for article in articles:
        yield prediction_record(article.id, gazetteer.tag(article.text), stances)


def spacy_predictions(
    train: Sequence[GoldArticle],
    articles: Sequence[GoldArticle],
    scheme: Scheme,
    model: str = DEFAULT_MODEL,
    batch_size: int = 32,
    label_map: Path | None = None,
) -> Iterator[dict[str, Any]]:
    """spaCy entities mapped to the scheme (as in pre-annotation); document and mention stance by train majority."""
    ner = SpacyNER(scheme, model, label_map)
    stances = majority_stances(train, scheme)
    mention = majority_mention_stance(train, scheme)
    spans = ner.spans((article.text for article in articles), batch_size=batch_size)
    for article, found in zip(articles, spans, strict=True):
        yield prediction_record(article.id, [Span(s.start, s.end, s.label, mention) for s in found], stances)


class StanceClassifier:
    """Document stance per target: TF-IDF (word 1-2-grams, sublinear tf) + logistic regression, fit on train.

    One model per target, trained on the train articles labelled for it (every answer of the
    scheme, "not about" included). A target whose train labels have one class predicts that
    class; a target never labelled in train is not predicted. Deterministic (lbfgs, no sampling).
    """

    def __init__(self, train: Sequence[GoldArticle], scheme: Scheme):
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import Pipeline

        self.models: dict[str, Pipeline | str] = {}
        for target in scheme.target_ids:
            labelled = [(article.text, article.stances[target]) for article in train if article.stances.get(target)]
            classes = sorted({label for _, label in labelled if label is not None})
            if not classes:
                continue
            if len(classes) == 1:
                self.models[target] = classes[0]
                continue
            model = Pipeline(
                [
                    ("tfidf", TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1, lowercase=True)),
                    ("logreg", LogisticRegression(max_iter=2000, class_weight="balanced", C=10.0)),
                ]
            )
            model.fit([text for text, _ in labelled], [label for _, label in labelled])
            self.models[target] = model

    def predict(self, texts: Sequence[str]) -> list[dict[str, str]]:
        out: list[dict[str, str]] = [{} for _ in texts]
        if not texts:
            return out
        for target, model in self.models.items():
            labels = [model] * len(texts) if isinstance(model, str) else [str(v) for v in model.predict(list(texts))]
            for record, label in zip(out, labels, strict=True):
                record[target] = label
        return out


def stance_predictions(
    train: Sequence[GoldArticle], articles: Sequence[GoldArticle], scheme: Scheme, batch_size: int = 512
) -> Iterator[dict[str, Any]]:
    """Document stance only (no `entities`: this baseline does not do NER)."""
    classifier = StanceClassifier(train, scheme)
    for begin in range(0, len(articles), batch_size):
        batch = articles[begin : begin + batch_size]
        for article, stances in zip(batch, classifier.predict([a.text for a in batch]), strict=True):
            yield prediction_record(article.id, None, stances)


def baseline_predictions(
    name: str,
    train: Sequence[GoldArticle],
    articles: Sequence[GoldArticle],
    scheme: Scheme,
    model: str = DEFAULT_MODEL,
    label_map: Path | None = None,
) -> Iterator[dict[str, Any]]:
    if name == "majority":
        return majority_predictions(train, articles, scheme)
    if name == "gazetteer":
        return gazetteer_predictions(train, articles, scheme)
    if name == "spacy":
        return spacy_predictions(train, articles, scheme, model, label_map=label_map)
    if name == "stance":
        return stance_predictions(train, articles, scheme)
    raise UserError(f"unknown baseline {name!r} (known: {', '.join(BASELINES)})")
