"""Fixtures of the studio tests: ONE real Label Studio server for the whole session.

The server is a `ManagedServer` on 127.0.0.1, a free port and a temp data dir, seeded from the
cached pre-migrated template (`.newsstance/ls-templates/`, built on first use: ~30 s once,
then ~7 s per start). Every test using it must be marked

    @pytest.mark.labelstudio
    @pytest.mark.xdist_group("labelstudio")

so they all run in one worker against this one server.

Fixtures: `ls_server` (the ManagedServer), `ls_conn` (admin Connection, legacy token),
`ls_client` (admin `LabelStudio` SDK client), `ls_pat` (the admin's personal access token),
`ls_annotators` (two invited annotator accounts),
`make_article` (builds a valid fictional article record), `fictional_articles` (a small
corpus incl. emoji/non-BMP text and one duplicate), `spacy_preannotator`, `unique_title`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest

from newsstance.ids import text_sha256
from newsstance.studio.client import Connection, create_personal_access_token, invite_user
from newsstance.studio.server import ManagedServer, free_port

if TYPE_CHECKING:
    from label_studio_sdk import LabelStudio

    from newsstance.studio.preannotate import SpacyPreannotator

# Fictional outlets, people and places only.
FICTIONAL_TEXTS = [
    (
        "Portvale council backs the Tidewater Dam",
        "Mayor Ana Ruiz of Portvale said on Monday that the Tidewater Dam would protect the Kelmar valley. "
        "The Greens party and Velt Energy disagreed at the Harbour Forum.",
    ),
    (
        "Levy row in Norvand 🙂",
        "Minister Tomas Eberly 🙂 defended the carbon levy in Norvand. "
        "Critics at Velt Energy called it a tax on workers, said Ilse Marrow 👨🏻‍🚒 of the Farmers Union.",
    ),
    (
        "Quiet week in Caldmere",
        "The Caldmere Gazette reported that the river festival drew visitors from Portvale and Norvand.",
    ),
]


def make_article_record(
    title: str,
    text: str,
    *,
    source: str = "The Fictional Gazette",
    duplicate_of: str | None = None,
    key: str | None = None,
) -> dict[str, Any]:
    """A valid article record (schema/article.schema.json) for fictional text."""
    article_id = text_sha256(f"{key or title}|{source}")[:16]
    return {
        "id": article_id,
        "title": title,
        "text": text,
        "text_sha256": text_sha256(text),
        "source": source,
        "url": f"https://gazette.example/{article_id}",
        "authors": ["Staff Writer"],
        "published_at": "2031-03-04T09:00:00Z",
        "published_at_raw": "4 March 2031 09:00",
        "published_at_precision": "minute",
        "crawled_at": "2031-03-05T10:00:00Z",
        "language": "en",
        "role": "standalone",
        "related_to": None,
        "duplicate_of": duplicate_of,
        "truncated": False,
        "provenance": {
            "path": "raw/fictional.html",
            "sha256": "0" * 64,
            "format": "html",
            "line_start": 1,
            "line_end": 2,
            "record_index": 0,
            "parser_version": "test",
            "encoding": "utf-8",
            "repairs": [],
            "crawl_time_source": "cli",
            "near_duplicate_jaccard": None,
        },
        "schema_version": "1.0.0",
    }


@pytest.fixture(scope="session")
def make_article() -> Callable[..., dict[str, Any]]:
    return make_article_record


@pytest.fixture(scope="session")
def fictional_articles() -> list[dict[str, Any]]:
    """Three canonical fictional articles (one with emoji and a ZWJ sequence) plus one duplicate."""
    articles = [make_article_record(title, text) for title, text in FICTIONAL_TEXTS]
    duplicate = make_article_record(
        FICTIONAL_TEXTS[0][0], FICTIONAL_TEXTS[0][1], source="Copy Desk", duplicate_of=articles[0]["id"]
    )
    return [*articles, duplicate]


@pytest.fixture(scope="session")
def unique_title() -> Callable[[str], str]:
    """Project titles unique within the session's server."""
    return lambda prefix: f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="session")
