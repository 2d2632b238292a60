"""The per-record steps of the normalize pipeline, as datatrove pipeline steps.

Each step transforms a stream of `Item`s: it handles its own item types, passes every other
item (notably `Quarantine`) through unchanged, and counts what it did in `self.counts` (added
to datatrove's per-task stats when the stream ends). Steps are pure per record, hold no
execution concerns and are picklable, so any datatrove executor (local, Slurm, Ray; see
`engine`) runs the same chain on a task's `FileTask`s:

    items = run_steps(tasks, build_steps(config))
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Iterator
from pathlib import PurePosixPath
from typing import Any, Generic, TypeVar

import numpy as np
from datatrove.pipeline.base import PipelineStep as DatatroveStep

from newsstance import ids
from newsstance.errors import EnvironmentProblem
from newsstance.normalize import dates, language, titles, urls
from newsstance.normalize.config import NormalizeConfig
from newsstance.normalize.decode import DecodeError, decode_bytes
from newsstance.normalize.model import (
    PARSER_VERSION,
    SCHEMA_VERSION,
    Article,
    Draft,
    FileTask,
    Item,
    Quarantine,
    RawPage,
    Reason,
    TextPage,
    iso_utc,
)
from newsstance.normalize.readers import READERS, sniff_format
from newsstance.normalize.truncation import is_truncated
from newsstance.records import validator

T = TypeVar("T")

MEMO_SIZE = 32768  # texts remembered per step and worker (~0.7 KB each for signatures: ~22 MB)
MEMO_MAX_CHARS = 1 << 20  # longer texts are rare, seldom repeated, and their digest would copy them


def text_key(text: str) -> bytes:
    """A 128-bit digest of a text, to remember results by without holding the text."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class TextMemo(Generic[T]):
    """The last `size` results of a pure function of an article's text, least recently used
    forgotten first. The same text recurs across a crawl (a related-article teaser on every page of
    a site, a wire story syndicated by many outlets: 43% of the synthetic benchmark's articles), so a
    worker identifies its language, checks it for truncation and signs it once. One memo per
    purpose and process (`memo`): an executor runs many tasks in one worker, each with its own
    copy of the steps."""

    def __init__(self, size: int = MEMO_SIZE):
        self.size = size
        self._results: OrderedDict[Any, T] = OrderedDict()

    def get(self, key: Any) -> T | None:
        result = self._results.get(key)
        if result is not None:
            self._results.move_to_end(key)
        return result

    def put(self, key: Any, result: T) -> T:
        self._results[key] = result
        if len(self._results) > self.size:
            self._results.popitem(last=False)
        return result


_MEMOS: dict[str, TextMemo[Any]] = {}


def remembered(memo: TextMemo[T], compute: Callable[[str, Any], T], text: str, extra: Any = None) -> T:
    """`compute(text, extra)`, a pure function, looked up in `memo` first."""
    if len(text) > MEMO_MAX_CHARS:
        return compute(text, extra)
    key = (text_key(text), extra)
    found = memo.get(key)
    return memo.put(key, compute(text, extra)) if found is None else found


def _truncated(text: str, _: Any) -> bool:
    return is_truncated(text.split("\n\n"))


def memo(purpose: str, size: int = MEMO_SIZE) -> TextMemo[Any]:
    """This process's memo for `purpose` (created on first use)."""
    found = _MEMOS.get(purpose)
    if found is None or found.size != size:
        found = _MEMOS[purpose] = TextMemo(size)
    return found


BATCH_ITEMS = 256  # items a step takes from the one before it at a time
BATCH_CHARS = 1 << 20  # ... or fewer, once their text or bytes reach 1M (a few big pages)


def _weight(item: Item) -> int:
    """The size of what an item holds in memory (bytes or characters of text)."""
    if isinstance(item, Draft):
        return len(item.text) if isinstance(item.text, str) else 0
    if isinstance(item, Article):
        text = item.record.get("text")
        return len(text) if isinstance(text, str) else 0
    if isinstance(item, TextPage):
        return len(item.text)
    if isinstance(item, RawPage):
        return len(item.data)
    return 0


def in_batches(items: Iterable[Item]) -> Iterator[Item]:
    """`items`, pulled from upstream a batch at a time (`BATCH_ITEMS`, at most `BATCH_CHARS`).

    Generators chained one item at a time run every step once per record, so each step finds its
    code and data (fastText's model, the schema validator, regexes) evicted from the CPU caches by
    the other steps: fastText alone took 0.21 ms per text that way against 0.06 ms in a loop. With
    every step reading its input through this buffer, each step runs over a batch in a row. Order,
    per-step state and outputs are unchanged; memory grows by one bounded batch per step."""
    batch: list[Item] = []
    held = 0
    for item in items:
        batch.append(item)
        held += _weight(item)
        if len(batch) >= BATCH_ITEMS or held >= BATCH_CHARS:
            yield from _drained(batch)
            held = 0
    yield from _drained(batch)


