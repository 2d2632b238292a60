"""Publication times: relative ("18 minutes ago") and absolute strings -> UTC ISO + precision.

dateparser understands almost anything but parses only ~1,100 strings/s, so the common
English relative forms and ISO-like stamps take a regex path with the same semantics
(crawl time minus a calendar delta, time of day kept, as dateparser's RELATIVE_BASE does),
everything else falls back to dateparser, and results are cached per (string, crawl time).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

from dateutil.relativedelta import relativedelta

from newsstance.normalize.model import iso_utc

_NUMBER_WORDS = {
    "a": 1,
    "an": 1,
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
}
_UNITS = {
    "second": "seconds",
    "sec": "seconds",
    "minute": "minutes",
    "min": "minutes",
    "hour": "hours",
    "hr": "hours",
    "day": "days",
    "week": "weeks",
    "month": "months",
    "year": "years",
    "yr": "years",
}
_UNIT_PRECISION = {
    "seconds": "minute",
    "minutes": "minute",
    "hours": "hour",
    "days": "day",
    "weeks": "week",
    "months": "month",
    "years": "year",
}
_RELATIVE = re.compile(
    r"(?:about |around |over |almost |nearly )?"
    r"(?P<num>\d{1,4}|an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve)\s*"
    r"(?P<unit>sec(?:ond)?|min(?:ute)?|h(?:ou)?r|hour|day|week|month|y(?:ea)?r)s?\.?\s+ago",
    re.I,
)
_WORDS = {
    "just now": ("minutes", 0),
    "moments ago": ("minutes", 0),
    "a moment ago": ("minutes", 0),
    "now": ("minutes", 0),
    "today": ("days", 0),
    "yesterday": ("days", 1),
    "last week": ("weeks", 1),
    "last month": ("months", 1),
    "last year": ("years", 1),
}
_ISO = re.compile(
    r"(?P<date>\d{4}-\d{2}-\d{2})(?:[T ](?P<time>\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)"
    r"\s*(?P<tz>Z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?)?"
)
_YEAR = re.compile(r"\d{4}")
_MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_DATEISH = re.compile(r"\d|\b(?:" + "|".join(_MONTHS) + r")[a-z]*\b|\bago\b|yesterday|today", re.I)
_RELATIVE_WORDS = re.compile(r"\b(?:ago|last|next|this|in \d+|in an?)\b", re.I)
_HOURS_ONLY = re.compile(r"\bhours?\b|\bhrs?\b", re.I)
_HAS_MINUTES = re.compile(r"minute|\bmins?\b|:\d", re.I)
_PERIOD_PRECISION = {"time": "minute", "day": "day", "week": "week", "month": "month", "year": "year"}


def relative_fast(raw: str, crawl: datetime) -> tuple[datetime, str] | None:
    """The common English relative forms without dateparser; None when not one of them."""
    text = " ".join(raw.split()).lower()
    if text in _WORDS:
        unit, amount = _WORDS[text]
    else:
        match = _RELATIVE.fullmatch(text)
        if not match:
            return None
        num = match.group("num")
        amount = int(num) if num.isdigit() else _NUMBER_WORDS[num]
        unit = _UNITS[match.group("unit")]
    return crawl - relativedelta(**{unit: amount}), _UNIT_PRECISION[unit]


def _absolute_fast(raw: str) -> tuple[datetime, str] | None:
    text = raw.strip()
    match = _ISO.fullmatch(text)
    if match:
        date, time, tz = match.group("date", "time", "tz")
        stamp = date + (f"T{time}" if time else "")
        if tz and tz not in ("Z", "UTC", "GMT"):
            stamp += tz if ":" in tz or len(tz) == 3 else f"{tz[:3]}:{tz[3:]}"
            if len(tz) == 3:
                stamp += ":00"
        try:
            moment = datetime.fromisoformat(stamp)
        except ValueError:
            return None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.astimezone(UTC), "minute" if time else "day"
    if _YEAR.fullmatch(text):
        return datetime(int(text), 1, 1, tzinfo=UTC), "year"
    return None


@lru_cache(maxsize=8)
def _dateparser(base_iso: str) -> Any:
    from dateparser.date import DateDataParser

    base = datetime.fromisoformat(base_iso).replace(tzinfo=None)
    settings = {
        "RELATIVE_BASE": base,
        "TIMEZONE": "UTC",
        "TO_TIMEZONE": "UTC",
        "RETURN_AS_TIMEZONE_AWARE": True,
        "RETURN_TIME_AS_PERIOD": True,
    }
    return DateDataParser(languages=["en"], settings=settings)


def parse_with_dateparser(raw: str, crawl: datetime) -> tuple[datetime, str] | None:
    """dateparser's reading of `raw` relative to `crawl` (the slow, general path)."""
    data = _dateparser(iso_utc(crawl)).get_date_data(raw)
    if data.date_obj is None:
        return None
    precision = _PERIOD_PRECISION.get(data.period or "day", "day")
    if precision == "minute" and _HOURS_ONLY.search(raw) and not _HAS_MINUTES.search(raw):
        precision = "hour"
    moment = data.date_obj.astimezone(UTC)
    if precision in ("month", "year") and not _RELATIVE_WORDS.search(raw):
        # "March 2025": dateparser borrows the base's day; an absolute month starts on the 1st.
        moment = moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        if precision == "year":
            moment = moment.replace(month=1)
    return moment, precision


