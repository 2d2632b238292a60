"""HTML extraction: body-text F1, false `truncated` rate and CPU cost of newsstance's HTML path
against the bare trafilatura call and other extractors, on fictional pages.

    .venv/bin/python benchmarks/html_bench.py [--synthetic 200] [--repeat 3] [--profile]

Pages: every `tests/normalize/data/html/*.html` with a hand-written `*.gold.txt` (body
paragraphs, title, `truncated`), plus `--synthetic N` pages from `benchmarks/synth.py` (html
format, with their paragraphs drawn from the fictional multilingual set of
`tests/normalize/data/languages.txt`; their gold is that text) for the speed figures.

- F1: the scorer of the common extraction benchmarks: word 4-gram shingles of the extracted and
  the gold body, precision and recall per page, averaged over pages, F1 of the two means.
- False `truncated`: share of the pages whose gold says complete that come out `truncated`.
- Speed: pages per CPU-second. `newsstance` is the whole HTML path per page: parse once, body
  (trafilatura, readability when suspicious), metadata, title, canonical URL, chrome removal,
  language identification, date choice and the truncation check. `trafilatura` is the bare
  `trafilatura.extract(html, include_comments=False)` on the same pages.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))
sys.path.insert(0, str(ROOT / "benchmarks"))
FIXTURES = ROOT / "tests" / "normalize" / "data" / "html"
CRAWL = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)
_WORD = re.compile(r"\w+")


def shingles(text: str, n: int = 4) -> set[tuple[str, ...]]:
    words = _WORD.findall(text.casefold())
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def precision_recall(extracted: str, gold: str) -> tuple[float, float]:
    got, want = shingles(extracted), shingles(gold)
    if not got or not want:
        return (1.0 if not got else 0.0), (1.0 if not want else 0.0)
    common = len(got & want)
    return common / len(got), common / len(want)


def load_pages(synthetic: int) -> list[tuple[str, str, str, bool]]:
    """(name, html, gold body, gold truncated)."""
    pages = []
    for path in sorted(FIXTURES.glob("*.html")):
        gold_path = path.with_suffix(".gold.txt")
        if not gold_path.exists():
            continue
        head, body = gold_path.read_text(encoding="utf-8").split("---\n", 1)
        truncated = "truncated: true" in head
        pages.append((path.stem, path.read_text(encoding="utf-8"), body.replace("- ", ""), truncated))
    if synthetic:
        import random

        import synth
        from language_bench import load_texts

        lexicon = synth.Lexicon.build(seed=7)
        rng = random.Random(7)
        writer = synth.Writer(lexicon, rng)
        texts = load_texts()
        for index in range(synthetic):
            article = writer.article(outlet=rng.choice(lexicon.outlets))
            # real-language prose (the fictional multilingual set), so language identification costs what it
            # costs on real pages; synth's pseudo-words belong to no language
            code = rng.choice(sorted(texts))
            body = texts[code][:3]
            article.paragraphs = [rng.choice(body) + " " + rng.choice(body) for _ in range(len(article.paragraphs))]
            most_read = [writer.title(rng.choice(lexicon.topics)) for _ in range(5)]
            page = synth.html_page(article, CRAWL, most_read)
            pages.append((f"synthetic-{index}", page, "\n".join(article.paragraphs), False))
    return pages


def newsstance_path() -> Callable[[str], tuple[str, bool]]:
    from newsstance.normalize import dates, language
    from newsstance.normalize.chrome import strip_body_chrome
    from newsstance.normalize.config import ChromeConfig
    from newsstance.normalize.html_extract import parse_html
    from newsstance.normalize.truncation import is_truncated

    chrome = ChromeConfig()
    language.rank("warm up: both models load once per process (about 0.6 CPU-s), not per page")
    language.fast_guess("warm up")

    def run(html: str) -> tuple[str, bool]:
        article = parse_html(html)
        if article is None:
            return "", False
        paragraphs = strip_body_chrome(article.paragraphs, chrome)
        text = "\n\n".join(paragraphs)
        language.decide(text, article.language)
        dates.choose(article.date_candidates, CRAWL)
        return text, is_truncated(paragraphs)

    return run


def bare_trafilatura() -> Callable[[str], tuple[str, bool]]:
    import trafilatura

    return lambda html: (trafilatura.extract(html, include_comments=False) or "", False)


def readability_only() -> Callable[[str], tuple[str, bool]]:
    from lxml.html import fromstring
    from readability import Document

    def run(html: str) -> tuple[str, bool]:
        summary = Document(html).summary(html_partial=True)
        return fromstring(summary).text_content() if summary.strip() else "", False

    return run


def resiliparse_only() -> Callable[[str], tuple[str, bool]]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.html import HTMLTree

    return lambda html: (extract_plain_text(HTMLTree.parse(html), main_content=True), False)


SYSTEMS = {
    "newsstance": newsstance_path,
    "trafilatura": bare_trafilatura,
    "readability-lxml": readability_only,
    "resiliparse": resiliparse_only,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--synthetic", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--profile", action="store_true", help="cProfile the newsstance path (top 25 by cumulative time)"
    )
    args = parser.parse_args()
    pages = load_pages(args.synthetic)
    fixtures = [p for p in pages if not p[0].startswith("synthetic-")]
    print(f"{len(fixtures)} fixture pages with gold, {len(pages) - len(fixtures)} synthetic pages")
    runners: dict[str, Callable[[str], tuple[str, bool]]] = {}
    for name, factory in SYSTEMS.items():
        try:
            runners[name] = factory()
            runners[name](pages[0][1])  # warm up: imports, model loading
        except ImportError as exc:
            print(f"{name:18} not installed ({exc.name})")
    # CPU time per system, the systems interleaved page by page so that load on a shared machine hits all alike
    cpu = dict.fromkeys(runners, 0.0)
    for _ in range(args.repeat):
        for _, html, _, _ in pages:
            for name, run in runners.items():
                started = time.process_time()
                run(html)
                cpu[name] += time.process_time() - started
    print(
        f"{'system':18} {'F1':>6} {'P':>6} {'R':>6} {'false trunc':>11} {'pages/CPU-s':>12} {'CPU vs trafilatura':>19}"
    )
    for name, run in runners.items():
        ps, rs, false_cut, complete = [], [], 0, 0
        for _, html, gold, truncated in fixtures:
            text, cut = run(html)
            p, r = precision_recall(text, gold)
            ps.append(p)
            rs.append(r)
            if not truncated:
                complete += 1
                false_cut += cut
        mp, mr = sum(ps) / len(ps), sum(rs) / len(rs)
        f1 = 2 * mp * mr / (mp + mr) if mp + mr else 0.0
        trunc = f"{false_cut}/{complete}" if name == "newsstance" else "-"
        speed = args.repeat * len(pages) / cpu[name]
        ratio = cpu[name] / cpu["trafilatura"] if "trafilatura" in cpu else float("nan")
        print(f"{name:18} {f1:6.3f} {mp:6.3f} {mr:6.3f} {trunc:>11} {speed:12.1f} {ratio:18.2f}x")
    if args.profile:
        run = newsstance_path()
        profiler = cProfile.Profile()
        profiler.enable()
        for _, html, _, _ in pages:
            run(html)
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main()
