"""A Label Studio server newsstance starts, watches and stops (`newsstance studio up|down|status`).

Label Studio runs from its own virtualenv (it pins an old pytz the toolkit cannot share), as
a separate process bound to 127.0.0.1 only, with a SQLite data dir (default) or a private
PostgreSQL cluster (`--db postgresql`, see `postgres.py`). Everything newsstance keeps about
one server lives in `<data dir>/newsstance/`: the generated admin credentials, the log, and
the pid + process start time so `down` stops exactly the process `up` started, never a
stranger that reused the pid.

The database holds the admin API token in plain text, so the whole data dir is private: the
folders are 0700 and the files 0600 (Label Studio itself runs with umask 077), and `up`
tightens an existing data dir that is more open (and refuses one owned by another user).

A cold start runs Django migrations (about a minute). A migrated, user-less data dir is
therefore cached once per Label Studio version under `<state dir>/ls-templates/`, and new
data dirs start as a copy of it (seconds).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import httpx
import orjson
import psutil

from newsstance.errors import UserError
from newsstance.paths import state_dir
from newsstance.records import write_json

if TYPE_CHECKING:
    from newsstance.studio.postgres import PostgresCluster

LABEL_STUDIO_VERSION = "1.23.2"
DEFAULT_PORT = 8080
HOST = "127.0.0.1"
BIN_ENV = "NEWSSTANCE_LABEL_STUDIO_BIN"
META_DIR = "newsstance"
SQLITE_NAME = "label_studio.sqlite3"
DEFAULT_STARTUP_TIMEOUT = 240.0
PRIVATE_UMASK = 0o077
Database = Literal["sqlite", "postgresql"]
DATABASES: tuple[Database, ...] = ("sqlite", "postgresql")

# Environment every managed server gets: no outbound calls, no anonymous signup.
QUIET_ENV = {
    "LATEST_VERSION_CHECK": "false",
    "SENTRY_DSN": "",
    "FRONTEND_SENTRY_DSN": "",
    "LABEL_STUDIO_DISABLE_SIGNUP_WITHOUT_LINK": "true",
    "DJANGO_DB": "sqlite",
    "PYTHONUNBUFFERED": "1",
}


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- paths ---------------------------------------------------------------------------------------


def default_data_dir() -> Path:
    return state_dir() / "label-studio"


def default_venv_dir() -> Path:
    return state_dir() / "ls-venv"


def default_template_root() -> Path:
    return state_dir() / "ls-templates"


def label_studio_bin() -> Path:
    """The `label-studio` executable: `$NEWSSTANCE_LABEL_STUDIO_BIN`, else the state dir's venv."""
    override = os.environ.get(BIN_ENV)
    if override:
        path = Path(override).expanduser()
        if not path.is_file():
            raise UserError(f"{BIN_ENV}={override} is not a file")
        return path
    return default_venv_dir() / "bin" / "label-studio"


COMPLETE_STAMP = ".newsstance-complete"


def ensure_label_studio(bin_path: Path | None = None) -> Path:
    """Return the `label-studio` executable, creating its venv (pip install, progress shown) if missing.

    Safe when several processes (e.g. test workers) ask at once: one installs under a file lock, the
    others wait; a venv left half-built by an interrupted install is rebuilt (no completion stamp).
    """
    path = bin_path or label_studio_bin()
    if bin_path is not None or os.environ.get(BIN_ENV):
        if not path.is_file():
            raise UserError(f"label-studio not found at {path}")
        return path
    venv = default_venv_dir()
    stamp = venv / COMPLETE_STAMP
    if stamp.is_file() and path.is_file():
        return path
    with _locked(venv.with_name(venv.name + ".lock")):
        if stamp.is_file() and path.is_file():
            return path
        if path.is_file():  # an install from before stamps existed, or finished but unstamped: keep it if sound
            check = subprocess.run(
                [str(venv / "bin" / "python"), "-c", "import label_studio"], capture_output=True, check=False
            )
            if check.returncode == 0:
                stamp.write_text(LABEL_STUDIO_VERSION + "\n")
                return path
        shutil.rmtree(venv, ignore_errors=True)
        _log(f"creating the Label Studio virtualenv in {venv} (label-studio=={LABEL_STUDIO_VERSION}, a few minutes)")
        log = venv.with_name(venv.name + "-install.log")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, stdout=sys.stderr)
            with log.open("wb") as handle:  # pip's hundreds of lines go to a log, shown only on failure
                subprocess.run(
                    [
                        str(venv / "bin" / "python"),
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--progress-bar",
                        "off",
                        f"label-studio=={LABEL_STUDIO_VERSION}",
                    ],
                    check=True,
                    stdout=handle,
                    stderr=subprocess.STDOUT,
                )
        except (OSError, subprocess.CalledProcessError) as exc:
            tail = log.read_text(encoding="utf-8", errors="replace").splitlines()[-15:] if log.is_file() else []
            for line in tail:
                _log(line)
            raise UserError(f"could not install label-studio into {venv}: {exc} (full log: {log})") from None
        if not path.is_file():
            raise UserError(f"pip finished but {path} is missing")
        stamp.write_text(LABEL_STUDIO_VERSION + "\n")
    return path


