"""Pre-annotation per language: entity P/R/F1 and cost of the model each language is routed to.

    .venv/bin/python benchmarks/ner_languages.py

Hand-written fictional sentences (people, places and companies are invented) with the entities
a reader sees, in scheme labels. Russian goes to natasha (slovnet news NER, model inside the
wheel), English to the spaCy model; the English model's output on the Russian sentences is shown
too, as the reason other languages get no pre-annotation rather than the English model's.
Exact-span matching (start, end, label).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

RUSSIAN = [
    (
        "Мэр Светлогорья Эдита Карова встретилась в Москве с министром транспорта Ильёй Варгиным.",
        [("Светлогорья", "LOC"), ("Эдита Карова", "PERSON"), ("Москве", "LOC"), ("Ильёй Варгиным", "PERSON")],
    ),
    ("Фома Вельский много лет работает на причалах в Приморске.", [("Фома Вельский", "PERSON"), ("Приморске", "LOC")]),
    ("Компания «Северный паром» получила заказ на два новых судна.", [("Северный паром", "ORG")]),
    (
        "По словам Анны Лисовой, банк «Озёрный капитал» закроет отделение в Заречье.",
        [("Анны Лисовой", "PERSON"), ("Озёрный капитал", "ORG"), ("Заречье", "LOC")],
    ),
    (
        "Губернатор Тихон Марков прилетел в Казань на переговоры с компанией «Волжский металл».",
        [("Тихон Марков", "PERSON"), ("Казань", "LOC"), ("Волжский металл", "ORG")],
    ),
    ("Жители Берёзовки пожаловались в прокуратуру на шум от завода «Кедр».", [("Берёзовки", "LOC"), ("Кедр", "ORG")]),
]
ENGLISH = [
    (
        "Mayor Edith Carrow met transport minister Ilya Vargin in Brindlemoor on Tuesday.",
        [("Edith Carrow", "PERSON"), ("Ilya Vargin", "PERSON"), ("Brindlemoor", "GPE")],
    ),
    ("The Larkholm Rowing Club welcomed the decision.", [("The Larkholm Rowing Club", "ORG")]),
]


def spans_of(text: str, gold: list[tuple[str, str]]) -> set[tuple[int, int, str]]:
    found = set()
    for surface, label in gold:
        start = text.index(surface)
        found.add((start, start + len(surface), label))
    return found


def score(ner, items, language: str) -> str:  # type: ignore[no-untyped-def]
    started = time.process_time()
    predicted = ner.spans([(text, language) for text, _ in items])
    cpu = time.process_time() - started
    tp = fp = fn = 0
    for (text, gold), spans in zip(items, predicted, strict=True):
        want = spans_of(text, gold)
        got = {(s.start, s.end, s.label) for s in spans or []}
        tp += len(want & got)
        fp += len(got - want)
        fn += len(want - got)
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    return f"P {p:.2f}  R {r:.2f}  F1 {f1:.2f}  ({tp + fn} entities, {1000 * cpu / len(items):.1f} ms/sentence incl. first-batch overhead)"


def main() -> None:
    from newsstance.ner import LanguageRoutedNER, SpacyNER
    from newsstance.scheme import load_scheme

    scheme = load_scheme()
    ner = LanguageRoutedNER(scheme)
    ner.spans([("Прогрев модели.", "ru"), ("Warm up.", "en")])
    print(f"ru -> {ner.model_versions['ru']}: {score(ner, RUSSIAN, 'ru')}")
    print(f"en -> {ner.model_versions['en']}: {score(ner, ENGLISH, 'en')}")

    class EnglishOnRussian:
        spacy = SpacyNER(scheme)

        def spans(self, items):  # type: ignore[no-untyped-def]
            return list(self.spacy.spans(text for text, _ in items))

    print(f"ru -> the English spaCy model (not used): {score(EnglishOnRussian(), RUSSIAN, 'ru')}")


if __name__ == "__main__":
    main()