@lru_cache(maxsize=65536)
def _resolve_cached(raw: str, crawl_iso: str) -> tuple[str | None, str | None]:
    crawl = datetime.fromisoformat(crawl_iso.replace("Z", "+00:00"))
    try:
        result = relative_fast(raw, crawl) or _absolute_fast(raw)
        if result is None and _DATEISH.search(raw) and len(raw) <= 80:
            result = parse_with_dateparser(raw, crawl)
    except (ValueError, OverflowError):  # "9999 years ago": out of datetime's range
        result = None
    if result is None:
        return None, None
    moment, precision = result
    return iso_utc(moment), precision


def resolve(raw: str | None, crawl: datetime) -> tuple[str | None, str | None]:
    """(`published_at` as UTC ISO with Z, precision) for a date string found on a page."""
    if not raw or not raw.strip():
        return None, None
    return _resolve_cached(" ".join(raw.split()), iso_utc(crawl))


@lru_cache(maxsize=16384)
def is_time_expression(line: str) -> bool:
    """Is this whole line a date or a relative time (a header line of a related block)?"""
    text = " ".join(line.split())
    if not text or len(text) > 40 or not _DATEISH.search(text):
        return False
    reference = datetime(2000, 1, 1, tzinfo=UTC)
    try:
        if relative_fast(text, reference) or _absolute_fast(text):
            return True
        if sum(ch.isalpha() for ch in text) > 24:
            return False
        return parse_with_dateparser(text, reference) is not None
    except (ValueError, OverflowError):
        return False


def parse_timestamp(value: str | None) -> datetime | None:
    """An absolute timestamp (crawl times, news-please dates) as aware UTC; None when unreadable."""
    if not value or not isinstance(value, str):
        return None
    try:
        fast = _absolute_fast(value)
        if fast:
            return fast[0]
        result = parse_with_dateparser(value, datetime(2000, 1, 1, tzinfo=UTC)) if _DATEISH.search(value) else None
    except (ValueError, OverflowError):
        return None
    return result[0] if result else None


EARLIEST_YEAR = 1990  # no online news page is older; earlier dates are placeholders (0001-01-01, epoch 0)
FUTURE_SLACK = timedelta(days=1)  # time zones and clock skew, not more


def implausible(published_at: str, crawl: datetime) -> str | None:
    """Why a resolved publication time cannot be true, or None when it can."""
    moment = datetime.fromisoformat(published_at.replace("Z", "+00:00"))
    if moment.year <= 1:
        return "placeholder date (year 1)"
    if moment.year == 1970 and moment.month == 1 and moment.day == 1:
        return "placeholder date (Unix epoch 0)"
    if moment.year < EARLIEST_YEAR:
        return f"before {EARLIEST_YEAR}"
    if moment > crawl + FUTURE_SLACK:
        return "later than the crawl time plus one day"
    return None


@dataclass(frozen=True, slots=True)
class DateChoice:
    """The first usable candidate; when none is usable, the first raw string and why it was rejected."""

    raw: str | None
    published_at: str | None
    precision: str | None
    rejected: str | None = None  # "'0001-01-01': placeholder date (year 1)"; also set when a later candidate won


def choose(candidates: list[str], crawl: datetime) -> DateChoice:
    """Resolve candidates in order (the page's most trustworthy source first) and keep the first
    that can be true; impossible and placeholder dates fall through to the next source."""
    rejected: list[str] = []
    first_raw = None
    for raw in candidates:
        if not raw or not raw.strip():
            continue
        first_raw = first_raw or raw
        published_at, precision = resolve(raw, crawl)
        if published_at is None:
            rejected.append(f"{raw!r}: not a date")
            continue
        reason = implausible(published_at, crawl)
        if reason:
            rejected.append(f"{raw!r}: {reason}")
            continue
        return DateChoice(raw, published_at, precision, "; ".join(rejected) or None)
    return DateChoice(first_raw, None, None, "; ".join(rejected) or None)