def ls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    """One real Label Studio on 127.0.0.1 for the session (stopped at the end)."""
    server = ManagedServer(tmp_path_factory.mktemp("label-studio"), free_port())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def ls_conn(ls_server: ManagedServer) -> Connection:
    """Admin connection (legacy token) to the session's server."""
    return Connection(url=ls_server.url, api_key=ls_server.api_key, kind="legacy", managed=True)


@pytest.fixture(scope="session")
def ls_pat(ls_conn: Connection) -> str:
    """The admin's personal access token (Label Studio allows one valid PAT per user)."""
    return create_personal_access_token(ls_conn)


@pytest.fixture(scope="session")
def ls_client(ls_conn: Connection) -> LabelStudio:
    return ls_conn.client()


@dataclass(frozen=True)
class Annotator:
    email: str
    password: str
    conn: Connection

    def client(self) -> LabelStudio:
        return self.conn.client()


@pytest.fixture(scope="session")
def ls_annotators(ls_conn: Connection) -> list[Annotator]:
    """Two annotators who joined through the organisation's invite link (email, password, own token)."""
    people = []
    for name in ("ana.annotator", "ben.annotator"):
        email, password = f"{name}@newsstance.test", f"pw-{uuid.uuid4().hex[:12]}"
        people.append(Annotator(email, password, invite_user(ls_conn, email, password)))
    return people


@pytest.fixture(scope="session")
def spacy_preannotator() -> SpacyPreannotator:
    from newsstance.scheme import load_scheme
    from newsstance.studio.preannotate import SpacyPreannotator

    return SpacyPreannotator(load_scheme())


# --- the same server on PostgreSQL (issue 12): a subset of the tests runs on both ---------------


@pytest.fixture(scope="session")
def ls_pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ManagedServer]:
    """One real Label Studio on a private PostgreSQL cluster (skips when PostgreSQL is not installed).

    The cluster folder is a fresh temp dir the cluster's own user owns (when the suite runs as
    root, PostgreSQL runs as `postgres` and cannot enter pytest's 0700 temp folders)."""
    import shutil
    import tempfile
    from pathlib import Path

    from newsstance.studio.postgres import find_bin_dir

    if find_bin_dir() is None:
        pytest.skip("PostgreSQL binaries not installed (apt-get install postgresql)")
    pg_root = Path(tempfile.mkdtemp(prefix="newsstance-pg-"))
    server = ManagedServer(tmp_path_factory.mktemp("label-studio-pg"), free_port(), db="postgresql", pg_root=pg_root)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(pg_root, ignore_errors=True)


@pytest.fixture(scope="session")
def ls_pg_conn(ls_pg_server: ManagedServer) -> Connection:
    return Connection(url=ls_pg_server.url, api_key=ls_pg_server.api_key, kind="legacy", managed=True)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.xdist_group("labelstudio-pg"))])
def any_ls_conn(request: pytest.FixtureRequest) -> Connection:
    """The session's SQLite server, then its PostgreSQL twin: tests using this run on both.

    The PostgreSQL variants form their own xdist group (`labelstudio_labelstudio-pg`), so under
    `-n 2 --dist loadgroup` the PostgreSQL server migrates and serves on the other worker while
    the SQLite group runs."""
    name = "ls_conn" if request.param == "sqlite" else "ls_pg_conn"
    return request.getfixturevalue(name)


@pytest.fixture(autouse=True)
def no_default_corpus(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Studio tests bring their own articles: the checkout's `corpus/normalized` (left by a
    `make run`) must not count as "the corpus" that pull and adjudicate check gold against."""
    import newsstance.paths

    empty = tmp_path_factory.mktemp("no-corpus")
    monkeypatch.setattr(newsstance.paths, "ARTICLES_GLOB", str(empty / "articles*.jsonl"))
