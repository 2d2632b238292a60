"""Results remembered by text (the same related article on many pages is identified, checked and
signed once per worker) must be exactly the results computed afresh; and the fast paths of
the letter count and the input-root checks must agree with the slow ones they short-cut."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

import pytest

from newsstance.normalize import language, sources, steps
from newsstance.normalize.config import load_config
from newsstance.normalize.model import Article, Draft

CRAWL = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
TEASER = (
    "The harbour council of Westmarch voted on Tuesday to close the old ferry pier for repairs, "
    "after inspectors found that two of its timber piles had rotted through over the winter."
)


def test_memo_forgets_the_least_recently_used_first():
    memo: steps.TextMemo[int] = steps.TextMemo(size=2)
    memo.put("a", 1)
    memo.put("b", 2)
    assert memo.get("a") == 1  # "a" is now the most recently used
    memo.put("c", 3)
    assert memo.get("b") is None and memo.get("a") == 1 and memo.get("c") == 3


def test_each_purpose_has_one_memo_per_process():
    assert steps.memo("test-purpose") is steps.memo("test-purpose")
    assert steps.memo("test-purpose") is not steps.memo("other-purpose")


MAIN_TEXTS = [
    "Die Hafenverwaltung von Westmarch hat am Dienstag beschlossen, den alten Fähranleger zu schließen, "
    "nachdem Prüfer an zwei Holzpfählen schwere Schäden gefunden hatten.",
    "Repairs to the Westmarch ferry pier will take most of the spring, the council said, and the",
    "Ferry passengers will board at the fish quay until the pier reopens. The council has asked the "
    "operator to add two evening crossings while the smaller landing is in use.",
]


def _page(number: int, related_titles: list[str]) -> str:
    """An aggregator text page (the layout of corpus/raw/sample/agg_*.txt): its own main article
    (texts differ in language and in being cut), then related articles that all repeat one teaser."""
    main = MAIN_TEXTS[number % len(MAIN_TEXTS)]
    page = (
        f"\nFerry pier story {number}\n{main}\nHashtags\n#Westmarch\nComments\nNo comments yet...\nRelated Articles\n"
    )
    for position, title in enumerate(related_titles):
        page += f"\n\nThe Coast Courier\n{position + 3} hours ago\n- The Coast Courier\n{title}\n{TEASER}\n"
    return page


def test_records_are_the_same_whether_their_text_was_remembered_or_not(tmp_path, monkeypatch, file_tasks):
    pages = {f"site/{n:02d}.txt": _page(n, [f"Pier story {n}", f"Pier follow-up {n}"]) for n in range(6)}
    tasks = file_tasks(tmp_path, pages, CRAWL)

    def records(memo_size: int) -> list[dict]:
        monkeypatch.setattr(steps, "_MEMOS", {})
        monkeypatch.setattr(steps, "MEMO_SIZE", memo_size)
        chain = steps.build_steps(load_config(None))
        for step in chain:
            if isinstance(step, steps.AddSignatures):
                step._cache_size = memo_size
        out = [item for item in steps.run_steps(tasks, chain) if isinstance(item, Article)]
        return [{**a.record, "signature": a.signature.tolist(), "shingles": a.shingles} for a in out]

    remembered, fresh = records(steps.MEMO_SIZE), records(1)
    texts = [record["text"] for record in remembered]
    assert len(texts) > len(set(texts)) > 2  # the memo was used: the teaser recurs among other texts
    assert len({(r["language"], r["truncated"]) for r in remembered}) > 2  # results differ by text
    assert steps._MEMOS["signature"].size == 1  # the second run really had no room to remember
    assert remembered == fresh


def test_the_language_memo_keeps_declared_tags_apart(monkeypatch):
    monkeypatch.setattr(steps, "_MEMOS", {})
    short = "Pier closed."  # too short for the model: the declared tag decides
    drafts = [Draft(page=None, format=None, title="t", text=short, language=tag) for tag in ("de", "fr", None)]  # type: ignore[arg-type]
    decided = [d.language for d in steps.IdentifyLanguage(default_language=None).process(drafts)]
    assert decided == [language.decide(short, "de").language, language.decide(short, "fr").language, None]
    assert decided[0] != decided[1]


@pytest.mark.parametrize("alphabet", ["ascii", "mixed"])
def test_letter_count_fast_path_agrees_with_the_regex(alphabet):
    rng = random.Random(7)
    letters = [chr(c) for c in range(128)] + (["é", "ж", "中", "ß", "١", "_", "\u00a0"] if alphabet == "mixed" else [])
    not_letters = re.compile(r"[\W\d_]+")
    for _ in range(3000):
        text = "".join(rng.choice(letters) for _ in range(rng.randrange(0, 900)))
        assert language.letter_count(text) == min(language.SHORT_LETTERS, len(not_letters.sub("", text[:800])))


def _reference_root(path: str, rel: str) -> Path:
    depth = len(PurePosixPath(rel).parts)
    return Path(path).parents[depth - 1] if depth else Path(path)


@pytest.mark.parametrize(
    ("path", "rel"),
    [
        ("/a/b/c.txt", "b/c.txt"),
        ("/a/b/c.txt", "c.txt"),
        ("/c.txt", "c.txt"),
        ("/a//b/c", "b/c"),
        ("/a/./b/c", "b/c"),
        ("/a/b/c", "./c"),
        ("/a/b/c", ""),
    ],
)
def test_input_root_agrees_with_path_arithmetic(path, rel):
    assert sources.input_root(path, rel) == _reference_root(path, rel)


@pytest.mark.parametrize("path", ["/a/b", "/a", "/ab", "/a/b/../c", "/a//b", "/", "/a/"])
@pytest.mark.parametrize("root", ["/a", "/", "/a/b", "/ab"])
def test_is_inside_agrees_with_path_parents(path, root):
    resolved = Path(path)
    expected = resolved == Path(root) or Path(root) in resolved.parents
    assert sources.is_inside(path, Path(root)) is expected


def test_long_texts_are_computed_not_remembered(monkeypatch):
    monkeypatch.setattr(steps, "MEMO_MAX_CHARS", 50)
    memo: steps.TextMemo[int] = steps.TextMemo()
    calls: list[str] = []

    def count(text: str, _: object) -> int:
        calls.append(text)
        return len(text)

    short, long = "a short text", "a text longer than fifty characters, so never digested"
    assert [steps.remembered(memo, count, t) for t in (short, short, long, long)] == [12, 12, len(long), len(long)]
    assert calls == [short, long, long]  # the short text was computed once, the long one every time
