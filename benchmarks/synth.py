"""Synthetic news pages for benchmarks: fictional vocabulary, no third-party text.

    python benchmarks/synth.py OUT_DIR --pages N --format aggregator|html|json|mix --seed S

Writes `OUT_DIR/pages/<block>/<n>.<ext>` and `OUT_DIR/planted_pairs.jsonl`, and
`OUT_DIR/synth.json` (what was generated). Formats:

- aggregator: plain-text scrape like the aggregator seed: title line, paragraphs,
  site chrome ("Hashtags", "Comments", ...), then related-article blocks (outlet,
  relative time, "- outlet", title, body on one line). Related stories come from a
  shared pool with skewed popularity, so they recur across pages; some copies are
  cut mid-sentence or spliced with another story.
- html: a news page with nav, cookie banner, byline, "Most read" box and footer,
  canonical URL, og:site_name and article:published_time.
- json: news-please records (`.json` single object, `.jsonl` several per file).
- mix: 60% aggregator, 20% html, 10% json, 10% jsonl.

Planted pairs (`planted_pairs.jsonl`): page `b`'s main article is an edited copy of
page `a`'s at a known word-5-gram Jaccard (`kind: near`, J spread over 0.5-1.0), or
an independently written article that only looks alike (`kind: same_topic`: same
topic, people and sentence templates; `kind: boilerplate`: also the same outlet
boilerplate paragraph and dateline). `jaccard` is exact, computed on the article
text with plain Python sets (independent of the MinHash code under test).

`planted_text_pairs()` gives the same kinds of pairs as bare texts for benchmarks
that call the dedup code directly.

`warc_view()` adds `OUT_DIR/pages-warc/`: the same pages with a share of the HTML pages
(never planted ones) packed into gzipped WARC files and every other file hard-linked from
`pages/`, for readers that take WARC (`--warc-share` on the command line).
"""

from __future__ import annotations

import argparse
import gzip
import html
import itertools
import json
import os
import random
import re
import shutil
import sys
import time
import unicodedata
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import quote

FORMATS = ("aggregator", "html", "json", "mix")
CRAWL_TIME = datetime(2025, 3, 14, 12, 0, tzinfo=UTC)
FUNCTION_WORDS = [
    "the",
    "a",
    "an",
    "of",
    "to",
    "in",
    "on",
    "for",
    "with",
    "at",
    "by",
    "from",
    "about",
    "after",
    "before",
    "over",
    "under",
    "between",
    "against",
    "during",
    "without",
    "and",
    "but",
    "or",
    "so",
    "yet",
    "because",
    "while",
    "although",
    "if",
    "when",
    "as",
    "than",
    "that",
    "which",
    "who",
    "this",
    "these",
    "those",
    "its",
    "their",
    "his",
    "her",
    "is",
    "was",
    "were",
    "are",
    "be",
    "been",
    "has",
    "had",
    "have",
    "will",
    "would",
    "could",
    "should",
    "may",
    "might",
    "must",
    "can",
    "did",
    "not",
    "also",
    "only",
    "more",
    "most",
    "some",
    "many",
    "several",
    "few",
    "new",
    "old",
    "first",
    "last",
    "other",
    "same",
    "such",
    "very",
    "still",
    "even",
    "just",
    "already",
    "again",
]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
_WORD = re.compile(r"[^\W_]+")


# -- vocabulary ----------------------------------------------------------------------------------------------------


