"""A private PostgreSQL cluster for the managed Label Studio (`newsstance studio up --db postgresql`).

SQLite serialises writers, so a team submitting at once meets "database is locked"; PostgreSQL
does not. The cluster is created and started by newsstance itself from the Debian
`postgresql` package's binaries (`/usr/lib/postgresql/<version>/bin`, or
`$NEWSSTANCE_PG_BIN_DIR`): `initdb` into `<state dir>/postgresql/<key>/data` (mode 0700), one
password-protected role, TCP on 127.0.0.1 only and its Unix socket inside the cluster folder.

PostgreSQL refuses to run as root: when newsstance runs as root, the cluster runs as the
unprivileged `postgres` user (or `$NEWSSTANCE_PG_USER`), which then owns the cluster folder.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import os
import pwd
import secrets
import shutil
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from newsstance.errors import UserError
from newsstance.paths import state_dir
from newsstance.records import write_json

BIN_DIR_ENV = "NEWSSTANCE_PG_BIN_DIR"
USER_ENV = "NEWSSTANCE_PG_USER"
HOST = "127.0.0.1"
ROLE = "newsstance"
DATABASE = "label_studio"


def find_bin_dir() -> Path | None:
    """Folder holding initdb/pg_ctl/psql: `$NEWSSTANCE_PG_BIN_DIR`, else Debian's newest version."""
    override = os.environ.get(BIN_DIR_ENV)
    if override:
        return Path(override) if (Path(override) / "initdb").is_file() else None
    found = [Path(p).parent for p in glob.glob("/usr/lib/postgresql/*/bin/initdb")]
    found.sort(key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0)
    if found:
        return found[-1]
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def require_bin_dir() -> Path:
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise UserError(
            "PostgreSQL is not installed: `apt-get install -y postgresql` (Debian), "
            f"or point {BIN_DIR_ENV} at the folder holding initdb and pg_ctl"
        )
    return bin_dir


def default_cluster_root(data_dir: Path) -> Path:
    """One cluster per Label Studio data dir, under the state dir (outside the data dir, which is
    0700 and owned by us: the `postgres` user could not enter it when we run as root)."""
    key = hashlib.sha256(str(data_dir.resolve()).encode()).hexdigest()[:12]
    return state_dir() / "postgresql" / f"{data_dir.name}-{key}"


