"""Files that must be created once, whole, even by processes starting together (keys, secrets)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def create_once(path: Path, data: bytes) -> bool:
    """Write `data` to a new file at `path` (mode 0600); False when another process got there first.

    The bytes go to a temporary file, which link() puts in place only if the name is free, so no
    reader ever sees a partial file. On file systems without hard links an exclusive create stands
    in; that write is not atomic, so readers of such files retry briefly on short content.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".create-", suffix=".tmp")  # mode 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    except OSError:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return False
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
