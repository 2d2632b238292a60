"""Card statistics of the `articles` config in one streaming pass (constant memory per outlet and month).

Outlets are normalised to one name per outlet: a `source` that is a name is the outlet; a `source` that
is a domain (or a missing one) is replaced by the name most often seen with that domain (as `source`
domain or URL host, without `www.`), else by the one name that spells the domain's first label. So `The Quellton Ledger` and `quelltonledger.example` count as one
outlet, while different names on one host (a syndication site) stay apart.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

_HOST = re.compile(r"^[a-z][a-z0-9+.-]*://(?:[^@/]*@)?(?:www\.)?([^/?#:]+)", re.IGNORECASE)
_DOMAIN_LIKE = re.compile(r"^(?:www\.)?[a-z0-9-]+(?:\.[a-z0-9-]+)+$", re.IGNORECASE)
UNKNOWN = "(unknown)"


def host_of(url: str | None) -> str | None:
    match = _HOST.match(url or "")
    return match[1].lower() if match else None


@dataclass
class _Outlet:
    n: int = 0
    gold: int = 0
    first: str | None = None
    last: str | None = None


def _is_domain(name: str) -> bool:
    return bool(_DOMAIN_LIKE.match(name))


def _squash(text: str) -> str:
    return re.sub(r"[^0-9a-z]", "", text.lower().removeprefix("the "))


def _name_like(domain: str | None, names: set[str]) -> str | None:
    """The one outlet name that spells the domain's first label (`harbourline.example` -> Harbourline News),
    for domains never seen with a name; None when no name or several names match."""
    if not domain:
        return None
    label = _squash(domain.removeprefix("www.").split(".")[0])
    if len(label) < 3:
        return None
    found = [
        n for n in names if _squash(n).startswith(label) or (len(_squash(n)) >= 3 and label.startswith(_squash(n)))
    ]
    return found[0] if len(found) == 1 else None


@dataclass
class ArticleStats:
    """Accumulates per-batch counts keyed by (source, host); `outlets()` merges names and domains at the end."""

    _by_key: dict[tuple[str | None, str | None], _Outlet] = field(default_factory=dict)
    months: Counter[str] = field(default_factory=Counter)
    languages: Counter[str] = field(default_factory=Counter)
    per_split: Counter[str] = field(default_factory=Counter)
    first_date: str | None = None
    last_date: str | None = None

    def add(self, split: str, batch: pa.RecordBatch | pa.Table) -> None:
        columns = {n: batch.column(n).to_pylist() for n in ("source", "url", "published_at", "language", "annotated")}
        self.per_split[split] += batch.num_rows
        for source, url, date, language, annotated in zip(*columns.values(), strict=True):
            entry = self._by_key.setdefault((source or None, host_of(url)), _Outlet())
            entry.n += 1
            entry.gold += bool(annotated)
            if language:
                self.languages[language.split("-")[0]] += 1
            if date:
                day = date[:10]
                self.months[day[:7]] += 1
                entry.first = min(entry.first or day, day)
                entry.last = max(entry.last or day, day)
                self.first_date = min(self.first_date or day, day)
                self.last_date = max(self.last_date or day, day)

    def outlets(self) -> list[dict[str, Any]]:
        """One row per outlet: name, domains, articles, gold-annotated, first and last publication day."""
        names_of_host: dict[str, Counter[str]] = {}
        for (source, host), entry in self._by_key.items():
            if source and not _is_domain(source) and host:
                names_of_host.setdefault(host, Counter())[source] += entry.n
        all_names = {source for source, _ in self._by_key if source and not _is_domain(source)}
        merged: dict[str, dict[str, Any]] = {}
        for (source, host), entry in self._by_key.items():
            domain = source.lower().removeprefix("www.") if source and _is_domain(source) else None
            if source and not domain:
                name = source
            else:
                lookup = names_of_host.get(domain or "") or names_of_host.get(host or "")
                if lookup:
                    name = lookup.most_common(1)[0][0]
                else:
                    name = _name_like(domain or host, all_names) or domain or host or UNKNOWN
            row = merged.setdefault(
                name, {"outlet": name, "domains": set(), "articles": 0, "gold": 0, "first": None, "last": None}
            )
            for known in (domain, host):
                if known and (known in names_of_host or name != source):
                    row["domains"].add(known)
            row["articles"] += entry.n
            row["gold"] += entry.gold
            for bound, pick in (("first", min), ("last", max)):
                value = getattr(entry, bound)
                if value:
                    row[bound] = pick(row[bound] or value, value)
        rows = sorted(merged.values(), key=lambda r: (-r["articles"], r["outlet"]))
        for row in rows:
            row["domains"] = sorted(row["domains"])
        return rows

    def as_dict(self) -> dict[str, Any]:
        return {
            "outlets": self.outlets(),
            "months": dict(sorted(self.months.items())),
            "languages": dict(self.languages.most_common()),
            "first_date": self.first_date,
            "last_date": self.last_date,
        }
