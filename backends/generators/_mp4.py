"""Browser-playable MP4 (H.264 yuv420p, optional AAC) encoding by piping raw frames into the
ffmpeg bundled with imageio-ffmpeg, as an asyncio subprocess that is killed on cancellation."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import tempfile
from pathlib import Path
from types import TracebackType

from domain.errors import ErrorCode, StudioError

from ._audio import SAMPLE_RATE

log = logging.getLogger(__name__)


def ffmpeg_exe() -> str:
    """Path of the bundled ffmpeg binary (imported lazily: it is only needed for video)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _encoding_failed() -> StudioError:
    return StudioError(ErrorCode.INTERNAL, "local generator: video encoding failed", retryable=True)


class Mp4Encoder:
    """`async with Mp4Encoder(...) as enc: await enc.write(frames); data = await enc.finish()`.

    Leaving the block before `finish` (error or cancellation) kills ffmpeg and removes temp files.
    """

    def __init__(self, width: int, height: int, fps: int, audio_pcm: bytes | None = None) -> None:
        self.width, self.height, self.fps = width, height, fps
        self._audio = audio_pcm
        self._dir: Path | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._stderr: asyncio.Task[bytes] | None = None

    async def __aenter__(self) -> Mp4Encoder:
        # Inline, not in a thread: one mkdir is cheap, and a cancellation landing between a threaded
        # mkdtemp and this assignment would leak the directory.
        self._dir = Path(tempfile.mkdtemp(prefix="genmedia-video-"))
        try:
            await self._start(self._dir)
        except BaseException:
            self._cleanup()
            raise
        return self

    async def _start(self, workdir: Path) -> None:
        args = [
            ffmpeg_exe(),
            *("-hide_banner", "-loglevel", "error", "-y"),
            *("-f", "rawvideo", "-pix_fmt", "rgb24", "-video_size", f"{self.width}x{self.height}"),
            *("-framerate", str(self.fps), "-i", "pipe:0"),
        ]
        if self._audio is not None:
            audio_path = workdir / "audio.pcm"
            await asyncio.to_thread(audio_path.write_bytes, self._audio)
            args += ["-f", "s16le", "-ar", str(SAMPLE_RATE), "-ac", "1", "-i", str(audio_path)]
            args += ["-map", "0:v:0", "-map", "1:a:0", "-c:a", "aac", "-b:a", "128k", "-ac", "2"]
        args += [
            *("-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"),
            *("-profile:v", "high", "-g", str(self.fps * 2)),
            # moov atom first so browsers can start playing before the download ends.
            *("-movflags", "+faststart", str(workdir / "out.mp4")),
        ]
        self._proc = await asyncio.create_subprocess_exec(
            *args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stderr is not None
        # Drain stderr concurrently: a full pipe would stall ffmpeg and, through it, us.
        self._stderr = asyncio.create_task(self._proc.stderr.read())

    async def write(self, frames: bytes) -> None:
        """Feed raw rgb24 frames; waits while ffmpeg catches up."""
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write(frames)
            await self._proc.stdin.drain()
        except (BrokenPipeError, ConnectionResetError) as exc:
            await self._log_failure()
            raise _encoding_failed() from exc

    async def finish(self) -> bytes:
        """Close the input, wait for ffmpeg, and return the MP4 bytes."""
        assert self._proc is not None and self._proc.stdin is not None and self._dir is not None
        self._proc.stdin.close()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            await self._proc.stdin.wait_closed()
        if await self._proc.wait() != 0:
            await self._log_failure()
            raise _encoding_failed()
        return await asyncio.to_thread((self._dir / "out.mp4").read_bytes)

    async def _log_failure(self) -> None:
        assert self._proc is not None and self._stderr is not None
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self._proc.wait(), 5)
            detail = (await asyncio.wait_for(self._stderr, 1)).decode(errors="replace")
            log.error("ffmpeg failed (exit %s): %s", self._proc.returncode, detail[-2000:])

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        proc = self._proc
        try:
            if proc is not None and proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
                # Shielded: even if cancelled again, the wait still runs and reaps the process.
                await asyncio.shield(proc.wait())
        finally:
            self._cleanup()

    def _cleanup(self) -> None:
        if self._stderr is not None and not self._stderr.done():
            self._stderr.cancel()
        if self._dir is not None:
            # A few small files: removing them inline is cheaper than a thread hop on the cancel path.
            shutil.rmtree(self._dir, ignore_errors=True)
            self._dir = None
