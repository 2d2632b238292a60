"""The `newsstance studio` commands as a user runs them (subprocesses)."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import psutil
import pytest

from newsstance.errors import UserError
from newsstance.records import read_jsonl, write_jsonl
from newsstance.studio.client import Connection
from newsstance.studio.server import ManagedServer, free_port

pytestmark = [pytest.mark.labelstudio, pytest.mark.xdist_group("labelstudio")]


def newsstance(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "newsstance.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **(env or {})},
        timeout=timeout,
        check=False,
    )


def test_up_status_down(tmp_path: Path) -> None:
    data_dir, port = tmp_path / "ls", free_port()
    assert newsstance("studio", "status", "--data-dir", str(data_dir)).returncode == 1

    up = newsstance("studio", "up", "--port", str(port), "--data-dir", str(data_dir))
    try:
        assert up.returncode == 0, up.stderr
        assert f"http://127.0.0.1:{port}" in up.stdout
        server = ManagedServer(data_dir)
        creds_path = server.credentials_path
        assert stat.S_IMODE(creds_path.stat().st_mode) == 0o600
        creds = orjson.loads(creds_path.read_bytes())
        assert len(creds["token"]) == 40
        assert creds["token"] not in up.stdout + up.stderr and creds["password"] not in up.stdout + up.stderr
        assert creds["token"] not in server.log_path.read_text(errors="replace")

        pid = server.process().pid
        listening = [c.laddr for c in psutil.Process(pid).net_connections(kind="inet") if c.status == "LISTEN"]
        assert listening and all(addr.ip == "127.0.0.1" for addr in listening)

        status = newsstance("studio", "status", "--data-dir", str(data_dir))
        assert status.returncode == 0 and "healthy" in status.stdout and str(pid) in status.stdout
        again = newsstance("studio", "up", "--data-dir", str(data_dir))
        assert again.returncode == 0 and "already running" in again.stdout
    finally:
        down = newsstance("studio", "down", "--data-dir", str(data_dir))
    assert down.returncode == 0 and "stopped" in down.stdout
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    assert newsstance("studio", "status", "--data-dir", str(data_dir)).returncode == 1


def test_down_never_kills_a_process_that_reused_the_pid(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        server = ManagedServer(tmp_path / "ls")
        server.meta_dir.mkdir(parents=True)
        record = {
            "pid": bystander.pid,
            "create_time": psutil.Process(bystander.pid).create_time() - 100,
            "port": 1,
            "url": "http://127.0.0.1:1",
            "data_dir": str(server.data_dir),
            "log": str(server.log_path),
            "version": "x",
            "started_at": time.time(),
        }
        server.process_path.write_bytes(orjson.dumps(record))
        result = newsstance("studio", "down", "--data-dir", str(server.data_dir))
        assert result.returncode == 0 and "not running" in result.stdout
        assert bystander.poll() is None
    finally:
        bystander.kill()
        bystander.wait()


def test_push_and_pull_commands_on_any_server_with_a_pat(
    ls_conn: Connection, ls_client: Any, ls_pat: str, fictional_articles: list, unique_title: Any, tmp_path: Path
) -> None:
    corpus = tmp_path / "corpus" / "articles-1.jsonl"
    write_jsonl(corpus, fictional_articles)
    pat = ls_pat
    env = {"LABEL_STUDIO_URL": ls_conn.url, "LABEL_STUDIO_API_KEY": pat, "NEWSSTANCE_STATE_DIR": str(tmp_path / "st")}
    title = unique_title("cli")
    glob = str(tmp_path / "corpus" / "articles-*.jsonl")

    pushed = newsstance("studio", "push", "--project", title, "--articles", glob, "--batch-size", "2", env=env)
    assert pushed.returncode == 0, pushed.stderr
    assert "3 task(s) pushed" in pushed.stdout
    project = next(p.model_dump() for p in ls_client.projects.list(title=title))
    assert project["task_number"] == 3

    out = tmp_path / "ann" / "annotations.jsonl"
    pulled = newsstance("studio", "pull", "--project", title, "--out", str(out), "--articles", glob, env=env)
    assert pulled.returncode == 0, pulled.stderr
    assert list(read_jsonl(out)) == []  # nothing annotated yet, but the raw export is kept
    assert len(list((tmp_path / "ann" / "exports").glob(f"{title}-*.json.gz"))) == 1

    leaked = [
        p
        for p in tmp_path.rglob("*")
        if p.is_file() and (pat.encode() in p.read_bytes() or ls_conn.api_key.encode() in p.read_bytes())
    ]
    assert leaked == []
    assert pat not in pushed.stdout + pushed.stderr + pulled.stdout + pulled.stderr

    bad = newsstance(
        "studio", "pull", "--project", title, "--out", str(out), "--api-key", "9" * 40, "--url", ls_conn.url, env=env
    )
    assert bad.returncode == 2 and "error:" in bad.stderr and "9" * 40 not in bad.stderr
    assert "Traceback" not in bad.stderr


def fake_label_studio(tmp_path: Path, body: str) -> Path:
    script = tmp_path / "fake-bin" / "label-studio"
    script.parent.mkdir()
    script.write_text(f"#!/bin/sh\necho 'fake label studio'\n{body}\n")
    script.chmod(0o755)
    return script


def test_start_failure_names_the_log(tmp_path: Path) -> None:
    server = ManagedServer(
        tmp_path / "ls", free_port(), bin_path=fake_label_studio(tmp_path, "exit 3"), use_template=False
    )
    with pytest.raises(UserError, match="exited with code 3") as caught:
        server.start()
    assert str(server.log_path) in str(caught.value)
    assert "fake label studio" in server.log_path.read_text()
    assert server.process() is None


def test_start_timeout_stops_what_it_started(tmp_path: Path) -> None:
    pid_file = tmp_path / "fake.pid"
    server = ManagedServer(
        tmp_path / "ls",
        free_port(),
        use_template=False,
        startup_timeout=2,
        bin_path=fake_label_studio(tmp_path, f"echo $$ > {pid_file}\nexec sleep 60"),
    )
    with pytest.raises(UserError, match="within 2 s") as caught:
        server.start()
    assert str(server.log_path) in str(caught.value)
    assert server.process() is None
    pid = int(pid_file.read_text())
    assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE


def test_anonymous_signup_is_refused(ls_conn: Connection) -> None:
    import httpx

    with httpx.Client(base_url=ls_conn.url, timeout=60) as browser:
        browser.get("/user/signup/")
        browser.post(
            "/user/signup/",
            data={
                "email": "stranger@newsstance.test",
                "password": "pw-1234567890",
                "csrfmiddlewaretoken": browser.cookies.get("csrftoken", ""),
            },
            headers={"Referer": f"{ls_conn.url}/user/signup/"},
        )
        assert browser.get("/api/current-user/whoami").status_code == 401
    users = httpx.get(f"{ls_conn.url}/api/users/", headers={"Authorization": f"Token {ls_conn.api_key}"}).json()
    assert "stranger@newsstance.test" not in {u["email"] for u in users}