def _drained(batch: list[Item]) -> Iterator[Item]:
    """The batch's items in order, each dropped from the batch as it is handed on: the buffer never
    keeps alive what a step has freed (a big page's raw bytes once it is decoded)."""
    batch.reverse()
    while batch:
        yield batch.pop()


class PipelineStep(DatatroveStep):
    """A datatrove step over `Item`s: `process` is the per-record transform; `self.counts`
    holds its counters (cheap to bump per record) and is added to datatrove's stats at the end."""

    name = "step"
    type = "newsstance"

    def __init__(self) -> None:
        super().__init__()
        self.counts: Counter[str] = Counter()
        self._reported: Counter[str] = Counter()

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        raise NotImplementedError

    def warm(self) -> None:
        """Load what the step needs once per process (models): an executor that forks workers calls
        this first, so the workers share it instead of each loading its own copy."""

    def run(self, data: Iterable[Item] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Item]:
        yield from self.process(in_batches(data if data is not None else ()))
        for key, value in (self.counts - self._reported).items():
            self.stat_update(key, value=value)
        self._reported = Counter(self.counts)

    def __call__(self, data: Iterable[Item] | None = None, rank: int = 0, world_size: int = 1) -> Iterator[Item]:
        return self.run(data, rank, world_size)


def input_sha256(path: str, rel: str | None = None) -> str:
    """Content hash of an input, in chunks (an oversized file is never held in memory). Local
    files go through `sources.open_regular`: a FIFO or a link out of the root raises OSError
    instead of blocking or being read."""
    from newsstance.normalize import sources

    if sources.is_remote(path):
        outcome = sources.read_remote(path, max_bytes=-1)
    else:
        root = sources.input_root(path, rel) if rel else None
        outcome = sources.read_stable(path, root, max_bytes=-1)
    if isinstance(outcome, sources.Unreadable):
        raise sources.UnreadableInput(outcome)
    return outcome.sha256


class LoadFiles(PipelineStep):
    """FileTask -> RawPage (bytes + sha256, from one stable read) or Quarantine (read_error,
    too_large, empty, not_a_file, outside_root, changed_during_run; see `sources`). Oversized
    files are hashed in chunks, never held in memory; WARC archives are streamed record by record
    (`readers.warc`), the size limit applying per record."""

    name = "load"

    def __init__(self, max_bytes: int):
        super().__init__()
        self.max_bytes = max_bytes

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        from newsstance.normalize.readers.warc import is_warc_path

        for item in items:
            if isinstance(item, FileTask) and is_warc_path(item.rel):
                yield from self._load_warc(item)
            else:
                yield self._load(item) if isinstance(item, FileTask) else item

    def _load(self, task: FileTask) -> RawPage | Quarantine:
        from newsstance.normalize import sources

        if sources.is_remote(task.path):
            read = sources.read_remote(task.path, self.max_bytes)
        else:
            read = sources.read_stable(task.path, sources.input_root(task.path, task.rel), self.max_bytes)
        if isinstance(read, sources.Unreadable):
            self.counts[str(read.reason)] += 1
            return Quarantine(task.rel, read.sha256, read.reason, read.detail)
        if isinstance(read, sources.TooLarge):
            self.counts["too_large"] += 1
            detail = f"{read.size} bytes is over the limit of {self.max_bytes} (--max-bytes)"
            return Quarantine(task.rel, read.sha256, Reason.TOO_LARGE, detail, file_size=read.size)
        data, sha256 = read.data, read.sha256
        self.counts["read"] += 1
        if not data or data.isspace():  # no strip(): it would copy a big file
            self.counts["empty"] += 1
            detail = "the file is empty" if not data else "the file holds only whitespace"
            return Quarantine(task.rel, sha256, Reason.EMPTY, detail, file_size=read.size)
        # the task carries the size of this read, so the manifest's size and hash agree
        return RawPage(dataclasses.replace(task, size=read.size), data, sha256)

    def _load_warc(self, task: FileTask) -> Iterator[RawPage | Quarantine]:
        """A WARC archive: hashed, then streamed record by record (limits per record)."""
        from newsstance.normalize import sources
        from newsstance.normalize.readers.warc import warc_items

        local = not sources.is_remote(task.path)
        if local:
            opened = sources.open_regular(task.path, sources.input_root(task.path, task.rel))
            if isinstance(opened, sources.Unreadable):
                self.counts[str(opened.reason)] += 1
                yield Quarantine(task.rel, opened.sha256, opened.reason, opened.detail)
                return
            opener: Any = os.fdopen(opened[0], "rb")
        else:
            import fsspec

            opener = fsspec.open(task.path, "rb")
        try:
            with opener as handle:
                before = sources.snapshot(handle) if local else None
                sha256, size = sources.sha256_handle(handle)
                self.counts["read"] += 1
                task = dataclasses.replace(task, size=size)
                yield from warc_items(task, handle, sha256, self.max_bytes, self.counts)
                if before is not None and (sources.snapshot(handle) != before or size != before[0]):
                    # records already went downstream: report the change, the next run reads it again
                    self.counts[str(Reason.CHANGED_DURING_RUN)] += 1
                    detail = "the WARC file changed while its records were read: re-run to read it again"
                    yield Quarantine(task.rel, sha256, Reason.CHANGED_DURING_RUN, detail, file_size=size)
        except OSError as exc:
            self.counts["read_error"] += 1
            yield Quarantine(task.rel, None, Reason.READ_ERROR, read_error_detail(exc))


