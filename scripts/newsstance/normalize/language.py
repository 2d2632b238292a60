"""The article's language, identified from its text.

Markup is unreliable (`lang="en"` on German pages is a CMS default, many pages have none), so
the text decides. The model is py3langid's (97 languages, shipped inside the PyPI package:
nothing is downloaded). Chosen by measurement (`benchmarks/language_bench.py`, 24 languages of
fictional news): it and lingua (low-accuracy mode) both labelled every paragraph right, py3langid
at ~0.2 ms per text against ~0.7 ms; lingua's high-accuracy mode needs 1.3 GB of memory.

How `language` is decided (recorded as `provenance.language_source`):

- `text`: the model, on text long enough to tell;
- `markup`: the text is short (a few words) or the model is unsure, and the page's or the record's
  declared language is one of the model's plausible candidates (or the text is too short for the
  model at all): markup breaks the tie;
- `null` language (`language_source: none`): the text is too short and nothing is declared.

A declared region ("pt-BR") is kept when the text confirms its primary language.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from newsstance.errors import EnvironmentProblem

LanguageSource = Literal["text", "markup", "none"]

MIN_LETTERS = 12  # below this the model is guessing: markup or nothing
SHORT_LETTERS = 200  # below this markup may break a tie
CONFIDENT = 0.90  # normalised probability above which the model is not second-guessed
PLAUSIBLE = 0.05  # a declared language at least this likely breaks the tie for short or unsure text
SAMPLE_CHARS = 3000  # identification reads the start of the text: enough, and cost stays flat
_LETTER = re.compile(r"[^\W\d_]")
_TAG = re.compile(r"([A-Za-z]{2,3})((?:[-_][A-Za-z0-9]{2,8})*)")
# py3langid codes that BCP-47 spells otherwise or that mean the same macrolanguage.
_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "ji": "yi", "jw": "jv"}


@dataclass(frozen=True, slots=True)
class LanguageDecision:
    language: str | None
    source: LanguageSource
    confidence: float | None = None


@lru_cache(maxsize=1)
def _identifier() -> object:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise EnvironmentProblem(
            f"the language model package py3langid is not installed ({exc}); reinstall newsstance with its dependencies"
        ) from exc
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def model_name() -> str:
    from importlib.metadata import version

    return f"py3langid@{version('py3langid')}"


def normalise_tag(value: str | None) -> str | None:
    """ "EN" -> "en", "pt_br" -> "pt-BR"; None for anything not shaped like a BCP-47 tag."""
    if not value or not (match := _TAG.fullmatch(value.strip())):
        return None
    primary = match.group(1).lower()
    subtags = [part for part in match.group(2).replace("_", "-").split("-") if part]
    rest = [tag.upper() if len(tag) == 2 and tag.isalpha() else tag for tag in subtags]
    return "-".join([_ALIASES.get(primary, primary), *rest])


def primary(tag: str) -> str:
    return tag.split("-", 1)[0]


def rank(text: str) -> list[tuple[str, float]]:
    """The model's candidates, most likely first, with normalised probabilities."""
    identifier = _identifier()
    ranked = identifier.rank(text[:SAMPLE_CHARS])  # type: ignore[attr-defined]
    return [(_ALIASES.get(code, code), float(prob)) for code, prob in ranked]


def letter_count(text: str, limit: int = SHORT_LETTERS) -> int:
    """Letters in `text`, counting stops at `limit` (enough to classify the text as long)."""
    count = 0
    for _ in _LETTER.finditer(text):
        count += 1
        if count >= limit:
            break
    return count


def decide(text: str, declared: str | None = None) -> LanguageDecision:
    """The language of `text` (see the module docstring); `declared` is the markup's or record's tag."""
    markup = normalise_tag(declared)
    letters = letter_count(text)
    if letters < MIN_LETTERS:
        return LanguageDecision(markup, "markup") if markup else LanguageDecision(None, "none")
    candidates = rank(text)
    best, confidence = candidates[0]
    if markup and primary(markup) == best:
        return LanguageDecision(markup, "text", confidence)  # keeps the declared region
    unsure = confidence < CONFIDENT or letters < SHORT_LETTERS
    if markup and unsure:
        declared_probability = next((p for code, p in candidates if code == primary(markup)), 0.0)
        if declared_probability >= PLAUSIBLE:
            return LanguageDecision(markup, "markup", declared_probability)
    return LanguageDecision(best, "text", confidence)