def _pseudo_word(rng: random.Random, syllables: tuple[int, int] = (1, 4)) -> str:
    onsets = [
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "z",
        "br",
        "dr",
        "gr",
        "kl",
        "pl",
        "st",
        "tr",
        "sk",
        "th",
        "sh",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ea", "io"]
    codas = ["", "", "", "n", "r", "s", "l", "th", "nd", "sk"]
    count = rng.randint(*syllables)
    return "".join(rng.choice(onsets) + rng.choice(vowels) for _ in range(count)) + rng.choice(codas)


@dataclass
class Lexicon:
    """Fictional words, people, places and outlets, and topics that bundle them."""

    rng: random.Random
    nouns: list[str] = field(default_factory=list)
    verbs: list[str] = field(default_factory=list)
    adjectives: list[str] = field(default_factory=list)
    people: list[str] = field(default_factory=list)
    places: list[str] = field(default_factory=list)
    orgs: list[str] = field(default_factory=list)
    outlets: list[str] = field(default_factory=list)
    topics: list[dict[str, list[str]]] = field(default_factory=list)

    @classmethod
    def build(cls, seed: int, size: int = 4000, topics: int = 40) -> Lexicon:
        rng = random.Random(seed)
        seen: set[str] = set(w.lower() for w in FUNCTION_WORDS + DAYS)

        def fresh(syllables: tuple[int, int] = (1, 4)) -> str:
            while True:
                word = _pseudo_word(rng, syllables)
                if word not in seen and len(word) > 2:
                    seen.add(word)
                    return word

        lex = cls(rng)
        lex.nouns = [fresh() for _ in range(size // 2)]
        lex.verbs = [fresh() + rng.choice(["ed", "es", "ated"]) for _ in range(size // 4)]
        lex.adjectives = [fresh() + rng.choice(["ic", "al", "ish", "ous"]) for _ in range(size // 4)]
        lex.people = [f"{fresh((1, 3)).title()} {fresh((2, 3)).title()}" for _ in range(400)]
        # A few names with accents and non-BMP characters, as real feeds have.
        lex.people += ["Zoë Valtrand", "Renée Østerbrak", "Ilka Dümmerson", "Tomás Ferrelo"]
        lex.places = [fresh((2, 3)).title() + rng.choice(["", "holm", "ford", " Bay", "ville"]) for _ in range(200)]
        lex.orgs = [
            f"{fresh((2, 3)).title()} {rng.choice(['Council', 'Authority', 'Union', 'Institute', 'Group'])}"
            for _ in range(150)
        ]
        lex.outlets = [
            f"The {fresh((2, 3)).title()} {rng.choice(['Courier', 'Ledger', 'Herald', 'Post', 'Dispatch'])}"
            for _ in range(60)
        ]
        for _ in range(topics):
            lex.topics.append(
                {
                    "words": rng.sample(lex.nouns, 30) + rng.sample(lex.adjectives, 10) + rng.sample(lex.verbs, 10),
                    "people": rng.sample(lex.people, 8),
                    "places": rng.sample(lex.places, 4),
                    "orgs": rng.sample(lex.orgs, 4),
                }
            )
        return lex


# -- articles ------------------------------------------------------------------------------------------------------


@dataclass
class Article:
    title: str
    paragraphs: list[str]
    outlet: str
    topic: int
    author: str

    @property
    def text(self) -> str:
        return "\n\n".join(self.paragraphs)


class Writer:
    """Writes fictional articles from templates (so same-topic articles share phrases)."""

    def __init__(self, lexicon: Lexicon, rng: random.Random):
        self.lex = lexicon
        self.rng = rng
        self.titles: set[str] = set()

    def _topic_word(self, topic: dict[str, list[str]]) -> str:
        rng = self.rng
        return rng.choice(topic["words"]) if rng.random() < 0.5 else rng.choice(self.lex.nouns)

    def sentence(self, topic: dict[str, list[str]]) -> str:
        rng, lex = self.rng, self.lex
        person, place, org = rng.choice(topic["people"]), rng.choice(topic["places"]), rng.choice(topic["orgs"])
        noun, noun2 = self._topic_word(topic), self._topic_word(topic)
        verb, adjective = rng.choice(topic["words"][40:]), rng.choice(lex.adjectives)
        day = rng.choice(DAYS)
        templates = (
            f"{person} said on {day} that the {noun} would {verb} the {adjective} {noun2} in {place}.",
            f"The {org} {verb} the {adjective} {noun} after {person} {rng.choice(lex.verbs)} the {noun2}.",
            f"According to the {org}, the {noun} in {place} has {verb} since {day}.",
            f"Officials in {place} told reporters the {noun} was {adjective} and the {noun2} {verb}.",
            f"{person}, who leads the {org}, {verb} a {adjective} {noun} on {day}.",
        )
        if rng.random() < 0.45:
            return rng.choice(templates)
        words = [
            rng.choice(FUNCTION_WORDS) if rng.random() < 0.45 else self._topic_word(topic)
            for _ in range(rng.randint(8, 22))
        ]
        if rng.random() < 0.3:
            words.insert(rng.randrange(len(words)), rng.choice(topic["people"]))
        words[0] = words[0].title()
        return " ".join(words) + rng.choice([".", ".", ".", "?", "!"])

    def paragraph(self, topic: dict[str, list[str]], sentences: tuple[int, int] = (2, 4)) -> str:
        return " ".join(self.sentence(topic) for _ in range(self.rng.randint(*sentences)))

    def title(self, topic: dict[str, list[str]]) -> str:
        """A headline not used before (equal titles would make equal identities)."""
        rng = self.rng
        while True:
            words = [
                rng.choice(topic["people"] + topic["places"]),
                rng.choice(topic["words"][40:]),
                *(self._topic_word(topic) for _ in range(rng.randint(2, 6))),
            ]
            if rng.random() < 0.05:
                words.append("🌊")
            title = " ".join(words)
            title = title[0].upper() + title[1:]
            if title.casefold() not in self.titles:
                self.titles.add(title.casefold())
                return title

    def article(
        self,
        topic_id: int | None = None,
        paragraphs: tuple[int, int] = (5, 9),
        outlet: str | None = None,
        sentences: tuple[int, int] = (2, 4),
    ) -> Article:
        rng = self.rng
        topic_id = rng.randrange(len(self.lex.topics)) if topic_id is None else topic_id
        topic = self.lex.topics[topic_id]
        body = [self.paragraph(topic, sentences) for _ in range(rng.randint(*paragraphs))]
        return Article(
            self.title(topic), body, outlet or rng.choice(self.lex.outlets), topic_id, rng.choice(self.lex.people)
        )


def boilerplate(outlet: str, writer: Writer) -> str:
    """The outlet's closing paragraph, the same under every article it publishes."""
    rng = random.Random(outlet)
    lex = writer.lex
    words = [rng.choice(FUNCTION_WORDS) if rng.random() < 0.4 else rng.choice(lex.nouns) for _ in range(34)]
    return f"{outlet} is {' '.join(words)}. Sign up for the {outlet} newsletter."


# -- exact Jaccard and planted edits -------------------------------------------------------------------------------


def shingles(text: str, n: int = 5) -> set[tuple[str, ...]]:
    """Word n-grams as the dedup spec defines them, with plain Python (the ground truth)."""
    words = _WORD.findall(unicodedata.normalize("NFKC", text).casefold())
    if len(words) < n:
        return {tuple(words)}
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


def jaccard(a: str, b: str) -> float:
    sa, sb = shingles(a), shingles(b)
    return len(sa & sb) / len(sa | sb) if sa or sb else 1.0


def _apply_edits(paragraphs: list[str], edits: list[tuple[int, int, str]], count: int) -> list[str]:
    """Apply the first `count` edits (paragraph, word position, replacement word; "" deletes)."""
    words = [p.split(" ") for p in paragraphs]
    for para, pos, new in edits[:count]:
        if not words[para]:
            continue
        at = pos % len(words[para])
        if new:
            words[para][at] = new
        elif len(words[para]) > 1:
            del words[para][at]
    return [" ".join(w) for w in words]


def near_duplicate(article: Article, target: float, rng: random.Random, lexicon: Lexicon) -> tuple[Article, float]:
    """An edited copy of `article` whose exact 5-gram Jaccard is as close to `target` as
    word substitutions and deletions allow (binary search over the number of edits)."""
    edits = []
    for _ in range(sum(len(p.split(" ")) for p in article.paragraphs)):
        para = rng.randrange(len(article.paragraphs))
        new = "" if rng.random() < 0.2 else rng.choice(lexicon.nouns + FUNCTION_WORDS)
        edits.append((para, rng.randrange(1 << 30), new))
    low, high = 0, len(edits)
    while low < high:
        mid = (low + high) // 2
        if jaccard(article.text, "\n\n".join(_apply_edits(article.paragraphs, edits, mid))) > target:
            low = mid + 1
        else:
            high = mid
    paragraphs = _apply_edits(article.paragraphs, edits, low)
    # Retitle, as another outlet would: the identity must differ so only the text can match.
    title_words = article.title.split(" ")
    title_words[-1] = rng.choice(lexicon.nouns)
    copy = Article(
        " ".join(title_words) + " " + rng.choice(lexicon.nouns),
        paragraphs,
        rng.choice(lexicon.outlets),
        article.topic,
        article.author,
    )
    return copy, jaccard(article.text, copy.text)


def add_boilerplate(article: Article, writer: Writer) -> None:
    """Give `article` its outlet's dateline and closing paragraph (as wire copy has)."""
    rng = random.Random(article.title)
    topic = writer.lex.topics[article.topic]
    dateline = f"{rng.choice(topic['places']).upper()}, {rng.choice(DAYS)} ({article.outlet}) -"
    article.paragraphs[0] = f"{dateline} {article.paragraphs[0]}"
    article.paragraphs.append(boilerplate(article.outlet, writer))


def lookalike(article: Article, kind: str, writer: Writer) -> Article:
    """An independently written article with the same topic, outlet and length as
    `article`; for `boilerplate` also its dateline and closing paragraph (`article` must
    already have them, see `add_boilerplate`)."""
    size = len(article.paragraphs) - (1 if kind == "boilerplate" else 0)
    brief = (2, 3) if size == 1 else (2, 4)
    other = writer.article(article.topic, paragraphs=(size, size), outlet=article.outlet, sentences=brief)
    if kind == "boilerplate":
        dateline = article.paragraphs[0].split(" (", 1)[0] + f" ({article.outlet}) -"
        other.paragraphs[0] = f"{dateline} {other.paragraphs[0]}"
        other.paragraphs.append(article.paragraphs[-1])
    return other


def planted_text_pairs(count: int, seed: int = 0, lexicon: Lexicon | None = None) -> Iterator[dict]:
    """`count` planted pairs as texts: {"a", "b", "kind", "jaccard"}; half near-duplicates
    (J spread over 0.5-1.0), the rest same-topic and boilerplate look-alikes. Half of
    the boilerplate pairs are one-paragraph briefs, where the shared dateline and
    closing paragraph are 30-55% of the 5-grams: the hardest honest non-duplicates."""
    rng = random.Random(seed)
    lexicon = lexicon or Lexicon.build(seed)
    writer = Writer(lexicon, rng)
    for index in range(count):
        if index % 8 == 7:
            base = writer.article(paragraphs=(1, 1), sentences=(2, 3))
        else:
            base = writer.article(paragraphs=(2, 3) if rng.random() < 0.2 else (4, 9))
        if index % 2 == 0:
            copy, value = near_duplicate(base, rng.uniform(0.5, 1.0), rng, lexicon)
            yield {"a": base.text, "b": copy.text, "kind": "near", "jaccard": value}
        else:
            kind = "same_topic" if index % 4 == 1 else "boilerplate"  # 3 and 7 (briefs)
            if kind == "boilerplate":
                add_boilerplate(base, writer)
            other = lookalike(base, kind, writer)
            yield {"a": base.text, "b": other.text, "kind": kind, "jaccard": jaccard(base.text, other.text)}


# -- page formats --------------------------------------------------------------------------------------------------


def relative_time(rng: random.Random) -> str:
    choice = rng.random()
    if choice < 0.3:
        return f"{rng.randint(2, 59)} minutes ago"
    if choice < 0.45:
        return "an hour ago"
    if choice < 0.7:
        return f"{rng.randint(2, 23)} hours ago"
    if choice < 0.8:
        return "yesterday"
    return f"{rng.randint(2, 6)} days ago"


AGGREGATOR_CHROME = [
    "Hashtags",
    "",
    "Try Our AI Features",
    "Explore what Daily8 AI can do for you:",
    "Comments",
    "No comments yet...",
    "Related Articles",
    "",
]


def cut_mid_sentence(text: str, rng: random.Random) -> str:
    """Visibly truncated: stop inside a sentence (no closing punctuation)."""
    words = text.split(" ")
    end = rng.randint(max(3, len(words) // 3), max(4, len(words) - 2))
    return " ".join(words[:end]).rstrip(".!?,")


def aggregator_page(main: Article, related: list[tuple[Article, str, str]]) -> str:
    """related: (article, relative time, body as shown)."""
    lines = ["", main.title, *main.paragraphs, *AGGREGATOR_CHROME]
    for article, when, body in related:
        lines += ["", article.outlet, when, f"- {article.outlet}", article.title, body, ""]
    return "\n".join(lines).rstrip("\n")


def _slug(title: str) -> str:
    return "-".join(_WORD.findall(title.casefold()))[:80]


def _domain(outlet: str) -> str:
    return "".join(_WORD.findall(outlet.casefold().removeprefix("the "))) + ".example"


def _url(article: Article, published: datetime) -> str:
    return f"https://www.{_domain(article.outlet)}/{published:%Y/%m}/{_slug(article.title)}"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def html_page(article: Article, published: datetime, most_read: list[str]) -> str:
    e = _escape
    paragraphs = "\n".join(f"      <p>{e(p)}</p>" for p in article.paragraphs)
    items = "\n".join(f'        <li><a href="/story/{i}">{e(t)}</a></li>' for i, t in enumerate(most_read))
    iso = published.strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>{e(article.title)} | {e(article.outlet)}</title>
  <link rel="canonical" href="{_url(article, published)}">
  <meta property="og:site_name" content="{e(article.outlet)}">
  <meta property="og:title" content="{e(article.title)}">
  <meta property="article:published_time" content="{iso}">
  <meta name="author" content="{e(article.author)}">
</head>
<body>
  <div id="cookie-banner" class="cookie-consent">
    <p>We use cookies to improve your experience and to show you relevant offers.</p>
    <button>Accept all</button> <button>Manage preferences</button>
  </div>
  <header>
    <nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li><li><a href="/business">Business</a></li>
    <li><a href="/sport">Sport</a></li><li><a href="/opinion">Opinion</a></li></ul></nav>
  </header>
  <main>
    <article>
      <h1>{e(article.title)}</h1>
      <p class="byline">By <span class="author">{e(article.author)}</span></p>
      <time datetime="{iso}">{published:%d %B %Y, %H:%M}</time>
{paragraphs}
    </article>
    <aside class="most-read">
      <h2>Most read</h2>
      <ol>
{items}
      </ol>
    </aside>
  </main>
  <footer>
    <p>&copy; 2025 {e(article.outlet)}. All rights reserved.</p>
    <ul><li><a href="/privacy">Privacy policy</a></li><li><a href="/terms">Terms of use</a></li>
    <li><a href="/contact">Contact us</a></li></ul>
  </footer>
</body>
</html>
"""


def newsplease_record(article: Article, published: datetime, rng: random.Random) -> dict:
    url = _url(article, published)
    return {
        "authors": [article.author],
        "date_download": CRAWL_TIME.strftime("%Y-%m-%d %H:%M:%S"),
        "date_modify": None,
        "date_publish": published.strftime("%Y-%m-%d %H:%M:%S"),
        "description": article.paragraphs[0].split(". ")[0].rstrip(".") + ".",
        "filename": _slug(article.title) + ".json",
        "image_url": f"https://img.{_domain(article.outlet)}/{rng.randrange(10**6)}.jpg",
        "language": "en",
        "localpath": None,
        "maintext": "\n".join(article.paragraphs),
        "source_domain": "www." + _domain(article.outlet),
        "title": article.title,
        "title_page": f"{article.title} | {article.outlet}",
        "title_rss": None,
        "url": url,
    }


# -- corpus --------------------------------------------------------------------------------------------------------


@dataclass
class Plan:
    """Which page gets which planted role; drawn up front so pages can be written in order."""

    partner: dict[int, tuple[int, str, float]] = field(default_factory=dict)  # b -> (a, kind, target)


def _plan(pages: int, rng: random.Random, planted_share: float) -> Plan:
    plan = Plan()
    pairs = int(pages * planted_share / 2)
    if pages < 2 or pairs == 0:
        return plan
    chosen = rng.sample(range(pages), 2 * pairs)
    for i in range(pairs):
        a, b = sorted(chosen[2 * i : 2 * i + 2])
        roll = rng.random()
        kind = "near" if roll < 0.6 else ("same_topic" if roll < 0.8 else "boilerplate")
        plan.partner[b] = (a, kind, rng.uniform(0.5, 1.0))
    return plan


def page_format(index: int, fmt: str) -> str:
    if fmt == "json":
        return "json" if index % 2 == 0 else "jsonl"
    if fmt != "mix":
        return fmt
    slot = index % 10
    return "aggregator" if slot < 6 else "html" if slot < 8 else "json" if slot == 8 else "jsonl"


EXTENSIONS = {"aggregator": ".txt", "html": ".html", "json": ".json", "jsonl": ".jsonl"}


def generate(
    out_dir: Path,
    pages: int,
    fmt: str = "aggregator",
    seed: int = 0,
    planted_share: float = 0.04,
    progress: bool = True,
) -> dict:
    """Write `pages` files under `out_dir/pages` plus `planted_pairs.jsonl`; returns the summary."""
    if fmt not in FORMATS:
        raise SystemExit(f"unknown format {fmt!r}: choose one of {', '.join(FORMATS)}")
    rng = random.Random(seed)
    lexicon = Lexicon.build(seed)
    writer = Writer(lexicon, rng)
    plan = _plan(pages, rng, planted_share)
    pool_size = max(30, pages // 4)
    pool = [writer.article(paragraphs=(3, 6)) for _ in range(pool_size)]
    popularity = list(itertools.accumulate(1.0 / (rank + 1) ** 0.8 for rank in range(pool_size)))  # cumulative
    mains: dict[int, Article] = {}
    keep_main = {a: kind for a, kind, _ in plan.partner.values()}
    planted = []
    counts = {
        "pages": pages,
        "format": fmt,
        "seed": seed,
        "main": 0,
        "related": 0,
        "truncated": 0,
        "spliced": 0,
        "by_format": {},
    }
    (out_dir / "pages").mkdir(parents=True, exist_ok=True)
    for index in range(pages):
        kind_of_page = page_format(index, fmt)
        if index in plan.partner:
            a, kind, target = plan.partner[index]
            base = mains.pop(a)
            if kind == "near":
                main, value = near_duplicate(base, target, rng, lexicon)
            else:
                main = lookalike(base, kind, writer)
                value = jaccard(base.text, main.text)
            planted.append(
                {
                    "a": _relpath(a, page_format(a, fmt)),
                    "b": _relpath(index, kind_of_page),
                    "kind": kind,
                    "jaccard": round(value, 4),
                }
            )
        else:
            main = writer.article()
        if index in keep_main:
            if keep_main[index] == "boilerplate":
                add_boilerplate(main, writer)
            mains[index] = main
        published = CRAWL_TIME - timedelta(minutes=rng.randint(5, 60 * 24 * 5))
        path = out_dir / "pages" / _relpath(index, kind_of_page)
        path.parent.mkdir(parents=True, exist_ok=True)
        counts["by_format"][kind_of_page] = counts["by_format"].get(kind_of_page, 0) + 1
        if kind_of_page == "aggregator":
            related = []
            for story in rng.choices(pool, cum_weights=popularity, k=rng.choice([0, 2, 3, 3, 3, 4, 5])):
                body = " ".join(story.paragraphs)
                roll = rng.random()
                if roll < 0.12:
                    body = cut_mid_sentence(body, rng)
                    counts["truncated"] += 1
                elif roll < 0.16:
                    other = rng.choice(pool)
                    body = cut_mid_sentence(body, rng) + " " + " ".join(other.paragraphs)[rng.randint(20, 200) :]
                    counts["spliced"] += 1
                related.append((story, relative_time(rng), body))
            counts["related"] += len(related)
            path.write_text(aggregator_page(main, related), encoding="utf-8")
        elif kind_of_page == "html":
            path.write_text(html_page(main, published, [a.title for a in rng.sample(pool, 5)]), encoding="utf-8")
        elif kind_of_page == "json":
            path.write_text(
                json.dumps(newsplease_record(main, published, rng), ensure_ascii=False, indent=1), encoding="utf-8"
            )
        else:
            extra = [writer.article() for _ in range(rng.randint(0, 3))]
            counts["main"] += len(extra)
            lines = [json.dumps(newsplease_record(a, published, rng), ensure_ascii=False) for a in [main, *extra]]
            path.write_text("\n".join(lines) + "\n", encoding="utf-8")
        counts["main"] += 1
        if progress and (index + 1) % 5000 == 0:
            print(f"synth: {index + 1}/{pages} pages", file=sys.stderr)
    with (out_dir / "planted_pairs.jsonl").open("w", encoding="utf-8") as handle:
        for row in planted:
            handle.write(json.dumps(row) + "\n")
    counts["planted"] = {k: sum(1 for p in planted if p["kind"] == k) for k in ("near", "same_topic", "boilerplate")}
    (out_dir / "synth.json").write_text(json.dumps(counts, indent=1) + "\n", encoding="utf-8")
    return counts


def _relpath(index: int, kind_of_page: str) -> str:
    return f"{index // 1000:04d}/{index:07d}{EXTENSIONS[kind_of_page]}"


# -- WARC view -----------------------------------------------------------------------------------------------------

WARC_VIEW = "pages-warc"
WARC_VIEW_MARKER = ".warc-view.json"  # hidden: normalize never reads it
WARC_VIEW_VERSION = 1
WARC_DATE = CRAWL_TIME.strftime("%Y-%m-%dT%H:%M:%SZ")
HTTP_DATE = format_datetime(CRAWL_TIME, usegmt=True)
_CANONICAL = re.compile(rb'<link rel="canonical" href="([^"]*)"')


def _warc_id(name: str) -> str:
    """A record id derived from the page (the same view gives the same ids)."""
    return f"<urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, name)}>"


def warc_record(
    kind: str,
    record_id: str,
    block: bytes,
    content_type: str,
    uri: str | None = None,
    extra: tuple[tuple[str, str], ...] = (),
) -> bytes:
    """One WARC/1.0 record as its own gzip member (what `.warc.gz` readers expect)."""
    lines = ["WARC/1.0", f"WARC-Type: {kind}", f"WARC-Record-ID: {record_id}", f"WARC-Date: {WARC_DATE}"]
    if uri is not None:
        lines.append(f"WARC-Target-URI: {uri}")
    lines += [f"{name}: {value}" for name, value in extra]
    lines += [f"Content-Type: {content_type}", f"Content-Length: {len(block)}"]
    record = ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + block + b"\r\n\r\n"
    return gzip.compress(record, compresslevel=6, mtime=0)


def http_response(status: str, headers: tuple[tuple[str, str], ...], body: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status}", *(f"{name}: {value}" for name, value in headers)]
    lines += [f"Date: {HTTP_DATE}", f"Content-Length: {len(body)}"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("ascii") + body


def page_uri(rel: str, body: bytes) -> str:
    """The page's canonical URL (percent-encoded: a WARC header is ASCII), else one made from its path."""
    found = _CANONICAL.search(body)
    url = html.unescape(found.group(1).decode("utf-8")) if found else f"https://pages.example/{rel}"
    return quote(url, safe=":/?#[]@!$&'()*+,;=%")


def write_warc(path: Path, pages_dir: Path, rels: list[str]) -> Counter[str]:
    """`rels` (HTML pages under `pages_dir`) as HTTP 200 responses, in order, plus a warcinfo
    record and a few request, metadata, redirect (301), image and 404 records so a reader's
    counting and quarantine paths run; returns the records written by kind."""
    kinds: Counter[str] = Counter()
    fields = f"software: newsstance benchmarks/synth.py\r\nformat: WARC File Format 1.0\r\nrecords: {len(rels)}\r\n"
    head = warc_record(
        "warcinfo",
        _warc_id(f"{path.name}#warcinfo"),
        fields.encode(),
        "application/warc-fields",
        extra=(("WARC-Filename", path.name),),
    )
    with path.open("wb") as handle:
        handle.write(head)
        kinds["warcinfo"] += 1
        for position, rel in enumerate(rels):
            body = (pages_dir / rel).read_bytes()
            uri = page_uri(rel, body)
            response_id = _warc_id(f"{rel}#response")
            records: list[tuple[str, bytes]] = []
            if position % 100 == 0:
                host = uri.split("/")[2] if uri.count("/") >= 3 else "pages.example"
                request = f"GET /{uri.split('/', 3)[-1]} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: synth\r\n\r\n"
                records.append(
                    (
                        "request",
                        warc_record(
                            "request",
                            _warc_id(f"{rel}#request"),
                            request.encode(),
                            "application/http; msgtype=request",
                            uri,
                            (("WARC-Concurrent-To", response_id),),
                        ),
                    )
                )
            page = http_response("200 OK", (("Content-Type", "text/html; charset=utf-8"),), body)
            records.append(
                ("page", warc_record("response", response_id, page, "application/http; msgtype=response", uri))
            )
            if position % 100 == 50:
                metadata = b"fetchTimeMs: 41\r\nhopsFromSeed: L\r\n"
                records.append(
                    (
                        "metadata",
                        warc_record(
                            "metadata",
                            _warc_id(f"{rel}#metadata"),
                            metadata,
                            "application/warc-fields",
                            uri,
                            (("WARC-Concurrent-To", response_id),),
                        ),
                    )
                )
            others = []
            if position % 200 == 100:  # the same page without "www." redirects to it
                moved = http_response("301 Moved Permanently", (("Location", uri),), b"")
                others.append(("redirect", uri.replace("://www.", "://", 1) + "?from=old", moved))
            if position % 500 == 250:
                png = http_response("200 OK", (("Content-Type", "image/png"),), b"\x89PNG\r\n\x1a\n" + bytes(400))
                others.append(("image", uri + "/lead.png", png))
            if position % 1000 == 500:
                missing = http_response(
                    "404 Not Found", (("Content-Type", "text/html; charset=utf-8"),), b"<html><body>Gone</body></html>"
                )
                others.append(("http_404", uri + "/comments", missing))
            for kind, other_uri, block in others:
                record = warc_record(
                    "response", _warc_id(f"{rel}#{kind}"), block, "application/http; msgtype=response", other_uri
                )
                records.append((kind, record))
            for kind, record in records:
                handle.write(record)
                kinds[kind] += 1
    return kinds


def _planted_pages(corpus: Path) -> set[str]:
    found: set[str] = set()
    with (corpus / "planted_pairs.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            pair = json.loads(line)
            found.update((pair["a"], pair["b"]))
    return found


def page_paths(summary: dict) -> list[str]:
    """Every page's path under `pages/`, in page order (as `generate` names them)."""
    return [_relpath(index, page_format(index, summary["format"])) for index in range(summary["pages"])]


def warc_view(corpus: Path, share: float, records_per_file: int = 1000, progress: bool = True) -> dict:
    """`corpus/pages-warc/`: the pages of `corpus/pages/` with `share` of all pages (HTML pages
    outside planted pairs, drawn with the corpus seed) packed into `warc/part-NNNNN.warc.gz`
    (`records_per_file` pages each) and every other file a hard link to its `pages/` file,
    under the same relative path. Returns the view's description (also its marker file
    `pages-warc/.warc-view.json`); an existing view with the same share and page count is
    reused as it is, any other is rebuilt (in a temp folder, then renamed)."""
    summary = json.loads((corpus / "synth.json").read_text(encoding="utf-8"))
    view = corpus / WARC_VIEW
    wanted = {
        "version": WARC_VIEW_VERSION,
        "pages": summary["pages"],
        "warc_share": share,
        "records_per_file": records_per_file,
    }
    marker_path = view / WARC_VIEW_MARKER
    if marker_path.exists():
        marker = json.loads(marker_path.read_text(encoding="utf-8"))
        if all(marker.get(key) == value for key, value in wanted.items()):
            return {**marker, "built": False}
    start = time.perf_counter()
    rels = page_paths(summary)
    planted = _planted_pages(corpus)
    eligible = [rel for rel in rels if rel.endswith(".html") and rel not in planted]
    count = round(summary["pages"] * share)
    if count > len(eligible):
        raise SystemExit(
            f"--warc-share {share}: {count:,} pages to pack but only {len(eligible):,} HTML pages outside planted pairs"
        )
    packed = sorted(random.Random(summary["seed"]).sample(eligible, count))
    packed_set = set(packed)
    pages_dir = corpus / "pages"
    building = corpus / f"{WARC_VIEW}.tmp"
    shutil.rmtree(building, ignore_errors=True)
    folders: set[Path] = set()
    for rel in rels:
        if rel in packed_set:
            continue
        target = building / rel
        if target.parent not in folders:
            target.parent.mkdir(parents=True, exist_ok=True)
            folders.add(target.parent)
        try:
            os.link(pages_dir / rel, target)
        except OSError as exc:
            raise SystemExit(f"cannot hard-link {pages_dir / rel} into {building}: {exc.strerror or exc}") from None
    linked = time.perf_counter() - start
    (building / "warc").mkdir(parents=True, exist_ok=True)
    files = []
    kinds: Counter[str] = Counter()
    for number, first in enumerate(range(0, len(packed), records_per_file)):
        name = f"warc/part-{number:05d}.warc.gz"
        written = write_warc(building / name, pages_dir, packed[first : first + records_per_file])
        files.append({"path": name, "records": dict(written)})
        kinds += written
        if progress and (number + 1) % 10 == 0:
            done = min(first + records_per_file, len(packed))
            print(f"synth: {number + 1} WARC files, {done:,}/{len(packed):,} pages", file=sys.stderr)
    marker = {
        **wanted,
        "packed": packed,
        "warc_files": files,
        "records": dict(sorted(kinds.items())),
        "linked": len(rels) - len(packed),
        "link_seconds": round(linked, 2),
        "seconds": round(time.perf_counter() - start, 2),
    }
    (building / WARC_VIEW_MARKER).write_text(json.dumps(marker) + "\n", encoding="utf-8")
    shutil.rmtree(view, ignore_errors=True)
    building.rename(view)
    return {**marker, "built": True}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--format", default="aggregator", choices=FORMATS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--planted-share", type=float, default=0.04, help="share of pages in planted pairs (default 0.04)"
    )
    parser.add_argument(
        "--warc-share",
        type=float,
        default=0.0,
        help="also write OUT_DIR/pages-warc/ with this share of all pages packed into WARC files (default 0: none)",
    )
    args = parser.parse_args(argv)
    summary = generate(args.out_dir, args.pages, args.format, args.seed, args.planted_share)
    if args.warc_share > 0:
        view = warc_view(args.out_dir, args.warc_share)
        summary["warc_view"] = {key: view[key] for key in ("warc_share", "records", "linked", "seconds")}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
