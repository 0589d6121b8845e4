"""Reading a file a user hands in (a trace, a Rust source): only a regular file, only up to a bound."""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

MAX_SOURCE_BYTES = 16 << 20  # kvec.rs and context.rs are tens of kilobytes; /dev/zero is not a source file


class UnreadableFile(Exception):
    """The file cannot be used; the message says why, without the file's name (the caller adds it)."""


def read_regular(path: Path, max_bytes: int, what: str) -> bytes:
    """The file's bytes, read only if it is a regular file of at most `max_bytes` (`what` names its kind)."""
    try:
        # O_NONBLOCK: opening a FIFO must not wait for a writer; fstat then refuses it.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise UnreadableFile(f"cannot read: {e.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableFile("not a regular file")
        if info.st_size > max_bytes:
            raise UnreadableFile(f"{info.st_size} bytes, more than {what} may have ({max_bytes})")
        chunks: list[bytes] = []
        size = 0
        while size <= max_bytes:  # a short read is not the end of the file; an empty one is
            chunk = os.read(fd, max_bytes + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > max_bytes:  # grew since fstat
            raise UnreadableFile(f"more than {max_bytes} bytes")
        return b"".join(chunks)
    except OSError as e:
        raise UnreadableFile(f"cannot read: {e.strerror}") from None
    finally:
        os.close(fd)


def source_sha256(path: Path) -> str:
    """The SHA-256 (hex) of a Rust source file's content, read as `read_regular` reads it."""
    return hashlib.sha256(read_regular(path, MAX_SOURCE_BYTES, "a Rust source file")).hexdigest()
