"""Team scale against real servers (issues 11 and 12): one writer per project, annotators,
progress, task order by model uncertainty, a private data dir - on SQLite and PostgreSQL."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import threading
import uuid
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from newsstance.errors import UserError
from newsstance.scheme import load_scheme
from newsstance.studio.client import Connection, invite_user
from newsstance.studio.project import ensure_project
from newsstance.studio.push import PushResult, push_articles
from newsstance.studio.server import SQLITE_NAME, ManagedServer, ensure_template, free_port, label_studio_bin
from newsstance.studio.team import (
    add_annotator,
    compute_progress,
    configure_project,
    list_annotators,
    project_progress,
)

pytestmark = [pytest.mark.labelstudio, pytest.mark.xdist_group("labelstudio")]

PEOPLE = ["Ana Ruiz", "Tomas Eberly", "Ilse Marrow", "Brann Hollis", "Oda Venn"]
PLACES = ["Portvale", "Norvand", "Caldmere", "Kelmar", "Tidewater"]


def generated_articles(make_article: Any, count: int, key: str) -> list[dict[str, Any]]:
    """Fictional, distinct articles."""
    out = []
    for index in range(count):
        person, place = PEOPLE[index % len(PEOPLE)], PLACES[(index * 3) % len(PLACES)]
        text = f"{person} visited {place} on day {index} of the {key} fair. The council of {place} welcomed the visit."
        out.append(make_article(f"Visit {index} to {place}", text, key=f"{key}-{index}"))
    return out


def export(conn: Connection, project_id: int) -> list[dict[str, Any]]:
    client = conn.client()
    raw = b"".join(client.projects.exports.download_sync(project_id, export_type="JSON", download_all_tasks=True))
    return orjson.loads(raw)


def article_counts(conn: Connection, project_id: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for task in export(conn, project_id):
        counts[task["data"]["article_id"]] = counts.get(task["data"]["article_id"], 0) + 1
    return counts


def run_concurrently(*calls: Any) -> list[Any]:
    """Start every call at the same moment in its own thread; re-raise the first error."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        try:
            results[index] = calls[index]()
        except BaseException as exc:
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=600)
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results


# --- one writer per project ----------------------------------------------------------------------


def test_two_machines_pushing_at_once_leave_each_article_once(
    make_article: Any, any_ls_conn: Connection, unique_title: Any, tmp_path: Path
) -> None:
    """Separate state and lock folders = two machines: only the server-side check can prevent duplicates."""
    articles = generated_articles(make_article, 16, uuid.uuid4().hex[:6])
    title = unique_title("race")
    # Create the (empty) project first: two machines creating it at once would make two projects.
    ensure_project(any_ls_conn.client(), any_ls_conn, title, load_scheme())

    def machine(name: str) -> PushResult:
        return push_articles(
            any_ls_conn,
            articles,
            project=title,
            batch_size=4,
            state_path=tmp_path / name / "state.json",
            progress=False,
        )

    first, second = run_concurrently(lambda: machine("a"), lambda: machine("b"))
    counts = article_counts(any_ls_conn, first.project_id)
    assert counts == {a["id"]: 1 for a in articles}
    assert first.pushed + second.pushed == len(articles)
    # Each result points at tasks that still exist.
    live = {t["id"] for t in export(any_ls_conn, first.project_id)}
    assert set(first.task_ids.values()) <= live and set(second.task_ids.values()) <= live
    # And a third push finds everything there.
    again = machine("a")
    assert (again.pushed, again.already_present) == (0, len(articles))


