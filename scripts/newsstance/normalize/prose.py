"""Word counting and prose detection that work in every script.

Whitespace splitting counts a Japanese, Chinese or Thai paragraph as one "word", so a rule such
as "an article has a paragraph of at least six words" quarantines every page in those scripts.
Here a text is measured in *word units* from character classes:

- letters of space-free scripts (Han, Hiragana, Katakana, Thai, Lao, Khmer, Myanmar, Tibetan)
  count per character, scaled by the script's typical word length (Han/kana ~1.5 characters a
  word, Thai-like scripts ~4);
- everything else (Latin, Cyrillic, Greek, Arabic, Hebrew, Devanagari, Hangul, ...) counts
  whitespace-separated runs that contain a letter or digit.

Sentence punctuation also differs per script (。！？ ؟ । ။ ።), and some scripts (Thai, Lao,
Khmer) have none at all, which the truncation check must know before it calls a body cut.
"""

from __future__ import annotations

import re

# Han (CJK unified + extension A + compatibility), Hiragana, Katakana (+ half-width), and CJK punctuation-free
# ideographic letters.
_CJK = "\u3040-\u30ff\u31f0-\u31ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f"
# Thai, Lao, Tibetan, Myanmar, Khmer: written without spaces between words.
_SOUTHEAST = "\u0e00-\u0e7f\u0e80-\u0eff\u0f00-\u0fff\u1000-\u109f\u1780-\u17ff"
SPACE_FREE_CHARS = _CJK + _SOUTHEAST  # a regex character-class body (release.tokens uses it too)
_CJK_CHAR = re.compile(f"[{_CJK}]")
_SOUTHEAST_CHAR = re.compile(f"[{_SOUTHEAST}]")
_SPACE_FREE = re.compile(f"[{_CJK}{_SOUTHEAST}]+")
_WORDISH = re.compile(r"[^\W_]")
_WORD_TOKEN = re.compile(r"\S*[^\W_]\S*")  # a whitespace-separated token holding a letter or digit
CJK_CHARS_PER_WORD = 1.5
SOUTHEAST_CHARS_PER_WORD = 4.0
MIN_PROSE_WORDS = 6

# Sentence-final punctuation across scripts (closing quotes/brackets are looked through by callers).
SENTENCE_END = frozenset(".!?。！？．｡؟۔।॥။።፧፨։᙮᠃᠉⸮‼⁇⁈⁉")
_NO_SENTENCE_PUNCTUATION = re.compile(f"[{_SOUTHEAST}]")


def word_units(text: str) -> float:
    """About how many words `text` holds, in any script (see the module docstring)."""
    if not _SPACE_FREE.search(text):
        return len(_WORD_TOKEN.findall(text))
    cjk = len(_CJK_CHAR.findall(text))
    southeast = len(_SOUTHEAST_CHAR.findall(text))
    spaced = len(_WORD_TOKEN.findall(_SPACE_FREE.sub(" ", text)))
    return spaced + cjk / CJK_CHARS_PER_WORD + southeast / SOUTHEAST_CHARS_PER_WORD


def is_prose(paragraph: str, min_words: float = MIN_PROSE_WORDS) -> bool:
    """A real sentence rather than a navigation fragment: at least `min_words` word units."""
    return len(paragraph) >= min_words and word_units(paragraph) >= min_words


def has_prose(paragraphs: list[str]) -> bool:
    """Navigation leftovers are short fragments; an article has at least one real sentence."""
    return any(is_prose(p) for p in paragraphs)


def ends_without_punctuation_by_script(text: str) -> bool:
    """True when the text ends in a script that does not mark sentence ends (Thai, Lao, Khmer, ...):
    a missing full stop there is no evidence of a cut."""
    tail = text.rstrip()[-1:]
    return bool(tail) and bool(_NO_SENTENCE_PUNCTUATION.match(tail))


def is_space_free(text: str) -> bool:
    """Is most of the text's lettering in a script written without spaces between words?"""
    letters = len(_WORDISH.findall(text))
    if not letters:
        return False
    return (len(_CJK_CHAR.findall(text)) + len(_SOUTHEAST_CHAR.findall(text))) * 2 > letters
