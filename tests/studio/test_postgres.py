"""The private PostgreSQL cluster behind `studio up --db postgresql`, without Label Studio."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from newsstance.errors import UserError
from newsstance.studio.postgres import DATABASE, HOST, PostgresCluster, find_bin_dir, new_config

pytestmark = [
    pytest.mark.skipif(find_bin_dir() is None, reason="PostgreSQL binaries not installed"),
    pytest.mark.xdist_group("labelstudio-pg"),
]


@pytest.fixture
def cluster() -> Iterator[PostgresCluster]:
    root = Path(tempfile.mkdtemp(prefix="newsstance-pg-test-"))
    cluster = PostgresCluster(new_config(root))
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(root, ignore_errors=True)


def psql(cluster: PostgresCluster, password: str, sql: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(cluster.bin_dir / "psql"), "-h", HOST, "-p", str(cluster.config.port), "-U", cluster.config.role]
    return subprocess.run(
        [*cmd, "-d", DATABASE, "-tAc", sql],
        capture_output=True,
        text=True,
        env={**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"},
        timeout=60,
        check=False,
    )


def test_cluster_is_private_loopback_only_and_stops(cluster: PostgresCluster) -> None:
    cluster.start()
    cluster.start()  # idempotent
    assert cluster.running()
    for path in (cluster.root, cluster.data):
        assert stat.S_IMODE(path.stat().st_mode) == 0o700
    postmaster = int((cluster.data / "postmaster.pid").read_text().split()[0])
    listening = [c.laddr for c in psutil.Process(postmaster).net_connections(kind="inet") if c.status == "LISTEN"]
    assert listening and {addr.ip for addr in listening} == {HOST}
    if os.geteuid() == 0:  # PostgreSQL refuses root: it runs as an unprivileged account
        assert psutil.Process(postmaster).uids().real != 0

    assert psql(cluster, cluster.config.password, "SELECT current_database()").stdout.strip() == DATABASE
    refused = psql(cluster, "wrong-password", "SELECT 1")
    assert refused.returncode != 0 and "password authentication failed" in refused.stderr

    assert cluster.stop() and not cluster.running()
    assert not cluster.stop()


def test_missing_binaries_are_one_clear_error(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("NEWSSTANCE_PG_BIN_DIR", str(tmp_path))
    with pytest.raises(UserError, match="PostgreSQL is not installed"):
        PostgresCluster(new_config(tmp_path / "cluster"))