def test_a_crashed_writers_duplicate_is_removed_once_settled(
    make_article: Any, ls_conn: Connection, unique_title: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A duplicate nobody cleaned up (its writer died before checking) is left alone while it is
    recent - its writer may still be checking - and removed by the next push once settled."""
    from newsstance.studio import writer
    from newsstance.studio.push import task_data

    articles = generated_articles(make_article, 4, uuid.uuid4().hex[:6])
    title = unique_title("leftover")
    state = tmp_path / "state.json"
    first = push_articles(ls_conn, articles[:2], project=title, state_path=state, progress=False)
    ls_conn.client().projects.import_tasks(id=first.project_id, request=[{"data": task_data(articles[0])}])

    recent = push_articles(ls_conn, articles[:3], project=title, state_path=state, progress=False)
    assert recent.duplicates_removed == 0
    assert article_counts(ls_conn, first.project_id)[articles[0]["id"]] == 2

    monkeypatch.setattr(writer, "SETTLE_SECONDS", 0.0)
    settled = push_articles(ls_conn, articles, project=title, state_path=state, progress=False)
    assert settled.duplicates_removed == 1 and settled.pushed == 1
    counts = article_counts(ls_conn, first.project_id)
    assert counts == {a["id"]: 1 for a in articles}
    # The task kept is the original one.
    kept = {t["data"]["article_id"]: t["id"] for t in export(ls_conn, first.project_id)}
    assert kept[articles[0]["id"]] == first.task_ids[articles[0]["id"]]


def test_two_pushes_on_one_machine_wait_for_each_other(
    make_article: Any, ls_conn: Connection, unique_title: Any, tmp_path: Path
) -> None:
    articles = generated_articles(make_article, 12, uuid.uuid4().hex[:6])
    title = unique_title("locked")
    state = tmp_path / "state.json"
    results = run_concurrently(
        *(
            lambda: push_articles(ls_conn, articles, project=title, batch_size=4, state_path=state, progress=False)
            for _ in range(2)
        )
    )
    assert sorted(r.pushed for r in results) == [0, len(articles)]
    assert sorted(r.already_present for r in results) == [0, len(articles)]
    assert article_counts(ls_conn, results[0].project_id) == {a["id"]: 1 for a in articles}


def test_a_push_with_nothing_new_loads_no_model(
    make_article: Any, ls_conn: Connection, unique_title: Any, tmp_path: Path
) -> None:
    articles = generated_articles(make_article, 3, uuid.uuid4().hex[:6])
    title = unique_title("lazy")
    loads: list[int] = []

    class Fixed:
        model_version = "fixed@1"

        def predict(self, texts: list[str]) -> list[list[dict[str, Any]]]:
            return [[] for _ in texts]

    def factory() -> Fixed:
        loads.append(1)
        return Fixed()

    options = {"project": title, "state_path": tmp_path / "s.json", "progress": False}
    first = push_articles(ls_conn, articles, preannotator_factory=factory, **options)
    assert (first.pushed, len(loads)) == (3, 1)
    second = push_articles(ls_conn, articles, preannotator_factory=factory, **options)
    assert (second.pushed, second.already_present, len(loads)) == (0, 3, 1)


# --- annotators and progress ---------------------------------------------------------------------


def login_works(url: str, email: str, password: str) -> bool:
    with httpx.Client(base_url=url, timeout=60, follow_redirects=False) as browser:
        browser.get("/user/login/")
        browser.post(
            "/user/login/",
            data={"email": email, "password": password, "csrfmiddlewaretoken": browser.cookies.get("csrftoken", "")},
            headers={"Referer": f"{url}/user/login/"},
        )
        return browser.get("/api/current-user/whoami").status_code == 200


def test_annotators_add_list_and_progress(
    make_article: Any, any_ls_conn: Connection, unique_title: Any, tmp_path: Path
) -> None:
    conn = any_ls_conn
    emails = [f"{name}-{uuid.uuid4().hex[:6]}@newsstance.test" for name in ("cleo", "dario")]
    added = [add_annotator(conn, email) for email in emails]
    for person in added:
        assert person.password and login_works(conn.url, person.email, person.password)
    with pytest.raises(UserError, match="already has an account"):
        add_annotator(conn, emails[0])
    link = add_annotator(conn, f"eve-{uuid.uuid4().hex[:6]}@newsstance.test", link_only=True)
    assert link.password is None and link.invite_url and "/user/signup" in link.invite_url

    articles = generated_articles(make_article, 3, uuid.uuid4().hex[:6])
    title = unique_title("team")
    pushed = push_articles(conn, articles, project=title, state_path=tmp_path / "s.json", progress=False)
    configure_project(conn, title, overlap=2, order="random")
    people = [invite_user(conn, p.email, p.password or "").client() for p in added]  # their own tokens

    def spans(text: str, *parts: tuple[str, str]) -> list[dict[str, Any]]:
        out = []
        for index, (part, label) in enumerate(parts):
            start = text.index(part)
            value = {"start": start, "end": start + len(part), "text": part, "labels": [label]}
            out.append(
                {"id": f"r{index}", "from_name": "entities", "to_name": "text", "type": "labels", "value": value}
            )
        return out

    first, second, third = (pushed.task_ids[a["id"]] for a in articles)
    t1, t2 = articles[0]["text"], articles[1]["text"]
    person, place = t1.split(" visited ")[0], t1.split(" visited ")[1].split(" on day")[0]
    flags = {"was_cancelled": False, "ground_truth": False, "lead_time": 3.0}
    # Task 1: both annotators; they agree on the person and disagree on the place's label.
    people[0].annotations.create(id=first, result=spans(t1, (person, "PERSON"), (place, "GPE")), **flags)
    people[1].annotations.create(id=first, result=spans(t1, (person, "PERSON"), (place, "LOC")), **flags)
    # Task 2: one annotator only; task 3: skipped.
    people[0].annotations.create(id=second, result=spans(t2, (t2.split(" visited ")[0], "PERSON")), **flags)
    people[1].annotations.create(id=third, result=[], **{**flags, "was_cancelled": True})

    rows = {row.email: row for row in list_annotators(conn, title)}
    assert (rows[emails[0]].annotations, rows[emails[0]].skipped) == (2, 0)
    assert (rows[emails[1]].annotations, rows[emails[1]].skipped) == (1, 1)

    conflicts = tmp_path / "conflicts.jsonl"
    conflicts.write_text('{"article_id": "a"}\n{"article_id": "b"}\n')
    progress = project_progress(conn, title, conflicts)
    assert (progress.tasks, progress.done, progress.started, progress.annotations) == (3, 1, 2, 3)
    assert (progress.overlap, progress.order) == (2, "random")
    assert progress.span_pairs == 1
    assert progress.span_f1 == pytest.approx(2 * 1 / (2 + 2))  # one of two spans each matches
    assert progress.conflicts == 2
    assert sorted(progress.per_annotator.values()) == [1, 2]


def test_progress_counts_from_hand_built_export() -> None:
    """The same figures from a hand-made export (no server): the latest annotation per user counts."""
    project = {"title": "p", "maximum_annotations": 2, "sampling": "Uncertainty sampling"}

    def ann(ann_id: int, user: int, spans: list[tuple[int, int, str]], stance: str | None = None) -> dict[str, Any]:
        result: list[dict[str, Any]] = [
            {"type": "labels", "from_name": "entities", "value": {"start": s, "end": e, "labels": [lab]}}
            for s, e, lab in spans
        ]
        if stance:
            result.append({"type": "choices", "from_name": "stance_x", "value": {"choices": [stance]}})
        return {"id": ann_id, "completed_by": user, "result": result, "was_cancelled": False}

    tasks = [
        {"id": 1, "annotations": [ann(1, 7, [(0, 3, "A")], "favor"), ann(2, 8, [(0, 3, "A"), (5, 6, "B")], "favor")]},
        {"id": 2, "annotations": [ann(3, 7, [(1, 2, "A")], "against"), ann(4, 7, [(1, 2, "B")], "favor")]},
        {"id": 3, "annotations": []},
    ]
    progress = compute_progress(project, tasks, None)
    assert (progress.done, progress.started, progress.annotations, progress.order) == (1, 2, 3, "uncertainty")
    assert progress.span_f1 == pytest.approx(2 * 1 / 3)
    assert progress.stance_agreement == 1.0 and progress.stance_pairs == 1


# --- uncertainty order ---------------------------------------------------------------------------


def test_scored_predictions_order_tasks_by_uncertainty(
    make_article: Any, ls_conn: Connection, unique_title: Any, tmp_path: Path, spacy_preannotator: Any
) -> None:
    articles = generated_articles(make_article, 5, uuid.uuid4().hex[:6])
    title = unique_title("uncertain")
    with pytest.raises(UserError, match="no Label Studio project titled"):
        configure_project(ls_conn, title, overlap=None, order="uncertainty")
    pushed = push_articles(
        ls_conn,
        articles,
        project=title,
        preannotator=spacy_preannotator,
        state_path=tmp_path / "s.json",
        progress=False,
    )
    client = ls_conn.client()
    scores = {}
    for task in export(ls_conn, pushed.project_id):
        (prediction_id,) = task["predictions"]
        prediction = client.predictions.get(id=prediction_id).model_dump()
        assert 0.0 <= prediction["score"] <= 1.0
        for region in prediction["result"]:
            assert 0.0 <= region["score"] <= 1.0
            assert prediction["score"] <= region["score"]
        scores[task["id"]] = prediction["score"]
    project = client.projects.get(pushed.project_id).model_dump()
    assert project["model_version"] == pushed.model_version == spacy_preannotator.model_version
    configure_project(ls_conn, title, overlap=1, order="uncertainty")
    # Label Studio now serves the least confident task first.
    response = httpx.get(
        f"{ls_conn.url}/api/projects/{pushed.project_id}/next",
        headers={"Authorization": f"Token {ls_conn.api_key}"},
        timeout=60,
    )
    response.raise_for_status()
    assert scores[response.json()["id"]] == min(scores.values())


# --- secrets at rest -----------------------------------------------------------------------------


def _as_nobody(*cmd: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", *cmd], capture_output=True, check=False
    )


def test_data_dir_is_private_and_another_user_cannot_read_the_database(
    ls_server: ManagedServer, tmp_path: Path
) -> None:
    for folder, dirs, files in os.walk(ls_server.data_dir):
        for name in [*dirs, *files]:
            mode = os.lstat(Path(folder) / name).st_mode
            assert stat.S_ISLNK(mode) or not mode & 0o077, f"{Path(folder) / name} is {oct(mode)}"
    assert stat.S_IMODE(os.stat(ls_server.data_dir).st_mode) == 0o700

    if os.geteuid() != 0 or shutil.which("setpriv") is None:
        pytest.skip("needs root and setpriv to act as another user")
    # A data dir left world-readable (as before issue 11) in a folder others can reach:
    # `up` must close it before the token in the database is served again.
    outer = Path(tempfile.mkdtemp(prefix="newsstance-open-"))
    try:
        os.chmod(outer, 0o755)
        data_dir = outer / "label-studio"
        shutil.copytree(ensure_template(label_studio_bin()), data_dir)
        for folder, _dirs, files in os.walk(data_dir):
            os.chmod(folder, 0o755)
            for name in files:
                os.chmod(Path(folder) / name, 0o644)
        database = data_dir / SQLITE_NAME
        assert _as_nobody("cat", str(database)).returncode == 0  # the premise: readable before `up`
        server = ManagedServer(data_dir, free_port())
        server.start()
        try:
            assert _as_nobody("cat", str(database)).returncode != 0
            assert _as_nobody("ls", str(data_dir)).returncode != 0
            assert _as_nobody("cat", str(server.credentials_path)).returncode != 0
            assert not os.stat(database).st_mode & 0o077
        finally:
            server.stop()
    finally:
        shutil.rmtree(outer, ignore_errors=True)


# --- the commands as an operator runs them -------------------------------------------------------


def newsstance(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "newsstance.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=300,
        check=False,
    )


def test_team_commands_from_the_command_line(
    make_article: Any, ls_conn: Connection, unique_title: Any, tmp_path: Path
) -> None:
    auth = ["--url", ls_conn.url, "--api-key", ls_conn.api_key]
    title = unique_title("cli")
    push_articles(
        ls_conn,
        generated_articles(make_article, 2, uuid.uuid4().hex[:6]),
        project=title,
        state_path=tmp_path / "s.json",
    )
    email = f"fern-{uuid.uuid4().hex[:6]}@newsstance.test"
    added = newsstance("studio", "annotators", "add", email, *auth)
    assert added.returncode == 0, added.stderr
    password = added.stdout.split("one-time password: ")[1].split()[0]
    assert login_works(ls_conn.url, email, password)

    listed = newsstance("studio", "annotators", "list", "--project", title, *auth)
    assert listed.returncode == 0 and f"{email}: 0 annotation(s), 0 skipped" in listed.stdout

    configured = newsstance("studio", "configure", "--project", title, "--overlap", "3", "--order", "random", *auth)
    assert configured.returncode == 0 and "overlap 3, order random" in configured.stdout
    progress = newsstance("studio", "progress", "--project", title, "--conflicts", str(tmp_path / "none.jsonl"), *auth)
    assert progress.returncode == 0, progress.stderr
    assert "0/2 task(s) done" in progress.stdout and "overlap 3, order random" in progress.stdout

    for bad, message in [
        (["studio", "annotators", "add", "not-an-address", *auth], "is not an e-mail address"),
        (["studio", "configure", "--project", title, *auth], "nothing to change"),
        (["studio", "up", "--db", "mysql", "--data-dir", str(tmp_path / "x")], "--db must be one of"),
    ]:
        result = newsstance(*bad)
        assert result.returncode != 0 and message in result.stderr, (bad, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_status_says_how_to_log_in(ls_server: ManagedServer) -> None:
    status = newsstance("studio", "status", "--data-dir", str(ls_server.data_dir))
    assert status.returncode == 0
    creds = ls_server.credentials()
    assert creds is not None
    assert f"log in at {ls_server.url}/user/login/ as {creds.username}" in status.stdout
    assert creds.password not in status.stdout and creds.token not in status.stdout


def test_an_existing_data_dir_cannot_switch_database(ls_server: ManagedServer) -> None:
    with pytest.raises(UserError, match="cannot switch to postgresql"):
        ManagedServer(ls_server.data_dir, db="postgresql")._choose_database()
