"""Pre-annotations for Label Studio: the project's spaCy NER (`newsstance.ner`) as `labels` results.

Each entity becomes a Label Studio result with code-point offsets (Python string indexes, which
is what Label Studio uses for Text), sent as a prediction in the same import call as its task.

Scores (for uncertainty-ordered annotation): spaCy's beam search gives every candidate entity a
probability. A region's `score` is the probability of exactly that span and label; the
prediction's score is the lowest of its regions' scores and of 1 - p for the most probable
entity the greedy pass did NOT predict, so a text is uncertain both when a predicted entity is
doubtful and when a likely entity was missed. Low score = ask a person first.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from newsstance.ner import DEFAULT_MODEL, LanguageRoutedNER, SpacyNER, pipeline_for, trimmed
from newsstance.scheme import ENTITIES_NAME, TEXT_NAME, Scheme

__all__ = [
    "LanguageRoutedPreannotator",
    "Preannotator",
    "ScoringPreannotator",
    "SpacyPreannotator",
    "entity_result",
    "prediction_score",
]

Result = dict[str, Any]
BEAM_WIDTH = 8


class Preannotator(Protocol):
    """Anything that turns texts into Label Studio result lists (one list per text)."""

    model_version: str

    def predict(self, texts: Sequence[str]) -> list[list[Result]]: ...


@runtime_checkable
class ScoringPreannotator(Protocol):
    """A preannotator that also says how sure it is: (results with region scores, prediction score)."""

    model_version: str

    def predict(self, texts: Sequence[str]) -> list[list[Result]]: ...

    def predict_scored(self, texts: Sequence[str]) -> list[tuple[list[Result], float]]: ...


def prediction_score(region_scores: Sequence[float], best_missed: float = 0.0) -> float:
    """The prediction's confidence: its least certain region, or the chance it missed an entity."""
    return round(min([*region_scores, 1.0 - best_missed]), 6)


def entity_result(region_id: str, start: int, end: int, text: str, label: str) -> Result:
    return {
        "id": region_id,
        "from_name": ENTITIES_NAME,
        "to_name": TEXT_NAME,
        "type": "labels",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
    }


class SpacyPreannotator:
    """spaCy NER -> scheme labels -> Label Studio results; `model_version` names the model and its version."""

    def __init__(self, scheme: Scheme, model: str = DEFAULT_MODEL, label_map_path: Path | None = None):
        self.ner = SpacyNER(scheme, model, label_map_path)
        self.label_map = self.ner.label_map
        self.model_version = self.ner.model_version

    def predict(self, texts: Sequence[str]) -> list[list[Result]]:
        return [
            [entity_result(f"p{index}", span.start, span.end, text, span.label) for index, span in enumerate(spans)]
            for text, spans in zip(texts, self.ner.spans(texts), strict=True)
        ]

    def predict_scored(self, texts: Sequence[str]) -> list[tuple[list[Result], float]]:
        """`predict` plus beam-search probabilities (region `score`s and one prediction score per text)."""
        predictions = self.predict(texts)
        out = []
        for results, candidates in zip(predictions, self._beam_probabilities(texts), strict=True):
            predicted = set()
            for result in results:
                key = (result["value"]["start"], result["value"]["end"], result["value"]["labels"][0])
                predicted.add(key)
                result["score"] = round(candidates.get(key, 0.0), 6)
            missed = max((p for key, p in candidates.items() if key not in predicted), default=0.0)
            out.append((results, prediction_score([r["score"] for r in results], missed)))
        return out

    def _beam_probabilities(self, texts: Sequence[str]) -> list[dict[tuple[int, int, str], float]]:
        """(start, end, scheme label) -> beam probability, per text (character offsets, trimmed)."""
        nlp = self.ner.nlp
        ner = nlp.get_pipe("ner")
        with nlp.select_pipes(disable=["ner"]):
            docs = list(nlp.pipe(texts))
        found = []
        for doc, scored in zip(docs, ner.scored_ents(ner.beam_parse(docs, beam_width=BEAM_WIDTH)), strict=True):
            candidates: dict[tuple[int, int, str], float] = {}
            for (start, end, spacy_label), probability in scored.items():
                label = self.label_map.get(
                    spacy_label if isinstance(spacy_label, str) else doc.vocab.strings[spacy_label]
                )
                if label is None:
                    continue
                span = doc[start:end]
                char_start, char_end = trimmed(doc.text, span.start_char, span.end_char)
                key = (char_start, char_end, label)
                candidates[key] = max(candidates.get(key, 0.0), float(probability))
            found.append(candidates)
        return found


class LanguageRoutedPreannotator:
    """Pre-annotation by each article's language: the spaCy model for the languages it covers
    (scored, for uncertainty order), natasha for Russian, and nothing for a language with no
    installed model (counted in `skipped`), never the English model on another language."""

    def __init__(self, scheme: Scheme, model: str = DEFAULT_MODEL, label_map_path: Path | None = None):
        self.scheme = scheme
        self.model = model
        self.label_map_path = label_map_path
        self.primary = SpacyPreannotator(scheme, model, label_map_path)
        self.model_version = self.primary.model_version
        self.router = LanguageRoutedNER(scheme, model, label_map_path)  # loads other languages' models on use
        self.skipped: Counter[str] = Counter()

    def predict_articles(
        self, texts: Sequence[str], languages: Sequence[str | None]
    ) -> list[tuple[list[Result], float | None, str] | None]:
        """Per text: (results, prediction score or None, model version), or None when not pre-annotated."""
        out: list[tuple[list[Result], float | None, str] | None] = [None] * len(texts)
        by_pipeline: dict[str, list[int]] = {}
        for index, language in enumerate(languages):
            pipeline = pipeline_for(language, self.model)
            if pipeline is None:
                self.skipped[(language or "unknown").split("-", 1)[0]] += 1
            else:
                by_pipeline.setdefault(pipeline, []).append(index)
        for pipeline, indexes in by_pipeline.items():
            batch = [texts[i] for i in indexes]
            if pipeline == self.model:
                for i, (results, score) in zip(indexes, self.primary.predict_scored(batch), strict=True):
                    out[i] = (results, score, self.model_version)
                continue
            tagger = self.router.tagger(pipeline)
            for i, text, spans in zip(indexes, batch, tagger.spans(batch), strict=True):
                results = [entity_result(f"p{n}", s.start, s.end, text, s.label) for n, s in enumerate(spans)]
                out[i] = (results, None, tagger.model_version)
        return out
