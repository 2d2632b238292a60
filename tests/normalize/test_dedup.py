"""Duplicate detection: signatures, identity/exact/near merges, canonical choice, no chaining.

Texts are generated here from fictional words; true Jaccard is computed with plain
Python sets, independently of the MinHash code under test.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import unicodedata
from collections.abc import Callable

import numpy as np
import pytest

from newsstance.normalize.dedup import (
    NUM_PERM,
    DedupItem,
    DedupResult,
    cluster,
    estimated_jaccard,
    shingle_hashes,
    signature,
)

Jaccard = Callable[[str, str], float]  # the `true_jaccard` fixture (conftest.py): plain Python sets


def fictional_words(rng: random.Random, count: int) -> list[str]:
    """Distinct made-up words (so every 5-gram of a text built from them is distinct)."""
    words: set[str] = set()
    while len(words) < count:
        words.add("".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(rng.randint(2, 4))))
    return sorted(words)


def item(ident: str, text: str, identity: str | None = None, truncated: bool = False) -> DedupItem:
    return DedupItem(
        id=ident,
        identity=identity or f"url:https://fict.example/{ident}",
        text_sha256=hashlib.sha256(text.encode()).hexdigest(),
        length=len(text),
        truncated=truncated,
        signature=signature(text),
        shingles=len(shingle_hashes(text)),
    )


def substitute(words: list[str], positions: list[int], rng: random.Random) -> list[str]:
    edited = list(words)
    for pos in positions:
        edited[pos] = f"zq{rng.randrange(10**9)}"
    return edited


def topic_article(rng: random.Random, topic: list[str], sentences: int) -> str:
    """Same-topic prose: shared names and templates, independent content."""
    out = []
    for _ in range(sentences):
        a, b, c = rng.sample(topic, 3)
        template = rng.choice(
            [
                f"Minister {a.title()} said on Monday that the {b} would {c} the council.",
                f"The {a} of {b.title()} told reporters the {c} was not ready.",
                f"{a.title()} and {b} {c} again after the vote in {topic[0].title()}.",
            ]
        )
        out.append(template)
        out.append(" ".join(rng.choice(topic) for _ in range(rng.randint(6, 14))).capitalize() + ".")
    return " ".join(out)


@pytest.fixture(scope="module")
def vocabulary() -> list[str]:
    return fictional_words(random.Random(7), 3000)


# -- signature -------------------------------------------------------------------------------------------------------


def test_signature_is_deterministic_picklable_uint32() -> None:
    text = "Harbour master Velo Drask closed the Tidewater locks at dawn, citing the surge."
    first = signature(text)
    assert first.dtype == np.uint32
    assert first.shape == (NUM_PERM,)
    assert np.array_equal(first, signature(text))
    assert np.array_equal(pickle.loads(pickle.dumps(first)), first)


def test_signature_ignores_case_punctuation_and_compatibility_forms() -> None:
    plain = "don t stop the quay vote 3 4 says mayor ornella"
    assert np.array_equal(signature("Don’t — stop the «QUAY» vote… 3×4, says Mayor Ornella!"), signature(plain))
    assert np.array_equal(signature("ｄｏｎ'ｔ stop the quay vote 3 4 says mayor ornella"), signature(plain))


def test_short_texts_use_what_they_have() -> None:
    assert np.array_equal(signature("Breaking: Quay closed"), signature("breaking quay closed."))
    assert not np.array_equal(signature("Breaking: Quay closed"), signature("Breaking: Quay opened"))
    # Texts without any word must not all look identical.
    assert not np.array_equal(signature("..."), signature("!!!"))


def test_estimate_tracks_true_jaccard(vocabulary: list[str], true_jaccard: Jaccard) -> None:
    rng = random.Random(3)
    errors = []
    for _ in range(60):
        words = rng.sample(vocabulary, 300)
        edited = substitute(words, rng.sample(range(300), rng.randint(1, 25)), rng)
        a, b = " ".join(words), " ".join(edited)
        errors.append(estimated_jaccard(signature(a), signature(b)) - true_jaccard(a, b))
    # Binomial standard deviation at NUM_PERM=128 is at most 0.044.
    assert abs(float(np.mean(errors))) < 0.02
    assert float(np.max(np.abs(errors))) < 0.2


# -- exact and identity duplicates -----------------------------------------------------------------------------------


def test_exact_duplicates_merge_with_jaccard_one(vocabulary: list[str]) -> None:
    text = " ".join(vocabulary[:120])
    results = cluster([item("b", text), item("a", text), item("c", " ".join(vocabulary[200:320]))])
    assert results["a"] == DedupResult(None, None)
    assert results["b"] == DedupResult("a", 1.0)
    assert results["c"] == DedupResult(None, None)
    assert (results.stats.exact, results.stats.identity, results.stats.near) == (1, 0, 0)
    assert results.stats.clusters == 2


def test_identity_duplicate_snippet_points_to_full_article(vocabulary: list[str]) -> None:
    full = " ".join(vocabulary[:400])
    snippet = " ".join(vocabulary[:60])
    identity = "title:the varn ledger|tidewater dam opens"
    # The snippet has the smaller id and comes first: the full text must still win.
    results = cluster([item("a", snippet, identity, truncated=True), item("z", full, identity)])
    assert results["z"] == DedupResult(None, None)
    assert results["a"].duplicate_of == "z"
    assert 0.0 < results["a"].jaccard < 0.5
    assert results.stats.identity == 1


def test_untruncated_beats_longer_truncated_and_transitive_identity(vocabulary: list[str]) -> None:
    story = " ".join(vocabulary[:200])
    spliced = story + " " + " ".join(vocabulary[500:700])  # longer, but cut and glued
    results = cluster(
        [
            item("a", spliced, "url:https://fict.example/x", truncated=True),
            item("b", story, "url:https://fict.example/x"),
            item("c", story, "url:https://mirror.example/y"),  # same text as b, other identity
        ]
    )
    assert results["b"] == DedupResult(None, None)
    assert results["a"].duplicate_of == "b"
    assert results["c"] == DedupResult("b", 1.0)


def test_all_truncated_longest_wins_then_smallest_id(vocabulary: list[str]) -> None:
    identity = "url:https://fict.example/cut"
    short, longer = " ".join(vocabulary[:50]), " ".join(vocabulary[:90])
    results = cluster([item("a", short, identity, True), item("b", longer, identity, True)])
    assert results["a"].duplicate_of == "b"
    same = " ".join(vocabulary[:70])
    results = cluster([item("q", same, identity, True), item("p", same, identity, True)])
    assert results["p"] == DedupResult(None, None)
    assert results["q"].duplicate_of == "p"


# -- near duplicates -------------------------------------------------------------------------------------------------


def test_few_word_edits_are_near_duplicates(vocabulary: list[str], true_jaccard: Jaccard) -> None:
    rng = random.Random(11)
    words = rng.sample(vocabulary, 250)
    original = " ".join(words)
    edited = " ".join(substitute(words, [40, 120, 200], rng)[:-4])  # and a little shorter
    other = " ".join(rng.sample(vocabulary, 250))
    results = cluster([item("orig", original), item("edit", edited), item("other", other)])
    assert len(edited) < len(original)
    assert results["orig"] == DedupResult(None, None)
    assert results["edit"].duplicate_of == "orig"
    assert results["edit"].jaccard == pytest.approx(true_jaccard(original, edited), abs=0.15)
    assert results["other"] == DedupResult(None, None)
    assert results.stats.near == 1


def test_same_topic_and_shared_boilerplate_do_not_merge(vocabulary: list[str], true_jaccard: Jaccard) -> None:
    rng = random.Random(5)
    topic = vocabulary[:40]
    boilerplate = " ".join(rng.sample(vocabulary[1000:], 35)) + "."
    texts = {f"t{i}": topic_article(rng, topic, 8) + " " + boilerplate for i in range(12)}
    assert max(true_jaccard(a, b) for a in texts.values() for b in texts.values() if a != b) < 0.5
    results = cluster([item(k, v) for k, v in texts.items()])
    assert all(r.duplicate_of is None for r in results.values())


def test_near_duplicates_do_not_chain(vocabulary: list[str], true_jaccard: Jaccard) -> None:
    """A chain of successive edits: each step is a near-duplicate of the previous one,
    the ends are unrelated. Members must be near their canonical, not just near a neighbour."""
    rng = random.Random(2)
    words = rng.sample(vocabulary, 300)
    spots = rng.sample(range(0, 300, 6), 28)  # isolated positions: each edit kills 5 shingles per side
    chain = [words]
    for step in range(1, 7):
        chain.append(substitute(chain[-1], spots[4 * (step - 1) : 4 * step], rng))
    chain = [" ".join(version) for version in chain]
    ids = [f"v{step}" for step in range(7)]
    assert all(true_jaccard(chain[step], chain[step + 1]) > 0.85 for step in range(6))
    assert true_jaccard(chain[0], chain[6]) < 0.45
    results = cluster([item(i, t) for i, t in zip(ids, chain, strict=True)])
    text_of = dict(zip(ids, chain, strict=True))
    assert len({r.duplicate_of or i for i, r in results.items()}) >= 2
    for ident, result in results.items():
        if result.duplicate_of:
            assert true_jaccard(text_of[ident], text_of[result.duplicate_of]) > 0.55


def test_planted_pairs_recall_and_no_false_merges(vocabulary: list[str], true_jaccard: Jaccard) -> None:
    rng = random.Random(42)
    items, positives, negatives = [], [], []
    topics = [vocabulary[i * 40 : (i + 1) * 40] for i in range(8)]
    for n in range(40):
        words = rng.sample(vocabulary, rng.randint(120, 500))
        base = " ".join(words)
        edits = rng.randint(1, max(1, len(words) // 60))
        copy = " ".join(substitute(words, rng.sample(range(len(words)), edits), rng))
        if true_jaccard(base, copy) >= 0.8:
            positives.append((f"p{n}a", f"p{n}b"))
        items += [item(f"p{n}a", base), item(f"p{n}b", copy)]
    boilerplate = " ".join(rng.sample(vocabulary[2000:], 30)) + "."
    for n in range(40):
        topic = topics[n % len(topics)]
        a, b = topic_article(rng, topic, 5), topic_article(rng, topic, 5)
        if n % 2:
            a, b = f"{a} {boilerplate}", f"{b} {boilerplate}"
        negatives.append((f"n{n}a", f"n{n}b"))
        items += [item(f"n{n}a", a), item(f"n{n}b", b)]
    results = cluster(items)

    def root(ident: str) -> str:
        return results[ident].duplicate_of or ident

    assert len(positives) >= 30
    recall = sum(root(a) == root(b) for a, b in positives) / len(positives)
    assert recall >= 0.95
    planted = {frozenset(p) for p in positives}
    merged_wrongly = [
        ident for ident, r in results.items() if r.duplicate_of and frozenset((ident, r.duplicate_of)) not in planted
    ]
    assert merged_wrongly == []


# -- determinism and input checks ------------------------------------------------------------------------------------


def test_cluster_is_independent_of_input_order(vocabulary: list[str]) -> None:
    rng = random.Random(9)
    words = rng.sample(vocabulary, 200)
    texts = [" ".join(words), " ".join(substitute(words, [10, 100], rng)), " ".join(words), " ".join(words[:40])]
    items = [
        item("a", texts[0]),
        item("b", texts[1]),
        item("c", texts[2]),
        item("d", texts[3], identity=item("a", texts[0]).identity, truncated=True),
    ]
    first = dict(cluster(items))
    for seed in range(3):
        shuffled = list(items)
        random.Random(seed).shuffle(shuffled)
        assert dict(cluster(shuffled)) == first


def test_records_without_signature_match_only_by_identity_or_hash(vocabulary: list[str]) -> None:
    text = " ".join(vocabulary[:100])
    unsigned = item("u", text)
    unsigned.signature = None
    twin = item("t", text)  # same text, also unsigned
    twin.signature = None
    near = item("n", " ".join(vocabulary[:99]))  # would be a near-duplicate if "u" had a signature
    results = cluster([unsigned, twin, near])
    assert results["t"] == DedupResult(None, None)
    assert results["u"] == DedupResult("t", 1.0)
    assert results["n"] == DedupResult(None, None)


def test_every_id_gets_a_result_and_bad_input_is_rejected(vocabulary: list[str]) -> None:
    results = cluster([item("solo", " ".join(vocabulary[:30]))])
    assert dict(results) == {"solo": DedupResult(None, None)}
    assert cluster([]) == {}
    with pytest.raises(ValueError, match="duplicate record ids"):
        cluster([item("x", "one two three"), item("x", "four five six")])
    odd = item("y", "seven eight nine")
    odd.signature = odd.signature[:64]
    with pytest.raises(ValueError, match="signature has shape"):
        cluster([item("x", "one two three"), odd])


def test_a_title_alone_never_makes_two_stories_one(vocabulary: list[str]) -> None:
    """Without a URL, outlet + title is no identity: a generic title ("Live updates") or one equal
    to the outlet name is shared by different stories; only text that confirms it merges them."""
    first, second = " ".join(vocabulary[:150]), " ".join(vocabulary[300:450])
    for identity in ("title:varn ledger|live updates", "title:varn ledger|varn ledger"):
        results = cluster([item("a", first, identity), item("b", second, identity)])
        assert results["a"] == results["b"] == DedupResult(None, None)
        # a copy cut to its first third is contained in the full text: that is the same story
        cut = " ".join(vocabulary[:50])
        results = cluster([item("a", first, identity), item("c", cut, identity, truncated=True)])
        assert results["c"].duplicate_of == "a"
    url = "url:https://fict.example/live"  # a canonical URL is an identity on its own
    results = cluster([item("a", first, url), item("b", second, url)])
    assert results["b"].duplicate_of == "a" or results["a"].duplicate_of == "b"


def test_groups_match_a_plain_union_find() -> None:
    rng = random.Random(5)
    from newsstance.normalize.dedup import groups_of

    for _ in range(100):
        n = rng.randint(1, 40)
        edges = [(rng.randrange(n), rng.randrange(n)) for _ in range(rng.randint(0, 50))]
        parent = list(range(n))

        def root(x: int, parent: list[int] = parent) -> int:
            while parent[x] != x:
                x = parent[x]
            return x

        for a, b in edges:
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
        found = groups_of(n, np.array(edges, dtype=np.int64).reshape(-1, 2))
        assert found.tolist() == [root(x) for x in range(n)]


# -- scripts written without spaces ----------------------------------------------------------------------------------

_SCRIPTS = {
    # (letters the fictional text is drawn from, clause separator, sentence separator)
    "han": ([chr(c) for c in range(0x4E00, 0x4E00 + 2500)], "，", "。"),
    "kana+han": ([chr(c) for c in range(0x3041, 0x3097)] + [chr(c) for c in range(0x5000, 0x5000 + 800)], "、", "。"),
    "thai": ([chr(c) for c in range(0x0E01, 0x0E2F)], "", " "),
}


def unspaced_text(rng: random.Random, letters: list[str], clause: str, sentence: str, sentences: int) -> str:
    """Fictional prose in a script without spaces between words: clauses of 6-14 letters."""
    out = []
    for _ in range(sentences):
        clauses = ["".join(rng.choice(letters) for _ in range(rng.randint(6, 14))) for _ in range(rng.randint(2, 4))]
        out.append(clause.join(clauses) + sentence)
    return "".join(out)


def char_jaccard(a: str, b: str) -> float:
    """Jaccard of character 5-grams over letters (punctuation and spaces dropped), by plain sets."""

    def grams(text: str) -> set[str]:
        letters = [ch for ch in text if ch.isalpha() or unicodedata.category(ch).startswith("M")]
        return {"".join(letters[i : i + 5]) for i in range(max(1, len(letters) - 4))}

    sa, sb = grams(a), grams(b)
    return len(sa & sb) / len(sa | sb)


@pytest.mark.parametrize("script", sorted(_SCRIPTS))
def test_light_edits_in_unspaced_scripts_are_near_duplicates(script: str) -> None:
    """One letter changed in a few clauses: with whitespace tokens each clause is one token and the
    copy shares almost no 5-gram; character tokens see a near-duplicate."""
    letters, clause, sentence = _SCRIPTS[script]
    rng = random.Random(3)
    original = unspaced_text(rng, letters, clause, sentence, 40)
    chars = list(original)
    positions = [i for i, ch in enumerate(chars) if ch in letters]
    for pos in rng.sample(positions, 6):
        chars[pos] = letters[(letters.index(chars[pos]) + 1) % len(letters)]
    edited = "".join(chars)
    other = unspaced_text(rng, letters, clause, sentence, 40)
    assert char_jaccard(original, edited) > 0.85 and char_jaccard(original, other) < 0.1
    results = cluster([item("orig", original), item("edit", edited), item("other", other)])
    pair = {results["orig"].duplicate_of, results["edit"].duplicate_of}  # same length: either is canonical
    assert pair in ({None, "orig"}, {None, "edit"})
    merged = results["orig"] if results["orig"].duplicate_of else results["edit"]
    assert merged.jaccard == pytest.approx(char_jaccard(original, edited), abs=0.15)
    assert results["other"] == DedupResult(None, None)


def test_long_unspaced_text_is_cut_between_letters_with_the_same_signature() -> None:
    """A text longer than one hashing piece with no space at all is cut between two letters of an
    unspaced script: the signature equals the one of the text hashed whole."""
    from newsstance.normalize import dedup

    letters, clause, sentence = _SCRIPTS["han"]
    text = unspaced_text(random.Random(9), letters, clause, sentence, 400)
    whole = dedup.signature_and_size(text)
    blocks = list(dedup._shingle_blocks(text, dedup.NGRAM, piece=997))
    assert len(blocks) > 3
    minimum = np.concatenate(blocks)
    assert len(minimum) == whole[1]
    assert np.array_equal(np.sort(minimum), np.sort(dedup.shingle_hashes(text)))


def _bucket_pairs_by_dict(keys: np.ndarray, group_of_node: np.ndarray, cap: int) -> set[tuple[int, int]]:
    """Candidate pairs the slow, obvious way: a dict of buckets, members in key order then index
    order; every pair of a bucket of at most 2 * cap + 1 members, else each member with its next
    `cap`; pairs already in one group dropped."""
    buckets: dict[int, list[int]] = {}
    for index, key in sorted(enumerate(keys.tolist()), key=lambda item: (item[1], item[0])):
        buckets.setdefault(key, []).append(index)
    pairs = set()
    for members in buckets.values():
        k = len(members)
        for i in range(k):
            for j in range(i + 1, k if k - 1 <= 2 * cap else min(k, i + 1 + cap)):
                a, b = members[i], members[j]
                if group_of_node[a] != group_of_node[b]:
                    pairs.add((min(a, b), max(a, b)))
    return pairs


@pytest.mark.parametrize("seed", range(4))
def test_band_pairs_match_buckets_built_by_hand(seed: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Buckets of every size around the cap (2 * cap + 1 members is the last "all pairs" size)."""
    from newsstance.normalize import dedup

    cap = 3
    monkeypatch.setattr(dedup, "MAX_BUCKET_PAIRS", cap)
    rng = np.random.default_rng(seed)
    sizes = [1, 2, 3, 2 * cap, 2 * cap + 1, 2 * cap + 2, 5 * cap, *rng.integers(1, 12, size=30).tolist()]
    keys = np.concatenate([np.full(size, rng.integers(0, 2**63), dtype=np.uint64) for size in sizes])
    keys = keys[rng.permutation(len(keys))]
    groups = rng.integers(0, len(keys) // 2, size=len(keys))
    codes = dedup.band_pairs(keys, groups)
    found = {(int(code) // len(keys), int(code) % len(keys)) for code in codes}
    assert found == _bucket_pairs_by_dict(keys, groups, cap)
    assert np.all(np.diff(codes) > 0)  # sorted, distinct
