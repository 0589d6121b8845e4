"""Writing a report file: atomically, and never over an existing file.

The text goes to a temporary file in the same directory, then is hard-linked
to its name; link() fails when the name exists, so a file a user saved (or one
that appeared meanwhile) is never replaced, and a reader never sees half a report.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


class OutputExists(Exception):
    pass


def check_new(path: Path) -> None:
    """Fail early, before the proofs run, when the report could not be written."""
    if path.exists():
        raise OutputExists(f"{path} exists; choose another name or remove it first")
    if not path.parent.is_dir():
        raise OutputExists(f"{path}: directory {path.parent} does not exist")


def write_new(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.link(tmp, path)
    except FileExistsError:
        raise OutputExists(f"{path} exists; choose another name or remove it first") from None
    finally:
        os.unlink(tmp)
