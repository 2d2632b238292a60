"""Values of text pairs (Jaccard estimates, containment shares) are kept between runs: a re-run
looks up the pairs it has seen and computes only the new ones, and its outputs stay those of a
clean run."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import orjson

from newsstance.normalize import dedup, engine, storage
from newsstance.normalize.runner import run_normalize

CRAWL = "2026-03-14T09:30:00Z"


def _keys(count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 2**63, size=(count, 2), dtype=np.uint64).view("S16").reshape(-1)


class _Computed:
    """A stand-in for reading signatures: the value of pair i is `truth[i]`; records which were asked."""

    def __init__(self, truth: np.ndarray):
        self.truth = truth
        self.asked: list[int] = []

    def __call__(self, at: np.ndarray) -> np.ndarray:
        self.asked.extend(at.tolist())
        return self.truth[at]


def test_known_pairs_are_looked_up_either_way_round_and_only_new_ones_are_computed(tmp_path) -> None:
    keys = _keys(50)
    rng = np.random.default_rng(1)
    left, right = rng.choice(50, size=30), (rng.choice(49, size=30) + 1 + np.arange(30)) % 50
    left, right = left[left != right], right[left != right]
    truth = rng.random(len(left))
    first = dedup.PairValues()
    computed = _Computed(truth)
    assert np.array_equal(first.values(keys, left, right, computed), truth)
    assert sorted(computed.asked) == list(range(len(left)))
    first.save(tmp_path / "v.npz", "settings-1")

    again = dedup.PairValues.load([tmp_path / "v.npz"], "settings-1")
    new_left, new_right = np.array([3, 7, 11]), np.array([4, 8, 12])
    both_left = np.concatenate((right, new_left))  # the old pairs the other way round, then new ones
    both_right = np.concatenate((left, new_right))
    new_truth = np.array([0.25, 0.5, 0.75])
    known_pair = {frozenset(p) for p in zip(left.tolist(), right.tolist(), strict=True)}
    expected_new = [
        i
        for i, p in enumerate(zip(new_left.tolist(), new_right.tolist(), strict=True))
        if frozenset(p) not in known_pair
    ]
    computed = _Computed(np.concatenate((np.full(len(left), -1.0), new_truth)))
    got = again.values(keys, both_left, both_right, computed)
    assert np.array_equal(got[: len(left)], truth)  # looked up, never computed (the stand-in would give -1)
    assert sorted(computed.asked) == [len(left) + i for i in expected_new]
    assert again.looked_up == len(both_left) - len(expected_new)


def test_a_run_saves_only_the_pairs_it_asked_for(tmp_path) -> None:
    keys = _keys(20)
    first = dedup.PairValues()
    first.values(keys, np.arange(10), np.arange(10, 20), lambda at: at / 10.0)
    first.save(tmp_path / "v.npz", "s")
    second = dedup.PairValues.load([tmp_path / "v.npz"], "s")
    second.values(keys, np.arange(3), np.arange(10, 13), lambda at: np.full(len(at), -1.0))
    second.save(tmp_path / "w.npz", "s")
    third = dedup.PairValues.load([tmp_path / "w.npz"], "s")
    computed = _Computed(np.full(10, 9.0))
    got = third.values(keys, np.arange(10), np.arange(10, 20), computed)
    assert sorted(computed.asked) == list(range(3, 10))  # the pairs the second run did not ask for are gone
    assert np.array_equal(got[:3], np.arange(3) / 10.0)


def test_files_of_other_settings_or_damaged_ones_are_ignored(tmp_path) -> None:
    keys = _keys(10)
    values = dedup.PairValues()
    values.values(keys, np.arange(5), np.arange(5, 10), lambda at: np.ones(len(at)))
    values.save(tmp_path / "good.npz", "code-1")
    (tmp_path / "garbage.npz").write_bytes(b"not a zip file at all")
    os.mkfifo(tmp_path / "fifo.npz")  # would block a read
    data = (tmp_path / "good.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    for paths, settings in (
        ([tmp_path / "good.npz"], "code-2"),
        ([tmp_path / "garbage.npz", tmp_path / "cut.npz", tmp_path / "missing.npz", tmp_path / "fifo.npz"], "code-1"),
    ):
        loaded = dedup.PairValues.load(paths, settings)
        computed = _Computed(np.zeros(5))
        assert np.array_equal(loaded.values(keys, np.arange(5), np.arange(5, 10), computed), np.zeros(5))
        assert sorted(computed.asked) == list(range(5))
    # the good file still serves, next to the damaged ones
    loaded = dedup.PairValues.load(sorted(tmp_path.glob("*.npz")), "code-1")
    assert np.array_equal(loaded.values(keys, np.arange(5), np.arange(5, 10), _Computed(np.zeros(5))), np.ones(5))


def test_pairs_sharing_a_lookup_digest_are_never_confused(tmp_path, monkeypatch) -> None:
    """Two pairs whose first digests collide: neither is given the other's value."""
    keys = _keys(8)
    real = dedup.PairValues.digests

    def colliding(text_key, left, right):
        key, check = real(text_key, left, right)
        return np.zeros_like(key), check  # every pair shares one lookup digest

    monkeypatch.setattr(dedup.PairValues, "digests", staticmethod(colliding))
    values = dedup.PairValues()
    values.values(keys, np.array([0, 2]), np.array([1, 3]), lambda at: np.array([0.1, 0.9])[at])
    values.save(tmp_path / "v.npz", "s")
    loaded = dedup.PairValues.load([tmp_path / "v.npz"], "s")
    computed = _Computed(np.array([0.1, 0.9, 0.5]))
    got = loaded.values(keys, np.array([0, 2, 4]), np.array([1, 3, 5]), computed)
    assert np.array_equal(got, [0.1, 0.9, 0.5])
    assert sorted(computed.asked) == [0, 1, 2]


