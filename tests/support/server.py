"""Starts `genmedia serve` (or `genmedia worker`) as a real process on a free port, and mints tokens."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import httpx

from domain.terms import DEFAULT_TERMS_VERSION

ROOT = Path(__file__).resolve().parents[2]
GENMEDIA = [sys.executable, "-m", "cli"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def studio_env(data_dir: Path, port: int, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("GENMEDIA_")}
    env.update(
        {
            "GENMEDIA_DATA_DIR": str(data_dir),
            "GENMEDIA_PORT": str(port),
            "GENMEDIA_HOST": "127.0.0.1",
            "GENMEDIA_LOCAL_SPEED": "10",
            "GENMEDIA_JOB_LEASE_SECONDS": "3",
            "PYTHONPATH": str(ROOT),
        }
    )
    env.update(extra or {})
    return env


@dataclass
class StudioProcess:
    """One `genmedia` process; stopped (its whole process group) by `stop()`."""

    command: list[str]
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    port: int = 0
    extra: dict[str, str] = field(default_factory=dict)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> StudioProcess:
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command, env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        return self

    def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.base_url}/readyz", timeout=1.0).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"server not ready in {timeout}s:\n{self.log_path.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, sig)
            self.process.wait(timeout=15)

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()


def start_server(
    data_dir: Path, extra: Mapping[str, str] | None = None, *, port: int | None = None
) -> StudioProcess:
    port = port or free_port()
    env = studio_env(data_dir, port, extra)
    server = StudioProcess([*GENMEDIA, "serve"], env, data_dir.parent / f"serve-{port}.log", port=port)
    server.start().wait_ready()
    return server


def start_worker(data_dir: Path, extra: Mapping[str, str] | None = None) -> StudioProcess:
    env = studio_env(data_dir, 0, extra)
    log = data_dir.parent / f"worker-{time.monotonic_ns()}.log"
    return StudioProcess([*GENMEDIA, "worker"], env, log).start()


async def mint_token(
    data_dir: Path,
    email: str,
    role: str = "USER",
    status: str = "ACTIVE",
    *,
    hours: float = 1.0,
    terms: str | None = DEFAULT_TERMS_VERSION,
) -> str:
    """Create or update the user in the studio's store and sign a token with the studio's local key.

    The user accepts the `terms` version (the servers' default one unless told; None: accepts nothing).
    """
    from backends.docstore.sqlite import SqliteDocStore
    from backends.identity.local import LocalIssuer
    from domain.users import Directory, Role, UserStatus

    docs = SqliteDocStore(data_dir / "studio.db")
    try:
        user = await Directory(docs).put(
            email, role=Role(role), status=UserStatus(status), terms_version=terms
        )
    finally:
        await docs.close()
    issuer = LocalIssuer(data_dir / "secrets" / "issuer-key.pem")
    return issuer.issue(user.id, user.email, ttl=timedelta(hours=hours))


@contextmanager
def serving(
    data_dir: Path, extra: Mapping[str, str] | None = None, *, port: int | None = None
) -> Iterator[StudioProcess]:
    """`start_server` for the length of a block, stopped however the block ends."""
    server = start_server(data_dir, extra, port=port)
    try:
        yield server
    finally:
        server.stop()
