"""The on-disk copy of each config a client read: what it serves when the server is down.

One JSON file per (environment, service) in the cache folder, `<env>@<service>.json`, written
atomically (a temporary file in the same folder, mode 0600, fsync, rename, fsync of the folder),
so a crash leaves the old copy or the new one, never half of one.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

from gitconf.client.protocol import Fetched

__all__ = ["Cached", "DiskCache", "fsync_dir", "install", "stage", "write_atomically"]

log = logging.getLogger(__name__)
FORMAT = 1


class Cached(NamedTuple):
    """A copy read back from the cache."""

    config: Any
    etag: str | None
    revision: str | None
    saved_at: str


def stage(path: Path, data: bytes, mode: int) -> Path:
    """data in a temporary file beside path, with mode, flushed to disk: ready to install()."""
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".staged")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    return Path(staged)


def install(staged: Path, path: Path) -> None:
    """Rename a staged file over path, durably: readers see the old file or the new one."""
    try:
        os.replace(staged, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(staged)
        raise
    fsync_dir(path.parent)


def write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Replace path by data with the given mode: readers see the old file or the new one."""
    install(stage(path, data, mode), path)


def fsync_dir(folder: Path) -> None:
    """Make a rename in folder durable."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class DiskCache:
    """The cache folder; a client with cache_dir=None keeps its copy in memory only."""

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def path(self, environment: str, service: str) -> Path:
        """The file of one config."""
        return self.directory / f"{quote(environment, safe='')}@{quote(service, safe='')}.json"

    def load(self, url: str, environment: str, service: str) -> Cached | None:
        """The copy of url's config, or None (absent, unreadable, or another server's)."""
        path = self.path(environment, service)
        try:
            doc = json.loads(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("%s: unreadable cached copy, not used: %s", path, exc)
            return None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT or "config" not in doc:
            log.warning("%s: not a gitconf client cache file, not used", path)
            return None
        if doc.get("url") != url:
            log.warning(
                "%s: holds the config of %r, not of %r: not used", path, doc.get("url"), url
            )
            return None
        return Cached(doc["config"], doc.get("etag"), doc.get("revision"), doc.get("saved_at", ""))

    def store(self, url: str, environment: str, service: str, fetched: Fetched) -> None:
        """Write the copy of url's config."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        doc = {
            "format": FORMAT,
            "url": url,
            "etag": fetched.etag,
            "revision": fetched.revision,
            "saved_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "config": fetched.config,
        }
        data = json.dumps(doc, ensure_ascii=False, indent=1).encode() + b"\n"
        write_atomically(self.path(environment, service), data, 0o600)

    def remove(self, environment: str, service: str) -> None:
        """Drop the copy of one config (it is outdated and its successor may not be written)."""
        with contextlib.suppress(FileNotFoundError):
            self.path(environment, service).unlink()