def label_studio_version(bin_path: Path) -> str:
    """Installed Label Studio version, read with the interpreter of its venv (keys the template cache)."""
    python = bin_path.parent / "python"
    if not python.exists():
        first = bin_path.read_bytes()[:300].split(b"\n", 1)[0]
        python = Path(first[2:].decode().strip()) if first.startswith(b"#!") else python
    try:
        out = subprocess.run(
            [str(python), "-c", "import importlib.metadata as m; print(m.version('label-studio'))"],
            check=True,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        raise UserError(f"cannot read the Label Studio version with {python}: {exc}") from None
    return out.stdout.strip()


def _version_or_unknown(bin_path: Path) -> str:
    try:
        return label_studio_version(bin_path)
    except UserError:
        return "unknown"


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for tests and side-by-side servers)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((HOST, port)) == 0


# --- private files -------------------------------------------------------------------------------


def make_private(root: Path) -> int:
    """Strip group/other permissions from `root` and everything under it; returns how many paths
    were too open. Symlinks are left alone (chmod would follow them); a tree owned by another
    user is refused, since we could neither fix nor trust it."""
    fixed = 0
    uid = os.geteuid()
    for folder, _dirs, files in os.walk(root, followlinks=False):
        for path in [Path(folder), *(Path(folder) / name for name in files)]:
            try:
                info = os.lstat(path)
            except FileNotFoundError:
                continue
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_uid != uid and uid != 0:
                raise UserError(f"{path} belongs to another user (uid {info.st_uid}); refusing to use {root}")
            if info.st_mode & 0o077:
                os.chmod(path, stat.S_IMODE(info.st_mode) & 0o700)
                fixed += 1
    return fixed


def private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) with mode 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(path, 0o700)
    return path


# --- credentials ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Credentials:
    """Admin login and API token generated for one data dir; never printed."""

    username: str
    password: str
    token: str
    secret_key: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=***, token=***, secret_key=***)"

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            username="admin@newsstance.local",
            password=secrets.token_urlsafe(18),
            token=secrets.token_hex(20),  # 40 chars, the shape of a Label Studio legacy token
            secret_key=secrets.token_urlsafe(50),
        )


def read_credentials(path: Path) -> Credentials | None:
    try:
        data = orjson.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except orjson.JSONDecodeError:
        raise UserError(f"{path}: credentials file is not valid JSON") from None
    return Credentials(**{k: data[k] for k in ("username", "password", "token", "secret_key")})


def write_credentials(path: Path, creds: Credentials) -> None:
    """Write the credentials with mode 0600 (atomic_write's temp file is already 0600)."""
    write_json(path, asdict(creds))
    os.chmod(path, 0o600)


# --- process identity ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ProcessRecord:
    """What `up` recorded about the process it started."""

    pid: int
    create_time: float
    port: int
    url: str
    data_dir: str
    log: str
    version: str
    started_at: float

    def matches_live_process(self) -> bool:
        """True when the pid is alive and is still the very process we started (same start time)."""
        try:
            proc = psutil.Process(self.pid)
            if abs(proc.create_time() - self.create_time) > 0.01:
                return False
            if not any("label-studio" in part for part in proc.cmdline()):
                return False
            return proc.status() != psutil.STATUS_ZOMBIE
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            return False