# ---------------------------------------------------------------- through the engine

SENTENCES = [
    "The council of {place} met on {day} to discuss the state of the old {thing}.",
    "Engineers from {other} told members that the {thing} had moved since the {season} storms.",
    "A temporary barrier of {count} sandbags will protect the {thing} in {place} before the tides.",
    "Residents of {place} asked why the work on the {thing} had waited so long, and the chair promised a report.",
    "The ferry to {other} will keep its {season} timetable, although its landing stage may move.",
    "Fishermen in {place} said the {thing} had been cracked long before the inspection of {day}.",
    "A public meeting in {other} is planned, when the costs of the {thing} are expected to be published.",
]
PLACES = [
    "Westmarch",
    "Quillon Bay",
    "Orrin Quay",
    "Penhallow",
    "Tarrow Fen",
    "Ebbing Cross",
    "Morrow Hill",
    "Lanfield",
    "Brackwater",
]
THINGS = [
    "harbour wall",
    "lighthouse",
    "swing bridge",
    "sea gate",
    "fish market",
    "slipway",
    "lock keeper's house",
    "tide mill",
    "boathouse",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday", "the first", "the second"]
SEASONS = ["spring", "summer", "autumn", "winter", "early spring", "late summer", "late autumn", "midwinter", "monsoon"]


def _story(n: int, sentences: int = len(SENTENCES), variant: str = "") -> str:
    words = {
        "place": PLACES[n],
        "other": PLACES[(n + 4) % 9],
        "thing": THINGS[n],
        "day": DAYS[n],
        "season": SEASONS[n],
        "count": 100 + 37 * n,
    }
    text = [s.format(**words) for s in SENTENCES[:sentences]]
    if variant:
        text[3] = text[3].replace("the chair", variant)
    return "\n\n".join(text)


def _record(title: str, text: str, url: str | None) -> bytes:
    record = {
        "title": title,
        "maintext": text,
        "source_domain": "coastcourier.example",
        "date_publish": "2026-03-10 08:00:00",
        "language": "en",
    }
    if url:
        record["url"] = url
    return orjson.dumps(record)


def _corpus(raw: Path) -> None:
    """Stories with a near-duplicate (one word changed, another URL) and a shortened copy under the
    same outlet and title without a URL (joined by containment), in several folders."""
    for n in range(9):
        folder = raw / f"day{n % 3}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{n}.json").write_bytes(
            _record(f"Harbour report {n}", _story(n), f"https://coastcourier.example/h/{n}")
        )
        (folder / f"{n}-copy.json").write_bytes(
            _record(f"Harbour report {n} again", _story(n, variant="the mayor"), f"https://coastcourier.example/c/{n}")
        )
        (folder / f"{n}-short.json").write_bytes(_record(f"Short report {n}", _story(n), None))
        (folder / f"{n}-shorter.json").write_bytes(_record(f"Short report {n}", _story(n, 5), None))


def _shards(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("articles-*.jsonl"))}


