"""Google's Firestore emulator for tests: found, started on a free port, reset between tests, stopped.

Where it is looked for, in order:
1. `FIRESTORE_EMULATOR_BIN` (the `cloud_firestore_emulator` script, or its folder);
2. the Debian package `google-cloud-cli-firestore-emulator`, if dpkg knows it;
3. `<repo>/../shared/tools/cloud-firestore-emulator/cloud_firestore_emulator` (a copy of that package).

The emulator runs in its own process group (its wrapper script does not `exec` java), which is
killed whole at the end. While it runs, FIRESTORE_EMULATOR_HOST points at it, so clients made in
this process and its children use it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = "cloud_firestore_emulator"
PACKAGE = "google-cloud-cli-firestore-emulator"
SHARED_COPY = ROOT.parent / "shared" / "tools" / "cloud-firestore-emulator" / SCRIPT
ENV_BIN = "FIRESTORE_EMULATOR_BIN"
ENV_HOST = "FIRESTORE_EMULATOR_HOST"


class EmulatorMissing(Exception):
    """No emulator (or no Java to run it) on this machine."""


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _from_dpkg() -> Path | None:
    if shutil.which("dpkg") is None:
        return None
    try:
        listing = subprocess.run(
            ["dpkg", "-L", PACKAGE], capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if listing.returncode != 0:
        return None
    for line in listing.stdout.splitlines():
        path = Path(line.strip())
        if path.name == SCRIPT and path.is_file():
            return path
    return None


def find_emulator() -> Path:
    """The emulator's start script; EmulatorMissing (saying where it looked) if there is none."""
    looked: list[str] = []
    configured = os.environ.get(ENV_BIN)
    if configured:
        path = Path(configured)
        if path.is_dir():
            path = path / SCRIPT
        if path.is_file():
            return path
        raise EmulatorMissing(f"{ENV_BIN}={configured} is not the emulator's {SCRIPT} script")
    looked.append(f"${ENV_BIN} (unset)")
    found = _from_dpkg()
    if found is not None:
        return found
    looked.append(f"the Debian package {PACKAGE} (not installed)")
    if SHARED_COPY.is_file():
        return SHARED_COPY
    looked.append(str(SHARED_COPY))
    raise EmulatorMissing("no Firestore emulator: looked at " + ", ".join(looked))


def java_available() -> None:
    """EmulatorMissing unless a `java` (or $JAVA) is there to run the emulator."""
    if shutil.which(os.environ.get("JAVA", "java")) is None:
        raise EmulatorMissing("the Firestore emulator needs Java 17 or newer, and `java` is not on PATH")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class FirestoreEmulator:
    """A running emulator; `host` is what FIRESTORE_EMULATOR_HOST is set to."""

    host: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://{self.host}/", timeout=1.0) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def reset(self, project: str, database: str = "(default)") -> None:
        """Delete every document of one project's database."""
        _reset(self.host, project, database)

    def log_tail(self, size: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-size:]
        except OSError:
            return ""

    def stop(self) -> None:
        """Stop the whole process group (the wrapper script and its JVM)."""
        if self.process.poll() is None or _group_alive(self.process.pid):
            for sig, wait in ((signal.SIGTERM, 1.0), (signal.SIGKILL, 5.0)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.process.pid, sig)
                deadline = time.monotonic() + wait
                while time.monotonic() < deadline and _group_alive(self.process.pid):
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self.process.wait(timeout=0.05)
                if not _group_alive(self.process.pid):
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=1.0)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_emulator(script: Path, log_path: Path, *, timeout: float = 60.0) -> FirestoreEmulator:
    """Start the emulator on a free port and wait until it answers."""
    java_available()
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["bash", str(script), "--host", "127.0.0.1", "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    emulator = FirestoreEmulator(f"127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while not emulator.answers():
        if process.poll() is not None or time.monotonic() > deadline:
            emulator.stop()
            why = "exited" if process.returncode is not None else f"did not answer within {timeout:.0f}s"
            raise RuntimeError(f"the Firestore emulator {why}:\n{emulator.log_tail()}")
        time.sleep(0.1)
    return emulator


@contextlib.contextmanager
def running_emulator(log_dir: Path, script: Path | None = None) -> Iterator[FirestoreEmulator]:
    """An emulator for the duration, with FIRESTORE_EMULATOR_HOST pointing at it."""
    emulator = start_emulator(script or find_emulator(), log_dir / "firestore-emulator.log")
    previous = os.environ.get(ENV_HOST)
    os.environ[ENV_HOST] = emulator.host
    try:
        yield emulator
    finally:
        if previous is None:
            os.environ.pop(ENV_HOST, None)
        else:
            os.environ[ENV_HOST] = previous
        emulator.stop()


def reset_documents(project: str, database: str = "(default)") -> None:
    """Delete every document of a project in the emulator FIRESTORE_EMULATOR_HOST points at."""
    host = os.environ.get(ENV_HOST)
    if not host:
        raise RuntimeError(f"{ENV_HOST} is not set")
    _reset(host, project, database)


def _reset(host: str, project: str, database: str) -> None:
    url = f"http://{host}/emulator/v1/projects/{project}/databases/{database}/documents"
    with urllib.request.urlopen(urllib.request.Request(url, method="DELETE"), timeout=10.0) as response:
        response.read()
