"""Fixtures for end-to-end tests: real `genmedia` processes on a fresh data dir, always stopped."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.support.server import GENMEDIA, StudioProcess, free_port, studio_env


class Processes:
    """Starts `genmedia serve` / `genmedia worker` processes on one data dir and stops them all."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.data_dir = root / "data"
        self.started: list[StudioProcess] = []

    def serve(
        self, extra: Mapping[str, str] | None = None, *, port: int | None = None, timeout: float = 20.0
    ) -> StudioProcess:
        """A `genmedia serve`, ready (its /readyz answers 200) when this returns."""
        port = port or free_port()
        env = studio_env(self.data_dir, port, extra)
        log = self.root / f"serve-{port}-{time.monotonic_ns()}.log"
        server = StudioProcess([*GENMEDIA, "serve"], env, log, port=port)
        self.started.append(server)  # registered before it starts: stopped even if it never gets ready
        server.start().wait_ready(timeout)
        return server

    def worker(self, extra: Mapping[str, str] | None = None) -> StudioProcess:
        """A `genmedia worker` (workers only, no HTTP) on the same data dir."""
        env = studio_env(self.data_dir, 0, extra)
        log = self.root / f"worker-{time.monotonic_ns()}.log"
        worker = StudioProcess([*GENMEDIA, "worker"], env, log)
        self.started.append(worker)
        return worker.start()

    def logs(self) -> str:
        """The tail of every process log, for assertion messages."""
        parts = []
        for process in self.started:
            text = process.log_path.read_text(errors="replace") if process.log_path.exists() else ""
            parts.append(f"--- {process.command[-1]} {process.log_path.name}\n{text[-2000:]}")
        return "\n".join(parts)

    def stop_all(self) -> None:
        for process in reversed(self.started):
            try:
                process.stop()
            except Exception:  # still try the others, and never leave a process behind
                process.kill()


@pytest.fixture
def processes(tmp_path: Path) -> Iterator[Processes]:
    """A fresh data dir and the processes started on it; every one is stopped after the test."""
    procs = Processes(tmp_path)
    try:
        yield procs
    finally:
        procs.stop_all()
