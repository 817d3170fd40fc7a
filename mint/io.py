"""Writes that land whole or not at all: a killed run or a full disk never leaves a half-written file or folder
where a later run would read it."""

import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def atomic_file(path: str | Path):
    """Yields a temporary path beside `path`; renamed onto `path` when the block ends, removed if it raises."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.fchmod(fd, 0o644)  # mkstemp makes it private; the result is an ordinary file
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        tmp.replace(path)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def atomic_folder(out: str | Path):
    """Yields an empty temporary folder beside `out`; when the block ends it replaces `out` (the old folder is moved
    aside whole, then removed), and if the block raises it is removed and `out` is left as it was."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    work.chmod(0o755)  # mkdtemp makes it private; the result is an ordinary folder
    try:
        staging = work / "new"
        staging.mkdir()
        yield staging
        old = work / "old"
        if out.exists():
            out.rename(old)
        try:
            staging.rename(out)
        except BaseException:
            if old.exists() and not out.exists():
                old.rename(out)  # the good folder goes back where it was
            raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
