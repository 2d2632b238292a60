"""Does serving the least certain tasks first pay off? Simulated annotation, gold as the oracle (issue 12).

    .venv/bin/python benchmarks/uncertainty_bench.py [--pool 1500] [--test 400] [--batch 25] [--rounds 16] [--seeds 5]

A generated corpus of fictional news (names built from syllables; their frequencies follow a
Zipf law, so a few names recur everywhere and most are rare; a tenth of the place names are also
club names, labelled ORG in sports sentences) is split into an unlabelled pool and a test set.
Annotation is simulated: each round, an ordering policy picks `--batch` pool articles, the
oracle supplies their gold entities, the gazetteer baseline (`newsstance.evaluate.baselines
.Gazetteer`) is retrained on everything annotated so far, and its strict entity F1 (exact
start, end and label, micro) on the test set is recorded.

Policies:
- `random`: Label Studio's "Uniform sampling".
- `uncertainty`: what `studio configure --order uncertainty` does - lowest prediction score
  first, the score computed as push computes it (`preannotate.prediction_score`: the lowest
  region confidence, or 1 - the probability of a missed entity). For the gazetteer, a region's
  confidence is the share of its training occurrences that carried the predicted label, and a
  capitalised name the gazetteer does not know counts as a missed entity with probability 1.
  Ties (many texts score 0) are broken by the number of unknown names, then at random.

Prints F1 after each round for both policies (mean over seeds) and the annotation saved to reach
the random policy's final F1.
"""

from __future__ import annotations

import argparse
import random
import re
import statistics
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from newsstance.evaluate.baselines import Gazetteer
from newsstance.evaluate.dataset import GoldArticle, Span
from newsstance.scheme import load_scheme
from newsstance.studio.preannotate import prediction_score

SYLLABLES = ["ka", "lo", "mer", "vin", "dra", "sol", "te", "bru", "nor", "el", "quin", "ash", "po", "rid", "ul", "zan"]
STOP = {"The", "A", "On", "In", "At", "After", "Before", "Monday", "Friday", "Sunday", "Officials", "Fans", "Critics"}
CAPITALISED = re.compile(r"\b[A-Z][a-z]+(?: [A-Z][a-z]+)*\b")


def word(rng: random.Random, parts: int) -> str:
    return "".join(rng.choice(SYLLABLES) for _ in range(parts)).capitalize()


@dataclass
class Names:
    persons: list[str]
    orgs: list[str]
    places: list[str]
    clubs: set[str]  # places that are also club names (ORG in sports sentences)


