"""Throwaway local servers for tests and ``gaitstream bench sinks``: a PostgreSQL cluster in a
temporary directory and a mosquitto broker, each on a free loopback port.

PostgreSQL refuses to run as root; when this runs as root the cluster is created and run as the
``postgres`` system user (which Debian's postgresql packages create) through ``runuser``.
Binaries are looked up in ``$GAITSTREAM_PG_BIN``, then ``/usr/lib/postgresql/<newest>/bin``,
then ``PATH``; mosquitto in ``PATH`` and ``/usr/sbin``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


class ServerUnavailable(RuntimeError):
    """The server's binaries are not installed (or cannot be run here); the text says which."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout_s: float = 10.0) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def find_pg_bin() -> Path | None:
    env = os.environ.get("GAITSTREAM_PG_BIN")
    if env and (Path(env) / "initdb").exists():
        return Path(env)

    def version(p: str) -> tuple[int, ...]:
        v = Path(p).parent.name
        return tuple(int(x) for x in v.split(".") if x.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=version)
    for d in reversed(found):
        if (Path(d) / "initdb").exists() and (Path(d) / "pg_ctl").exists():
            return Path(d)
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if os.path.exists(p)),
        None)


class PostgresCluster:
    """``initdb`` + ``pg_ctl start`` in a temp dir; ``dsn(db)`` for new databases; stop removes
    everything. ``fsync=False`` is for tests only (benchmarks keep PostgreSQL's defaults)."""

    USER = "gaitstream"

    def __init__(self, fsync: bool = True):
        self.bin = find_pg_bin()
        if self.bin is None:
            raise ServerUnavailable("PostgreSQL binaries (initdb, pg_ctl) not found: install "
                                    "the Debian package postgresql (or set GAITSTREAM_PG_BIN)")
        self.fsync = fsync
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gaitstream-pg-"))
        self.data = self.dir / "data"
        self.run_as: list[str] = []
        if os.geteuid() == 0:
            try:
                pw = pwd.getpwnam("postgres")
            except KeyError:
                raise ServerUnavailable("running as root and there is no 'postgres' user to run "
                                        "PostgreSQL as (it refuses root)") from None
            os.chown(self.dir, pw.pw_uid, pw.pw_gid)
            self.run_as = ["runuser", "-u", "postgres", "--"]
        self.started = False

    def _run(self, *args: str) -> None:
        r = subprocess.run([*self.run_as, *args], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise ServerUnavailable(f"{Path(args[0]).name} failed ({r.returncode}): "
                                    f"{r.stderr.strip() or r.stdout.strip()}")

    def start(self) -> "PostgresCluster":
        """Create the cluster (first time) and start the server."""
        if not self.data.exists():
            self._run(str(self.bin / "initdb"), "-D", str(self.data), "-U", self.USER,
                      "--auth=trust", "-E", "UTF8", "--no-instructions")
        opts = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1"
        if not self.fsync:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-w", "-t", "60",
                  "-l", str(self.dir / "server.log"), "start")
        self.started = True
        return self

    def dsn(self, db: str = "postgres") -> str:
        return f"postgresql://{self.USER}@127.0.0.1:{self.port}/{db}"

    def create_database(self, name: str) -> str:
        import psycopg

        with psycopg.connect(self.dsn(), autocommit=True) as c:
            c.execute(f'CREATE DATABASE "{name}"')
        return self.dsn(name)

    def stop_server(self, mode: str = "immediate") -> None:
        """Stop the server and keep the cluster (``start`` brings it back with its data)."""
        if self.started:
            try:
                self._run(str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w",
                          "stop")
            finally:
                self.started = False

    def stop(self) -> None:
        """Stop the server and delete the cluster."""
        try:
            self.stop_server()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class MosquittoBroker:
    """A mosquitto broker on a fixed free port that can be stopped and started again.

    ``persistence=True`` keeps persistent client sessions (subscriptions and their queued
    QoS 1 messages) across a stop and start, as a production broker would."""

    def __init__(self, port: int | None = None, persistence: bool = False,
                 user: str | None = None):
        self.exe = find_mosquitto()
        if self.exe is None:
            raise ServerUnavailable("mosquitto not found: install the Debian package mosquitto")
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="gaitstream-mqtt-"))
        self.conf = self.dir / "mosquitto.conf"
        persist = (f"persistence true\npersistence_location {self.dir}/\n" if persistence
                   else "persistence false\n")
        # ``user``: whom mosquitto started as root runs as ("root": stay; in a user namespace,
        # where the mosquitto user is not mapped, dropping to it fails)
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             f"{persist}log_dest stderr\n" + (f"user {user}\n" if user else ""))
        # mosquitto started as root drops to its own user, which must write the session file
        os.chmod(self.dir, 0o777 if persistence else 0o755)
        os.chmod(self.conf, 0o644)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "MosquittoBroker":
        with open(self.dir / "broker.log", "ab") as logf:
            self.proc = subprocess.Popen([self.exe, "-c", str(self.conf)],
                                         stdout=subprocess.DEVNULL, stderr=logf)
        if not wait_port(self.port):
            self.stop()
            raise ServerUnavailable(f"mosquitto did not listen on {self.port}; see "
                                    f"{self.dir / 'broker.log'}")
        return self

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None

    def close(self) -> None:
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "MosquittoBroker":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
