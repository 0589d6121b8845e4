"""Writing a report file: atomically, and never over an existing file.

The text goes to a temporary file in the same directory, then is hard-linked
to its name; link() fails when the name exists, so a file a user saved (or one
that appeared meanwhile) is never replaced, and a reader never sees half a report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from verify.interrupts import signals_held


class OutputExists(Exception):
    pass


def check_new(path: Path) -> None:
    """Fail early, before the proofs run, when the report could not be written."""
    if path.exists():
        raise OutputExists(f"{path} exists; choose another name or remove it first")
    if not path.parent.is_dir():
        raise OutputExists(f"{path}: directory {path.parent} does not exist")


def write_new(path: Path, content: str | bytes) -> None:
    check_new(path)
    data = content.encode() if isinstance(content, str) else content
    # Ctrl-C or SIGTERM waits for the few system calls below: no temporary file is left behind.
    with signals_held():
        try:
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        except OSError as e:
            raise OutputExists(f"{path}: cannot write in {path.parent}: {e.strerror}") from None
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.link(tmp, path)
        except FileExistsError:
            raise OutputExists(f"{path} exists; choose another name or remove it first") from None
        except OSError as e:
            raise OutputExists(f"{path}: cannot write: {e.strerror}") from None
        finally:
            os.unlink(tmp)


def usable_directory(path: Path, what: str) -> Path:
    """A directory the tool may write into, created if missing; a path that cannot be one is an error."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except ValueError:  # a NUL byte in the name
        raise OutputExists(f"{what} {path!r}: not a possible directory name") from None
    except OSError as e:
        raise OutputExists(f"{what} {path}: cannot use it as a directory: {e.strerror}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputExists(f"{what} {path}: the directory is not writable")
    return path