def make_names(rng: random.Random) -> Names:
    persons = sorted({f"{word(rng, 2)} {word(rng, 2)}" for _ in range(400)})
    orgs = sorted({f"{word(rng, 2)} {rng.choice(['Energy', 'Union', 'Bank', 'Party', 'Gazette'])}" for _ in range(200)})
    places = sorted({word(rng, 3) for _ in range(200)})
    for group in (persons, orgs, places):
        rng.shuffle(group)
    return Names(persons, orgs, places, set(places[: len(places) // 10]))


def zipf_pick(rng: random.Random, items: Sequence[str], s: float = 1.1) -> str:
    weights = [1.0 / (rank + 1) ** s for rank in range(len(items))]
    return rng.choices(items, weights=weights, k=1)[0]


TEMPLATES = [
    ("{P} said in {G} that the levy would hurt farmers.", "P G"),
    ("Officials of {O} met {P} on Monday.", "O P"),
    ("The council of {G} backed {O} after a long debate.", "G O"),
    ("Critics at {O} accused {P} of ignoring {G}.", "O P G"),
    ("Fans cheered as {C} beat {C2} at home.", "C C2"),
    ("On Friday {P} visited {G} and {G2}.", "P G G2"),
]


def make_article(rng: random.Random, names: Names, index: int) -> GoldArticle:
    text, spans = "", []
    for _ in range(rng.randint(3, 6)):
        template, _ = rng.choice(TEMPLATES)
        fills = {
            "P": (zipf_pick(rng, names.persons), "PERSON"),
            "O": (zipf_pick(rng, names.orgs), "ORG"),
            "G": (zipf_pick(rng, names.places), "GPE"),
            "G2": (zipf_pick(rng, names.places), "GPE"),
            "C": (zipf_pick(rng, sorted(names.clubs)), "ORG"),
            "C2": (zipf_pick(rng, sorted(names.clubs)), "ORG"),
        }
        sentence = ""
        for piece in re.split(r"(\{\w+\})", template):
            if piece.startswith("{"):
                surface, label = fills[piece[1:-1]]
                start = len(text) + len(sentence)
                spans.append(Span(start, start + len(surface), label))
                sentence += surface
            else:
                sentence += piece
        text += sentence + " "
    return GoldArticle(f"a{index}", text.rstrip(), spans, {}, [], [], [])


def strict_f1(gazetteer: Gazetteer, test: Sequence[GoldArticle]) -> float:
    matched = predicted = gold = 0
    for article in test:
        found = {(s.start, s.end, s.label) for s in gazetteer.tag(article.text)}
        truth = {(s.start, s.end, s.label) for s in article.entities}
        matched, predicted, gold = matched + len(found & truth), predicted + len(found), gold + len(truth)
    return 2 * matched / (predicted + gold) if predicted + gold else 0.0


class ScoredGazetteer:
    """The gazetteer plus how sure it is of each text (see module doc)."""

    def __init__(self, train: Sequence[GoldArticle], scheme: object):
        self.gazetteer = Gazetteer(train, scheme)  # type: ignore[arg-type]
        counts: dict[str, Counter[str]] = defaultdict(Counter)
        for article in train:
            for span in article.entities:
                counts[article.text[span.start : span.end]][span.label] += 1
        self.counts = counts

    def score(self, text: str) -> tuple[float, int]:
        regions = self.gazetteer.tag(text)
        confidences = []
        covered: set[int] = set()
        for span in regions:
            counter = self.counts[text[span.start : span.end]]
            confidences.append(counter[span.label] / sum(counter.values()))
            covered.update(range(span.start, span.end))
        unknown = [
            m
            for m in CAPITALISED.finditer(text)
            if m.group() not in STOP and not covered & set(range(m.start(), m.end()))
        ]
        return prediction_score(confidences, 1.0 if unknown else 0.0), len(unknown)


def simulate(
    policy: str, pool: list[GoldArticle], test: list[GoldArticle], batch: int, rounds: int, seed: int
) -> list[float]:
    rng = random.Random(seed)
    scheme = load_scheme()
    remaining = list(pool)
    rng.shuffle(remaining)
    labelled = remaining[:batch]  # the first batch is random for both policies
    remaining = remaining[batch:]
    curve = []
    for _ in range(rounds):
        model = ScoredGazetteer(labelled, scheme)
        curve.append(strict_f1(model.gazetteer, test))
        if policy == "uncertainty":
            ranked = sorted(remaining, key=lambda a: (lambda s: (s[0], -s[1], rng.random()))(model.score(a.text)))
        else:
            ranked = remaining
        labelled += ranked[:batch]
        remaining = ranked[batch:]
    return curve


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=1500)
    parser.add_argument("--test", type=int, default=400)
    parser.add_argument("--batch", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args()
    started, cpu = time.perf_counter(), time.process_time()
    curves: dict[str, list[list[float]]] = {"random": [], "uncertainty": []}
    for seed in range(args.seeds):
        rng = random.Random(1000 + seed)
        names = make_names(rng)
        articles = [make_article(rng, names, i) for i in range(args.pool + args.test)]
        pool, test = articles[: args.pool], articles[args.pool :]
        for policy in curves:
            curves[policy].append(simulate(policy, pool, test, args.batch, args.rounds, seed))
    mean = {p: [statistics.mean(c[r] for c in cs) for r in range(args.rounds)] for p, cs in curves.items()}
    print(f"gazetteer strict entity F1 on {args.test} test articles, mean of {args.seeds} corpora")
    print("| articles annotated | random | uncertainty |")
    print("|---|---|---|")
    for r in range(args.rounds):
        print(f"| {(r + 1) * args.batch} | {mean['random'][r]:.3f} | {mean['uncertainty'][r]:.3f} |")
    target = mean["random"][-1]
    reached = next((r for r, f in enumerate(mean["uncertainty"]) if f >= target), None)
    if reached is not None:
        print(
            f"uncertainty order reaches random's final F1 ({target:.3f}, {args.rounds * args.batch} articles) "
            f"after {(reached + 1) * args.batch} articles"
        )
    else:
        print(f"uncertainty order does not reach random's final F1 ({target:.3f})")
    print(f"{time.perf_counter() - started:.1f} s wall, {time.process_time() - cpu:.1f} CPU-s")


if __name__ == "__main__":
    main()
