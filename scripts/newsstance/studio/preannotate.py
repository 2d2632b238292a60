"""Pre-annotations for Label Studio: the project's spaCy NER (`newsstance.ner`) as `labels` results.

Each entity becomes a Label Studio result with code-point offsets (Python string indexes, which
is what Label Studio uses for Text), sent as a prediction in the same import call as its task.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from newsstance.ner import DEFAULT_MODEL, SpacyNER
from newsstance.scheme import ENTITIES_NAME, TEXT_NAME, Scheme

__all__ = ["DEFAULT_MODEL", "Preannotator", "SpacyPreannotator", "entity_result"]

Result = dict[str, Any]


class Preannotator(Protocol):
    """Anything that turns texts into Label Studio result lists (one list per text)."""

    model_version: str

    def predict(self, texts: Sequence[str]) -> list[list[Result]]: ...


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
