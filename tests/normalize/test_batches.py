"""Each step reads its input a batch at a time (so it runs over many records in a row, its code and
model warm in the CPU caches). Batching must not change a record, must keep order and per-file
state (ids count occurrences within a file), and must bound what it holds."""

from __future__ import annotations

import weakref
from datetime import UTC, datetime

from newsstance.normalize import steps
from newsstance.normalize.config import load_config
from newsstance.normalize.model import Article, CrawlContext, FileTask, Quarantine, Reason

CRAWL = datetime(2026, 3, 14, 9, 30, tzinfo=UTC)


def _counting(items: list[object], pulled: list[int]):
    for item in items:
        pulled[0] += 1
        yield item


def test_batches_keep_order_and_read_ahead_by_one_batch_at_most(monkeypatch):
    monkeypatch.setattr(steps, "BATCH_ITEMS", 5)
    items = [Quarantine(f"f{n}.txt", None, Reason.EMPTY, "x") for n in range(12)]
    pulled = [0]
    stream = steps.in_batches(_counting(items, pulled))
    first = next(stream)
    assert first is items[0] and pulled[0] == 5  # one batch read ahead, not the whole stream
    rest = list(stream)
    assert [first, *rest] == items and pulled[0] == 12


def test_an_item_handed_on_is_not_kept_alive_by_the_batch():
    class Page:  # stands for a big raw page that the next step frees once decoded
        pass

    def pages():
        for _ in range(3):
            yield Page()

    stream = steps.in_batches(pages())
    first = next(stream)
    handed_on = weakref.ref(first)
    del first
    assert handed_on() is None  # only the consumer held it
    assert len(list(stream)) == 2


def test_a_big_item_closes_its_batch(monkeypatch, tmp_path):
    monkeypatch.setattr(steps, "BATCH_ITEMS", 100)
    monkeypatch.setattr(steps, "BATCH_CHARS", 1000)
    from newsstance.normalize.model import RawPage

    task = FileTask(str(tmp_path / "a.txt"), "a.txt", 10, CrawlContext(CRAWL, "cli", CRAWL))
    items = [RawPage(task, b"x" * 400, "0" * 64) for _ in range(7)]
    pulled = [0]
    stream = steps.in_batches(_counting(items, pulled))
    next(stream)
    assert pulled[0] == 3  # 3 x 400 bytes reach the 1,000 limit: the batch stops there
    assert len(list(stream)) == 6


def _page(number: int, related: int) -> str:
    """An aggregator text page (the layout of corpus/raw/sample/agg_*.txt) with one main article and
    `related` teasers, two of them under the same title (ids count occurrences within a file)."""
    page = (
        f"\nLighthouse keepers meet, part {number}\nThe keepers of the three Westmarch lighthouses met on "
        f"Friday to plan the winter rota for the {number}th time, the harbour office said.\n"
        "Hashtags\n#Westmarch\nComments\nNo comments yet...\nRelated Articles\n"
    )
    for position in range(related):
        title = "Fog horn tested" if position < 2 else f"Keeper story {number}-{position}"
        page += (
            f"\n\nThe Coast Courier\n{position + 2} hours ago\n- The Coast Courier\n{title}\n"
            f"The fog horn on the north mole sounded for {position + 1} minutes on page {number}, as planned.\n"
        )
    return page


def test_records_do_not_depend_on_the_batch_size(tmp_path, monkeypatch, file_tasks):
    pages = {f"site/{n:02d}.txt": _page(n, related=2 + n % 4) for n in range(8)}
    tasks = file_tasks(tmp_path, pages, CRAWL)

    def records(batch: int) -> list[dict]:
        monkeypatch.setattr(steps, "_MEMOS", {})
        monkeypatch.setattr(steps, "BATCH_ITEMS", batch)
        out = steps.run_steps(tasks, steps.build_steps(load_config(None)))
        return [{**a.record, "signature": a.signature.tolist()} for a in out if isinstance(a, Article)]

    one_by_one, batched = records(1), records(3)  # 3 cuts most pages' articles across batches
    assert len(one_by_one) == sum(1 + 2 + n % 4 for n in range(8))
    assert len({r["id"] for r in one_by_one}) == len(one_by_one)  # the repeated title got distinct ids
    assert batched == one_by_one