def read_error_detail(exc: OSError) -> str:
    """The quarantine detail of an unreadable input (the same whether met when planning or loading)."""
    detail = getattr(exc, "detail", None)  # sources.UnreadableInput
    return detail if isinstance(detail, str) else f"{type(exc).__name__}: {exc.strerror or exc}"


class DecodeText(PipelineStep):
    """RawPage -> TextPage (encoding detected, repairs recorded) or Quarantine (binary, undecodable, empty)."""

    name = "decode"

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if not isinstance(item, RawPage):
                yield item
                continue
            size = item.task.size
            try:
                decoded = decode_bytes(item.data, item.task.crawl.charset)
            except DecodeError as exc:
                self.counts[str(exc.reason)] += 1
                yield Quarantine(item.task.rel, item.sha256, exc.reason, exc.detail, file_size=size)
                continue
            if not decoded.text or decoded.text.isspace():  # no strip(): it would copy a big text
                self.counts["empty"] += 1
                yield Quarantine(item.task.rel, item.sha256, Reason.EMPTY, "no text after decoding", file_size=size)
                continue
            for repair in decoded.repairs:
                self.counts[f"repair:{repair}"] += 1
            page = TextPage(
                item.task,
                item.sha256,
                decoded.text,
                decoded.encoding,
                decoded.repairs,
                len(item.data),
                decoded.invalid_bytes,
            )
            del item, decoded  # bounded memory: the raw bytes are freed before the page is processed
            yield page


class ExtractArticles(PipelineStep):
    """TextPage -> one Draft per article or Quarantine, by the reader of the page's format
    (sniffed from the content; see `readers`)."""

    name = "extract"

    def __init__(self, config: NormalizeConfig):
        super().__init__()
        self.config = config

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if not isinstance(item, TextPage):
                yield item
                continue
            is_record = item.task.crawl.record_id is not None  # an archive's HTML response (readers/warc.py)
            kind = "html" if is_record else sniff_format(item.text, PurePosixPath(item.rel).suffix.lower())
            self.counts[f"format:{kind}"] += 1
            outputs: list[Draft | Quarantine]
            try:
                # a reader bug on one odd page must not stop the run: that page is quarantined instead
                outputs = list(READERS[kind](item, self.config, self.counts))
            except EnvironmentProblem:
                raise  # a missing module or model fails every page alike: stop the run with one line
            except Exception as exc:
                self.counts["reader_error"] += 1
                detail = f"the {kind} reader failed: {type(exc).__name__}: {exc}"
                outputs = [Quarantine(item.rel, item.sha256, Reason.NO_ARTICLE, detail)]
            else:
                for out in outputs:
                    if isinstance(out, Quarantine):
                        self.counts[str(out.reason)] += 1
            item.text = ""  # bounded memory: drafts keep the page for provenance only, not its text
            for out in outputs:
                if isinstance(out, Draft):
                    self.counts[f"role:{out.role}"] += 1
                    self.counts["articles"] += 1
                yield out