def _values_dir(out: Path) -> Path:
    return out / storage.CACHE_DIR / engine.PAIR_VALUES_DIR


def _pairs_in(path: Path) -> int:
    with np.load(path, allow_pickle=False) as data:
        return len(data["keys"])


def _records(out: Path) -> list[dict]:
    return [orjson.loads(line) for data in _shards(out).values() for line in data.splitlines()]


def _story_of(record: dict) -> int:
    return int(record["title"].split()[2])


def _near_jaccards(out: Path) -> dict[int, list[float]]:
    """Per story, the Jaccard of every duplicate whose text differs from its canonical's."""
    records = _records(out)
    by_id = {r["id"]: r for r in records}
    found: dict[int, list[float]] = {}
    for r in records:
        canonical = by_id.get(r["duplicate_of"] or "")
        if canonical and canonical["text_sha256"] != r["text_sha256"]:
            found.setdefault(_story_of(r), []).append(r["provenance"]["near_duplicate_jaccard"])
    return found


def test_a_rerun_uses_the_pair_values_of_the_last_run_and_matches_a_clean_run(tmp_path, monkeypatch) -> None:
    raw, out = tmp_path / "raw", tmp_path / "out"
    _corpus(raw)
    shares: list[int] = []  # containment shares computed (the collect stage runs in this process)
    real_containment = dedup.containment

    def counted(sig_a, sig_b, size_a, size_b):
        shares.append(len(size_a))
        return real_containment(sig_a, sig_b, size_a, size_b)

    monkeypatch.setattr(dedup, "containment", counted)
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=8)
    assert sum(shares) == 9  # one per shortened copy
    stories: dict[int, list[dict]] = {}
    for record in _records(out):
        stories.setdefault(_story_of(record), []).append(record)
    assert sorted(stories) == list(range(9))
    for records in stories.values():  # each story is one cluster: its copy, its shortened copy, its exact copy
        canonical = [r["id"] for r in records if r["duplicate_of"] is None]
        assert len(canonical) == 1 and all(r["duplicate_of"] in (None, canonical[0]) for r in records)
    near = _near_jaccards(out)
    assert all(len(near[n]) >= 2 and max(near[n]) >= dedup.THRESHOLD for n in range(9))
    saved = sorted(p.name for p in _values_dir(out).glob("*.npz"))
    assert engine.CONTAINMENT_VALUES + ".npz" in saved and any(n.startswith(engine.JACCARD_VALUES) for n in saved)
    assert _pairs_in(_values_dir(out) / (engine.CONTAINMENT_VALUES + ".npz")) == 9  # one per shortened copy

    # Values no 128-permutation estimate can take: the re-run's duplicate marks show they were looked up.
    for path in _values_dir(out).glob(f"{engine.JACCARD_VALUES}*.npz"):
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
        arrays["values"] = np.full(len(arrays["values"]), 0.9999)
        with path.open("wb") as handle:
            np.savez(handle, **arrays)
    (raw / "day1" / "4.json").write_bytes(
        _record("Harbour report 4", _story(4) + "\n\nA late update.", "https://coastcourier.example/h/4")
    )
    shares.clear()
    (raw / "day1" / "7-shorter.json").write_bytes(_record("Short report 7", _story(7, 4), None))
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=8)
    assert sum(shares) == 1  # only the edited shortened copy's share is computed; the others are looked up
    near = _near_jaccards(out)
    assert all(set(near[n]) == {0.9999} for n in range(9) if n not in (4, 7))
    assert 0.9999 not in near[4]  # the edited story's pairs are new: computed

    # Without the false values every pair is computed again and the marks they made are mended;
    # with the values the runs computed themselves, a re-run is byte for byte a clean run.
    for path in _values_dir(out).glob("*.npz"):
        path.unlink()
    (raw / "day2" / "5-copy.json").write_bytes(
        _record("Harbour report 5 again", _story(5, variant="a clerk"), "https://coastcourier.example/c/5")
    )
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=8)
    (raw / "day1" / "7-shorter.json").write_bytes(_record("Short report 7", _story(7, 3), None))
    run_normalize([raw], out, crawl_time=CRAWL, shard_size=8)
    clean = tmp_path / "clean"
    run_normalize([raw], clean, crawl_time=CRAWL, shard_size=8)
    assert _shards(out) == _shards(clean)
    assert sorted(p.name for p in _values_dir(out).iterdir()) == sorted(p.name for p in _values_dir(clean).iterdir())
