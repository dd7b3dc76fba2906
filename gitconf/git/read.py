"""Read a commit's tree or a plain folder into the FileSet the compile core takes."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import NamedTuple

import pygit2

from gitconf.core.model import FileSet
from gitconf.errors import UsageError
from gitconf.git.folder import ROOTS as _ROOTS
from gitconf.git.folder import fileset_from_dir, is_url

__all__ = [
    "TreeCache",
    "fileset_from_commit",
    "fileset_from_dir",
    "fileset_from_index",
    "is_url",
    "open_repository",
    "resolve",
]


@contextlib.contextmanager
def open_repository(location: str) -> Iterator[pygit2.Repository]:
    """The repository at a local path, or a remote one cloned into a temporary folder."""
    if is_url(location) or location.startswith("file://"):
        with tempfile.TemporaryDirectory(prefix="gitconf-clone-") as target:
            try:
                repo = pygit2.clone_repository(location, target, bare=True)
            except (pygit2.GitError, ValueError) as exc:
                raise UsageError(f"cannot clone {location}: {exc}") from exc
            try:
                yield repo
            finally:
                repo.free()
        return
    yield _open_local(location)


def _open_local(location: str) -> pygit2.Repository:
    found = pygit2.discover_repository(location)
    if found is None:
        raise UsageError(f"{location} is not inside a Git repository (needed for --ref)")
    return pygit2.Repository(found)


def resolve(repo: pygit2.Repository, ref: str) -> pygit2.Commit:
    """The commit a branch, remote branch, tag, sha or expression like HEAD~1 names."""
    candidates = [ref] if ref.startswith("refs/") else [ref, f"refs/remotes/origin/{ref}"]
    for name in candidates:
        try:
            obj = repo.revparse_single(name)
            commit = obj.peel(pygit2.Commit)
        except (KeyError, ValueError, pygit2.GitError, pygit2.InvalidSpecError):
            continue
        return commit
    raise UsageError(f"unknown ref {ref!r}: no branch, tag or commit of that name")


class _Part(NamedTuple):
    """The config files under one tree, by full path, and every tree under it."""

    files: dict[str, bytes]
    oids: dict[str, str]
    irregular: dict[str, str]
    trees: dict[tuple[str, str], _Part]


class TreeCache:
    """The trees and blobs of the last two commits read, so the next read reads only changes.

    A subtree whose id is unchanged is taken whole; in a changed one, blobs already read are
    reused by id. Two commits, so reading another ref between two polls evicts nothing the
    next poll needs. Not thread-safe: one reader at a time.
    """

    def __init__(self) -> None:
        self._trees: dict[tuple[str, str], _Part] = {}
        self._older_trees: dict[tuple[str, str], _Part] = {}
        self._blobs: dict[str, bytes] = {}
        self._older_blobs: dict[str, bytes] = {}

    def tree(self, prefix: str, oid: str) -> _Part | None:
        """The files under the tree oid at prefix, if read lately."""
        part = self._trees.get((prefix, oid))
        return part if part is not None else self._older_trees.get((prefix, oid))

    def blob(self, oid: str) -> bytes | None:
        """The data of a blob read lately."""
        data = self._blobs.get(oid)
        return data if data is not None else self._older_blobs.get(oid)

    def keep(self, trees: dict[tuple[str, str], _Part], files: FileSet) -> None:
        """Remember the trees and blobs of the commit just read, forgetting the oldest one."""
        self._older_trees, self._trees = self._trees, trees
        self._older_blobs = self._blobs
        self._blobs = {files.oids[path]: data for path, data in files.files.items()}


def fileset_from_commit(
    repo: pygit2.Repository, commit: pygit2.Commit, cache: TreeCache | None = None
) -> FileSet:
    """The config files of a commit, with their blob ids; symlinks and submodules noted.

    With a cache, only the trees and blobs that are not in it are read from the repository.
    """
    root = _read_tree(repo, commit.tree, "", cache)
    files = FileSet(root.files, root.oids, root.irregular, label=f"commit {commit.id}")
    if cache is not None:
        cache.keep(root.trees, files)
    return files


def _read_tree(
    repo: pygit2.Repository,
    tree: pygit2.Tree,
    prefix: str,
    cache: TreeCache | None,
) -> _Part:
    part = _Part({}, {}, {}, {})
    for entry in tree:
        name = entry.name or ""
        path = prefix + name
        if not prefix and name not in _ROOTS:
            continue
        mode = entry.filemode
        if mode == pygit2.enums.FileMode.TREE:
            key = (path + "/", str(entry.id))
            sub = cache.tree(*key) if cache is not None else None
            if sub is None:
                sub = _read_tree(repo, repo[entry.id].peel(pygit2.Tree), key[0], cache)
            part.trees[key] = sub
            part.trees.update(sub.trees)
            part.files.update(sub.files)
            part.oids.update(sub.oids)
            part.irregular.update(sub.irregular)
        elif mode == pygit2.enums.FileMode.LINK:
            part.irregular[path] = "symlink"
        elif mode == pygit2.enums.FileMode.COMMIT:
            part.irregular[path] = "submodule"
        else:
            oid = str(entry.id)
            data = cache.blob(oid) if cache is not None else None
            if data is None:
                data = repo[entry.id].peel(pygit2.Blob).data
            part.files[path] = data
            part.oids[path] = oid
    return part


def fileset_from_index(location: str, environ: Mapping[str, str] | None = None) -> FileSet:
    """The config files staged in the index of the work tree at location: what `git commit`
    would record, whatever the files on disk say.

    `git commit -a` (or `git commit <paths>`) runs its hooks with GIT_INDEX_FILE naming a
    temporary index that holds what it is about to commit: that index is read when set (a
    relative path is relative to the current folder, as Git means it). location may be a
    folder inside the work tree: then the files staged under it are read.
    """
    environ = os.environ if environ is None else environ
    repo = _open_local(location)
    if repo.is_bare or repo.workdir is None:
        raise UsageError(f"{location} is a bare repository: --staged needs a work tree")
    index_file = environ.get("GIT_INDEX_FILE")
    if index_file:
        try:
            index = pygit2.Index(str(Path(index_file).resolve()))
        except (pygit2.GitError, OSError) as exc:
            raise UsageError(f"cannot read GIT_INDEX_FILE {index_file}: {exc}") from None
    else:
        index = repo.index
    if index.conflicts is not None:
        unmerged = sorted({e.path for c in index.conflicts for e in c if e is not None})
        raise UsageError(
            f"the index has unmerged paths ({', '.join(unmerged)}); resolve and stage them first"
        )
    try:
        prefix = Path(location).resolve().relative_to(Path(repo.workdir).resolve()).as_posix()
    except ValueError:
        prefix = "."
    prefix = "" if prefix == "." else prefix + "/"
    files: dict[str, bytes] = {}
    oids: dict[str, str] = {}
    irregular: dict[str, str] = {}
    for entry in index:
        if not entry.path.startswith(prefix):
            continue
        path = entry.path[len(prefix) :]
        if path.split("/", 1)[0] not in _ROOTS:
            continue
        if entry.mode == pygit2.enums.FileMode.LINK:
            irregular[path] = "symlink"
        elif entry.mode == pygit2.enums.FileMode.COMMIT:
            irregular[path] = "submodule"
        else:
            files[path] = repo[entry.id].peel(pygit2.Blob).data
            oids[path] = str(entry.id)
    return FileSet(files, oids, irregular, label=f"staged files of {repo.workdir.rstrip('/')}")
