"""A plain folder on disk read into the FileSet the compile core takes (no Git needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gitconf.core.layers import is_config_path
from gitconf.core.model import FileSet
from gitconf.errors import UsageError

__all__ = ["ROOTS", "fileset_from_dir", "is_url"]

ROOTS = ("gitconf.yaml", "base", "environments", "schemas")


def is_url(location: str) -> bool:
    """Whether --repo names a remote (URL or scp-style) rather than a local path."""
    if "://" in location:
        return not location.startswith("file://")
    head = location.split("/", 1)[0]
    return ":" in head and "@" in head


def fileset_from_dir(root: str | Path) -> FileSet:
    """The config files of a folder on disk, committed or not."""
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"{root}: no such folder")
    files: dict[str, bytes] = {}
    irregular: dict[str, str] = {}
    for top in ROOTS:
        start = base / top
        if not os.path.lexists(start):
            continue
        if start.is_symlink():
            irregular[top] = "symlink"
            continue
        if start.is_file():
            files[top] = _read(start)
            continue
        for dirpath, dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(base).as_posix()
            for name in list(dirnames):
                full = Path(dirpath, name)
                if full.is_symlink():
                    irregular[f"{rel_dir}/{name}"] = "symlink"
                    dirnames.remove(name)
                elif (full / ".git").exists():
                    irregular[f"{rel_dir}/{name}"] = "submodule"
                    dirnames.remove(name)
            dirnames.sort()
            for name in sorted(filenames):
                rel = f"{rel_dir}/{name}"
                full = Path(dirpath, name)
                mode = os.lstat(full).st_mode
                if stat.S_ISLNK(mode):
                    irregular[rel] = "symlink"
                elif stat.S_ISREG(mode) and is_config_path(rel):
                    files[rel] = _read(full)
    return FileSet(files, {}, irregular, label=f"folder {base}")


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
