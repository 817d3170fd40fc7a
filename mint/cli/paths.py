"""Paths given on the command line, checked before any work starts: a missing one is one line, not a traceback."""

import re
from pathlib import Path

HUB_ID = re.compile(r"^[\w.-]+(/[\w.-]+)?$")


def existing(path: str, what: str, command: str, hub: bool = False) -> str:
    """`path` if it exists (or, with `hub`, reads as a Hub id), else one line naming what is missing."""
    if Path(path).exists() or (hub and HUB_ID.match(path) and not path.startswith(".")):
        return path
    raise SystemExit(f"mint {command}: {what} {path} does not exist" + (" (nor is it a Hub id)" if hub else ""))