def _service_user() -> pwd.struct_passwd | None:
    """The unprivileged account the server runs as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    name = os.environ.get(USER_ENV) or "postgres"
    try:
        return pwd.getpwnam(name)
    except KeyError:
        raise UserError(
            f"PostgreSQL refuses to run as root and there is no user {name!r}; "
            f"create it or name another unprivileged user in {USER_ENV}"
        ) from None


def _free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


@dataclass
class ClusterConfig:
    """What `up` recorded about the cluster (kept 0600 in the Label Studio meta dir: holds the password)."""

    root: str
    port: int
    password: str
    role: str = ROLE
    database: str = DATABASE

    def __repr__(self) -> str:
        return f"ClusterConfig(root={self.root!r}, port={self.port}, password=***)"

    @classmethod
    def load(cls, path: Path) -> ClusterConfig | None:
        try:
            data = orjson.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except orjson.JSONDecodeError:
            raise UserError(f"{path}: database settings are not valid JSON") from None
        return cls(**{k: data[k] for k in ("root", "port", "password", "role", "database")})

    def save(self, path: Path) -> None:
        write_json(path, asdict(self))
        os.chmod(path, 0o600)

    def label_studio_env(self) -> dict[str, str]:
        """Settings Label Studio reads to use this database instead of SQLite."""
        return {
            "DJANGO_DB": "default",
            "POSTGRE_HOST": HOST,
            "POSTGRE_PORT": str(self.port),
            "POSTGRE_USER": self.role,
            "POSTGRE_PASSWORD": self.password,
            "POSTGRE_NAME": self.database,
        }


class PostgresCluster:
    """initdb / start / stop of one private cluster; every call is idempotent."""

    def __init__(self, config: ClusterConfig, bin_dir: Path | None = None):
        self.config = config
        self.root = Path(config.root)
        self.bin_dir = bin_dir or require_bin_dir()
        self.user = _service_user()

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def socket_dir(self) -> Path:
        return self.root / "run"

    @property
    def log_path(self) -> Path:
        return self.root / "postgresql.log"

    def _run(self, args: list[str], *, env: dict[str, str] | None = None, timeout: float = 120) -> str:
        """Run a PostgreSQL tool as the service user, private umask; UserError with its output on failure."""
        user_kwargs: dict[str, Any] = {}
        if self.user is not None:
            user_kwargs = {"user": self.user.pw_uid, "group": self.user.pw_gid, "extra_groups": []}
        full_env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C.UTF-8", **(env or {})}
        try:
            result = subprocess.run(
                [str(self.bin_dir / args[0]), *args[1:]],
                cwd=self.root,
                env=full_env,
                stdin=subprocess.DEVNULL,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                umask=0o077,
                start_new_session=True,
                **user_kwargs,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise UserError(f"PostgreSQL {args[0]} failed: {exc}") from None
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip().splitlines()
            raise UserError(f"PostgreSQL {args[0]} failed: {detail[-1] if detail else result.returncode}")
        return result.stdout

    def _prepare_root(self) -> None:
        """The cluster folder: 0700 and owned by the account the server runs as."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(self.root, 0o700)
        if self.user is not None:
            os.chown(self.root, self.user.pw_uid, self.user.pw_gid)
            if not _can_enter(self.root, self.user):
                raise UserError(
                    f"user {self.user.pw_name!r} cannot reach {self.root} (a parent folder is closed to it); "
                    "put the state dir (NEWSSTANCE_STATE_DIR) somewhere it can traverse"
                )

    def initialised(self) -> bool:
        return (self.data / "PG_VERSION").is_file()

    def initialise(self) -> None:
        if self.initialised():
            return
        self._prepare_root()
        password_file = self.root / ".pwfile"
        fd = os.open(password_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(self.config.password + "\n")
        if self.user is not None:
            os.chown(password_file, self.user.pw_uid, self.user.pw_gid)
        try:
            self._run(
                [
                    "initdb",
                    "-D",
                    str(self.data),
                    "-U",
                    self.config.role,
                    "--auth=scram-sha-256",
                    f"--pwfile={password_file}",
                    "-E",
                    "UTF8",
                    "--no-locale",
                ],
                timeout=300,
            )
        finally:
            password_file.unlink(missing_ok=True)

    def running(self) -> bool:
        if not self.initialised():
            return False
        try:
            self._run(["pg_ctl", "status", "-D", str(self.data)], timeout=30)
        except UserError:
            return False
        return True

    def start(self, timeout: float = 120) -> None:
        """Start the server on 127.0.0.1:<port> (picking a free port if the recorded one is taken)."""
        self.initialise()
        if not self.running():
            from newsstance.studio.server import port_in_use

            if port_in_use(self.config.port):
                self.config.port = _free_port()
            self.socket_dir.mkdir(exist_ok=True, mode=0o700)
            if self.user is not None:
                os.chown(self.socket_dir, self.user.pw_uid, self.user.pw_gid)
            options = (
                f"-c listen_addresses={HOST} -p {self.config.port} "
                f"-c unix_socket_directories={self.socket_dir} -c unix_socket_permissions=0700 "
                "-c max_connections=200"
            )
            self._run(
                [
                    "pg_ctl",
                    "start",
                    "-w",
                    "-t",
                    str(int(timeout)),
                    "-D",
                    str(self.data),
                    "-l",
                    str(self.log_path),
                    "-o",
                    options,
                ],
                timeout=timeout + 30,
            )
        self._ensure_database()

    def _psql(self, sql: str, database: str = "postgres") -> str:
        return self._run(
            ["psql", "-h", HOST, "-p", str(self.config.port), "-U", self.config.role, "-d", database, "-tAc", sql],
            env={"PGPASSWORD": self.config.password, "PGCONNECT_TIMEOUT": "10"},
            timeout=60,
        )

    def _ensure_database(self) -> None:
        name = self.config.database
        deadline = time.monotonic() + 30
        while True:  # the socket can lag pg_ctl's "ready" by a moment
            try:
                exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() == "1"
                break
            except UserError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)
        if not exists:
            self._psql(f'CREATE DATABASE "{name}" OWNER "{self.config.role}"')

    def stop(self) -> bool:
        if not self.running():
            return False
        self._run(["pg_ctl", "stop", "-D", str(self.data), "-m", "fast", "-w", "-t", "60"], timeout=90)
        return True


def _can_enter(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether `user` can traverse every parent of `path` (checked by running `test -x` as that user)."""
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        result = subprocess.run(
            ["/usr/bin/test", "-x", str(path)],
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            check=False,
            timeout=10,
        )
        return result.returncode == 0
    return False


def new_config(root: Path) -> ClusterConfig:
    return ClusterConfig(root=str(root), port=_free_port(), password=secrets.token_urlsafe(24))
