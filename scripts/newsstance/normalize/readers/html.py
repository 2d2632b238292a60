"""HTML pages: the article through `html_extract` (one parse; trafilatura with a readability
fallback; headline, canonical URL, outlet, authors and date candidates from the page's own
metadata), then the chrome the extractor kept is removed by `chrome.strip_body_chrome`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from newsstance.normalize.chrome import strip_body_chrome
from newsstance.normalize.config import NormalizeConfig
from newsstance.normalize.decode import join_paragraphs
from newsstance.normalize.html_extract import parse_html
from newsstance.normalize.model import Draft, Format, Quarantine, Reason, TextPage


def read_html_page(page: TextPage, config: NormalizeConfig, stats: Counter[str]) -> Iterator[Draft | Quarantine]:
    """One standalone draft for the page's article, else a quarantine entry."""
    crawl = page.task.crawl
    article = parse_html(page.text, page_url=crawl.url, outlet=crawl.outlet)
    if article is None:
        yield Quarantine(page.rel, page.sha256, Reason.NO_ARTICLE, "no main text found in the HTML")
        return
    if not article.title:
        yield Quarantine(page.rel, page.sha256, Reason.NO_TITLE, "no visible headline in <title>, og:title or <h1>")
        return
    stats[f"extractor:{article.extractor}"] += 1
    paragraphs = strip_body_chrome(article.paragraphs, config.chrome)
    if not paragraphs:
        detail = "the HTML main text is only share/related/promo lines"
        yield Quarantine(page.rel, page.sha256, Reason.NO_ARTICLE, detail)
        return
    yield Draft(
        page=page,
        format=Format.HTML,
        title=article.title,
        text=join_paragraphs(paragraphs),
        source=article.source or crawl.outlet,
        url=article.url or crawl.url,
        authors=list(article.authors),
        language=article.language or crawl.language,
        published_raw=article.date_candidates[0] if article.date_candidates else None,
        date_candidates=article.date_candidates[1:],
        repairs=list(article.repairs),
        extractor=article.extractor,
        byte_start=0,
        byte_end=page.size,
    )