@dataclass(frozen=True)
class ServerStatus:
    running: bool
    healthy: bool
    url: str | None
    pid: int | None
    data_dir: Path
    log: Path
    database: str = "sqlite"

    def describe(self) -> str:
        if not self.running:
            return f"not running (data dir {self.data_dir})"
        state = "healthy" if self.healthy else "NOT healthy"
        return (
            f"running at {self.url} (pid {self.pid}, {state}, {self.database}; "
            f"data dir {self.data_dir}, log {self.log})"
        )


def health(url: str, timeout: float = 2.0) -> bool:
    try:
        response = httpx.get(f"{url}/health", timeout=timeout)
    except httpx.HTTPError:
        return False
    if response.status_code != 200:
        return False
    try:
        return response.json().get("status") == "UP"
    except ValueError:
        return False


def _listening_ports(pid: int) -> set[int]:
    try:
        proc = psutil.Process(pid)
        procs = [proc, *proc.children(recursive=True)]
        return {c.laddr.port for p in procs for c in p.net_connections(kind="tcp") if c.status == psutil.CONN_LISTEN}
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return set()


def _stop_process_group(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM the process group led by `pid`, then SIGKILL if it lingers."""
    try:
        pgid = os.getpgid(pid)
    except ProcessLookupError:
        return
    # Only signal the group when our process leads it (started with start_new_session).
    killer = (lambda sig: os.killpg(pgid, sig)) if pgid == pid else (lambda sig: os.kill(pid, sig))
    with contextlib.suppress(ProcessLookupError):
        killer(signal.SIGTERM)
    try:
        psutil.Process(pid).wait(timeout=timeout)
    except psutil.NoSuchProcess:
        return
    except psutil.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            killer(signal.SIGKILL)
        with contextlib.suppress(psutil.NoSuchProcess, psutil.TimeoutExpired):
            psutil.Process(pid).wait(timeout=10)


# --- template of a migrated data dir -------------------------------------------------------------


@contextlib.contextmanager
def _locked(lock_path: Path) -> Iterator[None]:
    lock_path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _base_env(data_dir: Path, secret_key: str) -> dict[str, str]:
    """Inherited env minus any Label Studio/Django settings of the caller, plus ours."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LABEL_STUDIO_", "HEARTEX_", "DJANGO_", "POSTGRE_", "SENTRY_", "FRONTEND_SENTRY_"))
    }
    env.update(QUIET_ENV)
    env["LABEL_STUDIO_BASE_DATA_DIR"] = str(data_dir)
    env["SECRET_KEY"] = secret_key
    return env


def ensure_template(bin_path: Path, template_root: Path | None = None, *, timeout: float = 600.0) -> Path:
    """A migrated data dir without users for this Label Studio version, built once (`label-studio version`
    runs the migrations and exits)."""
    version = label_studio_version(bin_path)
    root = template_root or default_template_root()
    template = root / f"label-studio-{version}"
    if (template / SQLITE_NAME).is_file():
        make_private(root)  # templates cached before data dirs were private
        return template
    private_dir(root)
    with _locked(root / ".lock"):
        if (template / SQLITE_NAME).is_file():
            return template
        _log(f"migrating a fresh Label Studio {version} database once (about a minute); cached in {template}")
        build = Path(tempfile.mkdtemp(prefix=".build-", dir=root))
        log_path = root / f"label-studio-{version}.build.log"
        try:
            with log_path.open("wb") as log:
                result = subprocess.run(
                    [str(bin_path), "version"],
                    cwd=build,
                    env=_base_env(build, secrets.token_urlsafe(50)),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    timeout=timeout,
                    check=False,
                    umask=PRIVATE_UMASK,
                )
            if result.returncode != 0 or not (build / SQLITE_NAME).is_file():
                raise UserError(f"migrating the Label Studio template failed; see {log_path}")
            for leftover in (".env",):
                (build / leftover).unlink(missing_ok=True)
            make_private(build)
            os.replace(build, template)
        except subprocess.TimeoutExpired:
            raise UserError(f"migrating the Label Studio template took over {timeout:.0f} s; see {log_path}") from None
        finally:
            if build.exists():
                shutil.rmtree(build, ignore_errors=True)
    return template


def _is_initialised(data_dir: Path) -> bool:
    return (data_dir / SQLITE_NAME).is_file()


def _seed_from_template(data_dir: Path, template: Path) -> None:
    """Copy the template's files into an empty (or meta-only) data dir."""
    private_dir(data_dir)
    for item in template.iterdir():
        target = data_dir / item.name
        if item.is_dir():
            shutil.copytree(item, target, dirs_exist_ok=True)
        else:
            shutil.copy2(item, target)


