"""Language identification on the multilingual fixture set, script-aware word counting, dates that
can be true, canonical URLs, titles, and the missing-module case."""

from __future__ import annotations

import builtins
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest
from lxml import html as lxml_html

from newsstance.errors import EnvironmentProblem
from newsstance.normalize import dates, language, titles, urls
from newsstance.normalize.html_extract import collect_facts
from newsstance.normalize.prose import has_prose, word_units
from newsstance.normalize.truncation import is_cut

LANGUAGES = Path(__file__).parent / "data" / "languages.txt"
CRAWL = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def load_languages() -> dict[str, list[str]]:
    texts: dict[str, list[str]] = {}
    current = ""
    for line in LANGUAGES.read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            texts[current] = []
        else:
            texts[current].append(line)
    return texts


def test_fixture_set_covers_the_required_languages():
    assert {"ru", "uk", "ja", "zh", "ko", "ar", "pt", "de"} <= set(load_languages()) and len(load_languages()) >= 15


@pytest.mark.parametrize(("code", "texts"), sorted(load_languages().items()))
def test_paragraphs_are_identified_from_the_text(code, texts):
    for paragraph in texts[:3]:
        decision = language.decide(paragraph, declared="en" if code != "en" else "de")  # wrong markup loses
        assert (decision.language, decision.source) == (code, "text"), paragraph


def test_markup_breaks_ties_only_for_short_text_and_null_only_when_too_short():
    assert language.decide("Ja.", "nl") == language.LanguageDecision("nl", "markup")
    assert language.decide("Ja.", None) == language.LanguageDecision(None, "none")
    assert language.decide("Vila Serena", "pt-BR").language == "pt-BR"  # short: the declared language is plausible
    german = load_languages()["de"][0]
    assert language.decide(german, "de-AT").language == "de-AT"  # the text confirms: the region is kept


@pytest.mark.parametrize("code", ["ja", "zh", "th", "ko", "ar", "ru"])
def test_prose_is_detected_in_every_script(code):
    paragraph = load_languages()[code][0]
    assert has_prose([paragraph]) and word_units(paragraph) >= 10
    assert not has_prose(["ニュース", "ホーム"])  # navigation words stay fragments
    assert not is_cut([paragraph])  # a finished paragraph in any script is not a cut


def test_dates_that_cannot_be_true_fall_through_with_a_reason():
    choice = dates.choose(["0001-01-01T00:00:00Z", "2026-03-12T08:15:00+00:00"], CRAWL)
    assert choice.published_at == "2026-03-12T08:15:00Z" and "year 1" in (choice.rejected or "")
    for bad in ("1970-01-01T00:00:00Z", "1985-06-01", "2026-03-16T00:00:00Z"):
        only = dates.choose([bad], CRAWL)
        assert only.published_at is None and only.raw == bad and only.rejected
    assert dates.choose(["2026-03-15T05:00:00Z"], CRAWL).published_at  # within a day of the crawl: time zones


def test_canonical_url_anywhere_relative_and_iri():
    page = lxml_html.fromstring(
        "<html><head></head><body><p>x</p><link rel='canonical' href='/новости/паром?id=1'></body></html>"
    )
    host = "вести".encode("idna").decode("ascii")  # the standard IDNA encoding of the host
    assert urls.canonical_url(collect_facts(page).canonical, "https://вести.example/a/") == (
        f"https://{host}.example/%D0%BD%D0%BE%D0%B2%D0%BE%D1%81%D1%82%D0%B8/%D0%BF%D0%B0%D1%80%D0%BE%D0%BC?id=1"
    )
    og = lxml_html.fromstring("<html><body><meta property='og:url' content='https://a.example/x'></body></html>")
    assert urls.canonical_url(collect_facts(og).meta["og:url"]) == "https://a.example/x"
    assert urls.resolve("../b", "https://a.example/x/y/") == "https://a.example/x/b"
    assert urls.to_uri("javascript:void(0)") is None


def test_site_name_is_stripped_only_when_it_names_the_outlet():
    keys = titles.outlet_keys(["ZDNet"], ["https://www.zdnet.example/article/x"])
    assert titles.strip_site_name("Best tech gadgets of 2019 | ZDNet", keys) == ("Best tech gadgets of 2019", True)
    assert titles.strip_site_name("ZDNet - Best tech gadgets", keys)[0] == "Best tech gadgets"
    assert titles.strip_site_name("Harbour news: ferry returns", keys) == ("Harbour news: ferry returns", False)
    only_site = titles.clean_title([("title", "ZDNet"), ("h1", "Gadgets we liked this year")], keys)
    assert (only_site.title, only_site.source) == ("Gadgets we liked this year", "h1")
    assert titles.is_invisible("\u200b\u200d\u2060 ") and not titles.is_invisible("\u200bA")


def test_a_missing_module_aborts_instead_of_quarantining(tmp_path, monkeypatch):
    from newsstance.normalize.runner import run_normalize

    real_import = builtins.__import__

    def without_html_clean(name, *args, **kwargs):
        if name == "lxml_html_clean":
            raise ImportError("No module named 'lxml_html_clean'", name="lxml_html_clean")
        return real_import(name, *args, **kwargs)

    monkeypatch.delitem(sys.modules, "lxml_html_clean", raising=False)
    monkeypatch.setattr(builtins, "__import__", without_html_clean)
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.html").write_text(
        "<html><body><article><p>" + "Words of a sentence here. " * 10 + "</p></article></body></html>"
    )
    with pytest.raises(EnvironmentProblem, match="lxml_html_clean"):
        run_normalize([raw], tmp_path / "out", crawl_time="2026-03-14T09:30:00Z", workers=1)
    assert not (tmp_path / "out" / "quarantine.jsonl").exists()


def test_cli_reports_a_missing_module_in_one_line_and_fails(tmp_path):
    import os
    import subprocess

    blocker = tmp_path / "blocker"
    blocker.mkdir()  # a module that fails to import, first on the path: what an install without it looks like
    (blocker / "lxml_html_clean.py").write_text(
        "raise ImportError(\"No module named 'lxml_html_clean'\", name='lxml_html_clean')\n"
    )
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / "page.html").write_text(
        "<html><body><article><p>" + "Words of a sentence here. " * 10 + "</p></article></body></html>"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")])}
    run = subprocess.run(
        [sys.executable, "-m", "newsstance.cli", "normalize", str(raw), "--out", str(tmp_path / "out")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert run.returncode != 0
    lines = [line for line in run.stderr.splitlines() if line.strip() and "normalize:" not in line]
    assert len(lines) == 1 and "lxml_html_clean" in lines[0], run.stderr
    assert "Traceback" not in run.stderr
    assert not (tmp_path / "out" / "quarantine.jsonl").exists()