class ResolveDates(PipelineStep):
    """Crawl time per record (cli > sidecar > manifest > record > mtime); published time against it."""

    name = "dates"

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Draft):
                item.crawled_at, item.crawl_source = item.page.task.crawl.resolve(item.record_time)
                self.counts[f"crawl:{item.crawl_source}"] += 1
                raws = [item.published_raw, *item.date_candidates] if item.published_raw else item.date_candidates
                choice = dates.choose(raws, item.crawled_at)
                item.published_raw, item.published_at, item.precision = (
                    choice.raw,
                    choice.published_at,
                    choice.precision,
                )
                item.date_rejected = choice.rejected
                if choice.rejected:
                    self.counts["rejected_date"] += 1
                if item.published_raw and item.published_at is None:
                    self.counts["unusable_date"] += 1
                elif item.precision:
                    self.counts[f"precision:{item.precision}"] += 1
            yield item


class CheckTitles(PipelineStep):
    """Titles a person can see: bidi controls removed (recorded in `repairs`), a site-name segment
    matching the outlet dropped, an invisible title quarantined as `no_title` (see `titles`)."""

    name = "titles"

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        for item in items:
            if isinstance(item, Draft) and isinstance(item.title, str) and item.title.strip():
                title, had_bidi = titles.remove_bidi(item.title)
                if titles.is_invisible(title):
                    self.counts["no_title"] += 1
                    yield Quarantine(
                        item.rel,
                        item.page.sha256,
                        Reason.NO_TITLE,
                        f"the title {item.title!r} has no visible character",
                        line=item.line_start,
                        record_index=item.record_index,
                    )
                    continue
                url = item.url if isinstance(item.url, str) else None
                source = item.source if isinstance(item.source, str) else None
                title, named_site = titles.strip_site_name(title, titles.outlet_keys([source], [url]))
                for repair, done in (("title_bidi_controls", had_bidi), ("title_site_name", named_site)):
                    if done and repair not in item.repairs:
                        item.repairs.append(repair)
                        self.counts[repair] += 1
                item.title = title
            yield item


class IdentifyLanguage(PipelineStep):
    """`language` from the article text; the declared tag (markup, record, sidecar) breaks ties for
    short texts (see `language`)."""

    name = "language"

    def __init__(self, default_language: str | None = None):
        super().__init__()
        self.default_language = default_language  # for texts too short to identify that declare nothing

    def warm(self) -> None:
        language.warm()

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        decisions: TextMemo[language.LanguageDecision] = memo("language")
        for item in items:
            if isinstance(item, Draft) and isinstance(item.text, str):
                declared = (item.language if isinstance(item.language, str) else None) or self.default_language
                decision = remembered(decisions, language.decide, item.text, declared)
                item.language, item.language_source = decision.language, decision.source
                self.counts[f"language:{decision.source}"] += 1
            yield item


class FlagTruncation(PipelineStep):
    """`truncated` when the body is cut or spliced mid-sentence (see `truncation`)."""

    name = "truncation"

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        verdicts: TextMemo[bool] = memo("truncation")
        for item in items:
            if isinstance(item, Draft) and isinstance(item.text, str):
                item.truncated = remembered(verdicts, _truncated, item.text)
                self.counts["truncated"] += item.truncated
            yield item


class AssignIds(PipelineStep):
    """Stable ids from identity (canonical URL, else outlet + title), raw path and occurrence;
    related articles point at their page's main article. An address a reader took as it was
    written (news-please `url`, a sidecar, a WARC target) that is an IRI - `https://example.org/
    café-news`, common on sites in any language but English - is put in its percent-encoded URI
    form first (the schema's `format: uri`), rather than the record being quarantined."""

    name = "ids"

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        current_rel = None
        occurrences: Counter[str] = Counter()
        ids_by_position: dict[int, str] = {}
        for item in items:
            if isinstance(item, Draft):
                rel = item.page.task.rel
                if rel != current_rel:
                    current_rel, occurrences, ids_by_position = rel, Counter(), {}
                if isinstance(item.url, str):
                    item.url = urls.uri_form(item.url)
                url = item.url if isinstance(item.url, str) else None
                source = item.source if isinstance(item.source, str) else None
                title = item.title if isinstance(item.title, str) else ""
                item.identity = ids.identity_key(url, source, title)
                item.id = ids.article_id(item.identity, rel, occurrences[item.identity])
                occurrences[item.identity] += 1
                ids_by_position[item.position] = item.id
                if item.main_position is not None:
                    item.related_to = ids_by_position.get(item.main_position)
                self.counts["ids"] += 1
            yield item