# --- the server ----------------------------------------------------------------------------------


class ManagedServer:
    """One Label Studio process on 127.0.0.1 with its own data dir.

    `ManagedServer(data_dir, port).start()` returns once `/health` is UP; `.url` and `.api_key`
    then connect a client; `.stop()` ends it. Starting a running server just reattaches.
    """

    def __init__(
        self,
        data_dir: Path | None = None,
        port: int | None = None,
        *,
        bin_path: Path | None = None,
        template_root: Path | None = None,
        use_template: bool = True,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        db: Database | None = None,
        pg_root: Path | None = None,
    ):
        self.data_dir = Path(data_dir or default_data_dir()).resolve()
        self.requested_port = port
        if db is not None and db not in DATABASES:
            raise UserError(f"--db must be one of {', '.join(DATABASES)}, not {db!r}")
        self.requested_db = db
        self.pg_root = pg_root
        self.bin_path = bin_path
        self.template_root = template_root
        self.use_template = use_template
        self.startup_timeout = startup_timeout

    # paths of what newsstance keeps about this server
    @property
    def meta_dir(self) -> Path:
        return self.data_dir / META_DIR

    @property
    def credentials_path(self) -> Path:
        return self.meta_dir / "credentials.json"

    @property
    def process_path(self) -> Path:
        return self.meta_dir / "server.json"

    @property
    def log_path(self) -> Path:
        return self.meta_dir / "server.log"

    @property
    def database_path(self) -> Path:
        """Present when this data dir runs on PostgreSQL: the cluster's folder, port and password (0600)."""
        return self.meta_dir / "postgresql.json"

    @property
    def database(self) -> Database:
        """The engine this data dir was set up with (SQLite unless `up --db postgresql` made it)."""
        return "postgresql" if self.database_path.is_file() else "sqlite"

    def cluster(self) -> PostgresCluster | None:
        """The PostgreSQL cluster of this data dir, or None on SQLite."""
        from newsstance.studio.postgres import ClusterConfig, PostgresCluster

        config = ClusterConfig.load(self.database_path)
        return PostgresCluster(config) if config else None

    def _choose_database(self) -> Database:
        """Requested engine, checked against what the data dir already holds (no silent switch)."""
        existing: Database | None = (
            "postgresql" if self.database_path.is_file() else "sqlite" if _is_initialised(self.data_dir) else None
        )
        wanted = self.requested_db or existing or "sqlite"
        if existing is not None and wanted != existing:
            raise UserError(
                f"{self.data_dir} holds a Label Studio on {existing}; it cannot switch to {wanted} "
                "(use another --data-dir)"
            )
        return wanted

    def _start_database(self) -> dict[str, str]:
        """Start the PostgreSQL cluster when this data dir uses one; Label Studio's DB settings."""
        from newsstance.studio.postgres import PostgresCluster, default_cluster_root, new_config

        if self._choose_database() == "sqlite":
            return {}
        cluster = self.cluster()
        if cluster is None:
            cluster = PostgresCluster(new_config(self.pg_root or default_cluster_root(self.data_dir)))
            cluster.config.save(self.database_path)
        port = cluster.config.port
        cluster.start()
        if cluster.config.port != port:
            cluster.config.save(self.database_path)
        return cluster.config.label_studio_env()

    def credentials(self) -> Credentials | None:
        return read_credentials(self.credentials_path)

    def process(self) -> ProcessRecord | None:
        try:
            return ProcessRecord(**orjson.loads(self.process_path.read_bytes()))
        except (FileNotFoundError, orjson.JSONDecodeError, TypeError):
            return None

    @property
    def port(self) -> int:
        record = self.process()
        if record and record.matches_live_process():
            return record.port
        return self.requested_port or DEFAULT_PORT

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def api_key(self) -> str:
        creds = self.credentials()
        if creds is None:
            raise UserError(
                f"no credentials in {self.credentials_path}: start the server first (`newsstance studio up`)"
            )
        return creds.token

    def status(self) -> ServerStatus:
        record = self.process()
        if record is None or not record.matches_live_process():
            return ServerStatus(False, False, None, None, self.data_dir, self.log_path, self.database)
        return ServerStatus(
            True, health(record.url), record.url, record.pid, self.data_dir, self.log_path, self.database
        )

    def start(self) -> ManagedServer:
        """Start (or reattach to) the server and wait until it is healthy."""
        record = self.process()
        if record and record.matches_live_process():
            if self.requested_port and self.requested_port != record.port:
                raise UserError(
                    f"Label Studio for {self.data_dir} already runs on port {record.port} "
                    f"(pid {record.pid}); stop it first (`newsstance studio down`)"
                )
            if health(record.url):
                return self
            self._wait_healthy(record.pid, record.url)
            return self
        self.process_path.unlink(missing_ok=True)

        port = self.requested_port or DEFAULT_PORT
        if port_in_use(port):
            raise UserError(f"port {port} on {HOST} is already in use; pick another with --port")
        bin_path = ensure_label_studio(self.bin_path)
        fresh = not self.data_dir.exists()
        private_dir(self.data_dir)
        if not fresh and (loose := make_private(self.data_dir)):
            _log(f"tightened permissions of {loose} path(s) in {self.data_dir} (the database holds the API token)")
        private_dir(self.meta_dir)
        database = self._choose_database()
        if database == "sqlite" and not _is_initialised(self.data_dir) and self.use_template:
            _seed_from_template(self.data_dir, ensure_template(bin_path, self.template_root))
            make_private(self.data_dir)
        creds = self.credentials()
        if creds is None:
            creds = Credentials.generate()
            write_credentials(self.credentials_path, creds)

        env = _base_env(self.data_dir, creds.secret_key)
        env.update(self._start_database())
        env.update(
            {
                "LABEL_STUDIO_USERNAME": creds.username,
                "LABEL_STUDIO_PASSWORD": creds.password,
                "LABEL_STUDIO_USER_TOKEN": creds.token,
            }
        )
        cmd = [
            str(bin_path),
            "start",
            "--no-browser",
            "--internal-host",
            HOST,
            "--port",
            str(port),
            "--enable-legacy-api-token",
        ]
        url = f"http://{HOST}:{port}"
        with os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab") as log:
            log.write(f"\n--- newsstance: starting Label Studio on {url} at {time.ctime()} ---\n".encode())
            log.flush()
            proc = subprocess.Popen(
                cmd,
                cwd=self.data_dir,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                umask=PRIVATE_UMASK,
            )
        try:
            create_time = psutil.Process(proc.pid).create_time()
        except psutil.NoSuchProcess:
            raise UserError(f"Label Studio exited at once; see {self.log_path}") from None
        record = ProcessRecord(
            pid=proc.pid,
            create_time=create_time,
            port=port,
            url=url,
            data_dir=str(self.data_dir),
            log=str(self.log_path),
            version=_version_or_unknown(bin_path),
            started_at=time.time(),
        )
        write_json(self.process_path, asdict(record))
        try:
            self._wait_healthy(proc.pid, url, popen=proc)
        except BaseException:
            _stop_process_group(proc.pid)
            self.process_path.unlink(missing_ok=True)
            raise
        return self

    def _wait_healthy(self, pid: int, url: str, popen: subprocess.Popen[bytes] | None = None) -> None:
        deadline = time.monotonic() + self.startup_timeout
        port = int(url.rsplit(":", 1)[1])
        while time.monotonic() < deadline:
            if popen is not None and popen.poll() is not None:
                raise UserError(f"Label Studio exited with code {popen.returncode} while starting; see {self.log_path}")
            if health(url):
                # Label Studio silently moves to another port when ours is taken: make sure it is ours.
                ports = _listening_ports(pid)
                if ports and port not in ports:
                    raise UserError(
                        f"Label Studio (pid {pid}) listens on {sorted(ports)}, not {port}; see {self.log_path}"
                    )
                return
            time.sleep(0.5)
        raise UserError(
            f"Label Studio did not answer {url}/health within {self.startup_timeout:.0f} s; see {self.log_path}"
        )

    def stop(self) -> bool:
        """Stop the process this data dir's `start` launched (and its PostgreSQL cluster, if any);
        False when Label Studio was not running."""
        record = self.process()
        stopped = False
        if record is not None:
            if record.matches_live_process():
                _stop_process_group(record.pid)
                stopped = True
            self.process_path.unlink(missing_ok=True)
        cluster = self.cluster()
        if cluster is not None:
            cluster.stop()
        return stopped

    def __enter__(self) -> ManagedServer:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
