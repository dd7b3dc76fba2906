"""A plain folder on disk read into the FileSet the compile core takes (no Git needed)."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
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
    """The config files of a folder on disk, committed or not.

    In a Git work tree, the files Git ignores are skipped: `git add -A` would never commit
    them, so a scratch file there cannot block a commit. Untracked files that are not
    ignored are read: they are on disk, and `git add -A` would commit them.
    """
    base = Path(root)
    if not base.is_dir():
        raise UsageError(f"{root}: no such folder")
    ignored = _ignore_rules(base)
    files: dict[str, bytes] = {}
    irregular: dict[str, str] = {}
    for top in ROOTS:
        start = base / top
        if not os.path.lexists(start) or ignored(top, start.is_dir()):
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
                if ignored(f"{rel_dir}/{name}", not full.is_symlink()):
                    dirnames.remove(name)
                elif full.is_symlink():
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
                if ignored(rel, False):
                    continue
                if stat.S_ISLNK(mode):
                    irregular[rel] = "symlink"
                elif stat.S_ISREG(mode) and is_config_path(rel):
                    files[rel] = _read(full)
    return FileSet(files, {}, irregular, label=f"folder {base}")


def _nothing_ignored(path: str, is_dir: bool) -> bool:
    return False


def _ignore_rules(base: Path) -> Callable[[str, bool], bool]:
    """Whether Git ignores a path under base (relative to it), if base is in a work tree.

    pygit2 is imported only when a `.git` is found above base: a plain folder does not pay
    for it.
    """
    resolved = base.resolve()
    if not any((folder / ".git").exists() for folder in (resolved, *resolved.parents)):
        return _nothing_ignored
    import pygit2

    found = pygit2.discover_repository(str(resolved))
    if found is None:
        return _nothing_ignored
    repo = pygit2.Repository(found)
    if repo.is_bare or repo.workdir is None:
        return _nothing_ignored
    try:
        prefix = resolved.relative_to(Path(repo.workdir).resolve()).as_posix()
    except ValueError:  # base is the git dir itself, or beside the work tree
        return _nothing_ignored
    prefix = "" if prefix == "." else prefix + "/"

    def ignored(path: str, is_dir: bool) -> bool:
        return bool(repo.path_is_ignored(prefix + path + ("/" if is_dir else "")))

    return ignored


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise UsageError(f"cannot read {path}: {exc.strerror}") from exc
