"""The real aggregator scrape in ../shared/seeds (skipped when absent). Only titles are asserted:
no seed text is copied into the repository."""

from __future__ import annotations

SEED = "000_15f1c4107c37abfd.txt"
CHROME = (
    "Hashtags",
    "Try Our AI Features",
    "Explore what",
    "can do for you",
    "Comments",
    "No comments yet",
    "Related Articles",
    "- Russia Today",
    "18 minutes ago",
    "an hour ago",
)


def test_seed_page_gives_the_four_expected_records(seeds_dir, tmp_path, outputs):
    from newsstance.normalize.runner import run_normalize

    summary = run_normalize([seeds_dir / SEED], tmp_path / "out", crawl_time="2025-08-08T12:00:00Z")
    records, quarantine = outputs(tmp_path / "out")
    assert summary.articles == 4 and not quarantine
    main = records[0]
    assert (main["title"], main["role"], main["source"], main["published_at_raw"]) == (
        "Russia prefers peaceful solution to Ukraine conflict",
        "main",
        None,
        None,
    )
    related = records[1:]
    assert [r["role"] for r in related] == ["related"] * 3
    assert {r["source"] for r in related} == {"Russia Today"}
    assert [r["published_at_raw"] for r in related] == ["18 minutes ago", "an hour ago", "an hour ago"]
    assert [r["title"] for r in related] == [
        "Ukraine has ‘sold out'",
        "Putin and Xi discuss Ukraine ahead of expected Russia-US summit",
        "India's Modi thanks Putin for Ukraine update",
    ]
    assert all(r["related_to"] == main["id"] for r in related)
    assert [r["published_at"] for r in related] == [
        "2025-08-08T11:42:00Z",
        "2025-08-08T11:00:00Z",
        "2025-08-08T11:00:00Z",
    ]
    for record in records:
        for chrome in CHROME:
            assert chrome not in record["text"], (record["title"], chrome)
    assert [r["truncated"] for r in records] == [False, True, False, False]  # the first related body is spliced
    assert all(r["provenance"]["format"] == "aggregator" for r in records)