def build_record(draft: Draft) -> dict[str, Any]:
    """The article record in schema field order (`id` first: the merge reads it from the line prefix)."""
    page = draft.page
    text = draft.text
    provenance: dict[str, Any] = {"path": page.task.rel, "sha256": page.sha256, "format": str(draft.format)}
    crawl = page.task.crawl
    for key in ("line_start", "line_end", "byte_start", "byte_end", "record_index"):
        value = getattr(draft, key)
        if value is not None and crawl.record_id is None:
            provenance[key] = value
    if crawl.record_id is not None:  # a WARC record: path is the archive, these say where in it
        provenance.update(
            record_index=crawl.record_index, warc_record_id=crawl.record_id, warc_record_offset=crawl.record_offset
        )
    provenance.update(
        {
            "parser_version": PARSER_VERSION,
            "encoding": page.encoding,
            "repairs": [*page.repairs, *draft.repairs],
            **({"invalid_bytes": page.invalid_bytes} if page.invalid_bytes else {}),
            "crawl_time_source": draft.crawl_source,
            "near_duplicate_jaccard": None,
            "language_source": draft.language_source,
        }
    )
    if draft.date_rejected:
        provenance["published_at_rejected"] = draft.date_rejected
    if draft.extractor:
        provenance["extractor"] = draft.extractor
    return {
        "id": draft.id,
        "title": draft.title,
        "text": text,
        "text_sha256": ids.text_sha256(text) if isinstance(text, str) else "",
        "source": draft.source,
        "url": draft.url,
        "authors": draft.authors,
        "published_at": draft.published_at,
        "published_at_raw": draft.published_raw,
        "published_at_precision": draft.precision,
        "crawled_at": iso_utc(draft.crawled_at) if draft.crawled_at else None,
        "language": draft.language,
        "role": draft.role,
        "related_to": draft.related_to,
        "duplicate_of": None,
        "truncated": draft.truncated,
        "provenance": provenance,
        "schema_version": SCHEMA_VERSION,
    }


class BuildRecords(PipelineStep):
    """Draft -> Article (validated against schema/article.schema.json) or Quarantine(schema_invalid)."""

    name = "validate"

    def __init__(self) -> None:
        super().__init__()
        self._validator: Any = None

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_validator"] = None  # the compiled validator is rebuilt where the step runs
        return state

    def warm(self) -> None:
        validator("article.schema.json")

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        if self._validator is None:
            self._validator = validator("article.schema.json")
        for item in items:
            if not isinstance(item, Draft):
                yield item
                continue
            record = build_record(item)
            errors = self._validator.errors(record)
            if errors:
                self.counts["schema_invalid"] += 1
                yield Quarantine(
                    item.page.task.rel,
                    item.page.sha256,
                    Reason.SCHEMA_INVALID,
                    "; ".join(str(e) for e in errors[:3]) + (" ..." if len(errors) > 3 else ""),
                    errors=[e.as_dict() for e in errors],
                    line=item.line_start,
                    record_index=item.record_index,
                )
                continue
            self.counts["valid"] += 1
            yield Article(item.page.task.rel, record, item.identity, file_size=item.page.task.size)


class AddSignatures(PipelineStep):
    """Near-duplicate signatures (from the dedup module), computed in the workers; identical texts
    (the same related article on many pages) are signed once."""

    name = "signature"

    def __init__(self, signature: Callable[[str], tuple[np.ndarray, int]] | None = None, cache_size: int = MEMO_SIZE):
        super().__init__()
        self._signature = signature
        self._cache_size = cache_size

    def process(self, items: Iterable[Item]) -> Iterator[Item]:
        signature = self._signature
        if signature is None:
            from newsstance.normalize import dedup

            signature = dedup.signature_and_size
        # the process's memo for the default signature; a custom function's results are its own
        signed: TextMemo[tuple[np.ndarray, int]] = (
            memo("signature", self._cache_size) if self._signature is None else TextMemo(self._cache_size)
        )
        for item in items:
            if isinstance(item, Article):
                key = item.record["text_sha256"]
                cached = signed.get(key)
                if cached is None:
                    cached = signed.put(key, signature(item.record["text"]))
                    self.counts["computed"] += 1
                else:
                    self.counts["reused"] += 1
                item.signature, item.shingles = cached
            yield item


def build_steps(config: NormalizeConfig) -> list[PipelineStep]:
    """The full per-record chain, from FileTask to signed Article."""
    return [
        LoadFiles(config.max_bytes),
        DecodeText(),
        ExtractArticles(config),
        CheckTitles(),
        IdentifyLanguage(config.default_language),
        ResolveDates(),
        FlagTruncation(),
        AssignIds(),
        BuildRecords(),
        AddSignatures(),
    ]


def run_steps(items: Iterable[Item], steps: list[PipelineStep]) -> Iterator[Item]:
    stream: Iterator[Item] = iter(items)
    for step in steps:
        stream = step.run(stream)
    return stream
