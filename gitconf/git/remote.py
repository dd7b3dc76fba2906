"""A bare mirror of the tracked branch in the state dir: clone once, fetch on every poll.

With label globs (spring.labels), the branches whose names match them are fetched too, up to
MAX_LABEL_BRANCHES of them, so a Spring label (or ?ref=) can name them.
"""

from __future__ import annotations

import fnmatch
import logging
import os
import shutil
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import pygit2

from gitconf.core.model import FileSet
from gitconf.errors import GitconfError, UsageError
from gitconf.git.read import TreeCache, fileset_from_commit, resolve

__all__ = [
    "MAX_LABEL_BRANCHES",
    "FetchError",
    "LabelBranches",
    "Mirror",
    "PushRejected",
    "choose_branches",
    "normalize_url",
]

log = logging.getLogger(__name__)
_REMOTE = "origin"
_HEADS = "refs/heads/"
_TAGS = "+refs/tags/*:refs/tags/*"
# The most branches fetched for spring.labels: each costs a ref in every fetch, and a
# compile when a label names it; a glob such as `*` on a busy remote could match thousands.
MAX_LABEL_BRANCHES = 32


class FetchError(GitconfError):
    """The remote could not be reached, refused us, or lacks the branch."""


class PushRejected(GitconfError):
    """The remote refused to move a branch: someone pushed first (race: the branch moved
    since our fetch, not a fast-forward), or a hook or a branch protection said no."""

    def __init__(self, message: str, *, race: bool) -> None:
        super().__init__(message)
        self.race = race


def normalize_url(location: str) -> str:
    """A local path as an absolute path; URLs unchanged."""
    if "://" in location or (":" in location.split("/", 1)[0] and "@" in location.split(":", 1)[0]):
        return location
    return str(Path(location).resolve())


class _Callbacks(pygit2.RemoteCallbacks):
    """Credentials from the settings, read when the remote asks for them."""

    def __init__(self, credentials: Mapping[str, str], environ: Mapping[str, str]) -> None:
        super().__init__()
        self._settings = credentials
        self._environ = environ
        self._tries = 0
        # What the remote said of each ref a push asked it to move and it would not.
        self.refused: dict[str, str] = {}

    def credentials(self, url: str, username_from_url: str | None, allowed_types: Any) -> Any:
        self._tries += 1
        if self._tries > 3:  # libgit2 asks again after a refusal; stop instead of looping
            raise FetchError(f"authentication to {redact(url)} was refused")
        creds = self._settings
        if allowed_types & pygit2.enums.CredentialType.SSH_KEY and creds.get("ssh_key_file"):
            key = creds["ssh_key_file"]
            passphrase = self._environ.get(creds.get("ssh_passphrase_env", ""), "")
            user = username_from_url or creds.get("username") or "git"
            return pygit2.Keypair(user, creds.get("ssh_public_key_file") or "", key, passphrase)
        if allowed_types & pygit2.enums.CredentialType.USERPASS_PLAINTEXT:
            token = self._token()
            if token is not None:
                user = creds.get("username") or username_from_url or "x-access-token"
                return pygit2.UserPass(user, token)
        raise FetchError(f"{redact(url)} asks for credentials and none are configured")

    def push_update_reference(self, refname: str, message: str | None) -> None:
        if message is not None:
            self.refused[refname] = message

    def _token(self) -> str | None:
        if name := self._settings.get("token_env"):
            return self._environ.get(name)
        if path := self._settings.get("token_file"):
            try:
                return Path(path).read_text().strip()
            except OSError as exc:
                raise FetchError(f"cannot read token_file {path}: {exc.strerror}") from None
        return None


def redact(url: str) -> str:
    """The URL without a user or token in it, for `/v1/status`, errors and logs.

    Everything between `scheme://` and the URL's *last* '@' is hidden. The netloc urlsplit
    finds is not enough: a password may hold '@' (only the last one ends it), and an
    unencoded '/', '?' or '#' in it ends that netloc early, leaving the rest of the password
    in the path. A URL whose path holds an '@' is hidden up to it too: no Git host's paths do,
    and too much hidden is better than a token shown. Paths and file:// URLs carry no
    credentials; scp-like `user@host:path` shows its user, the SSH login name.
    """
    scheme, sep, rest = url.partition("://")
    if not sep or "/" in scheme:  # a path (which may hold '://') or scp-like
        return _redact_scp(url)
    if scheme.lower() == "file" or "@" not in rest:
        return url
    return f"{scheme}://***@{rest.rsplit('@', 1)[1]}"


def _redact_scp(location: str) -> str:
    """An scp-like `user:password@host:path` without its password; anything else unchanged.

    Git reads no password there, but one written in it is still a secret to hide.
    """
    head, slash, tail = location.partition("/")
    if "@" not in head:
        return location
    user, host = head.rsplit("@", 1)
    if ":" not in user or ":" not in host:
        return location
    return f"***@{host}{slash}{tail}"


class LabelBranches(NamedTuple):
    """The branches fetched for spring.labels, in name order, and how many others matched."""

    fetched: tuple[str, ...] = ()
    skipped: int = 0


def choose_branches(
    names: Iterable[str], globs: Sequence[str], tracked: str, limit: int = MAX_LABEL_BRANCHES
) -> LabelBranches:
    """The branches among names (without refs/heads/) that a glob matches, the tracked one
    aside: the first `limit` of them in name order, and the count of those left out."""
    matching = sorted(
        {n for n in names if n != tracked and any(fnmatch.fnmatchcase(n, g) for g in globs)}
    )
    return LabelBranches(tuple(matching[:limit]), max(0, len(matching) - limit))


class Mirror:
    """The tracked branch (and tags) of the remote, mirrored bare under the state dir."""

    def __init__(
        self,
        url: str,
        path: Path,
        branch: str,
        credentials: Mapping[str, str] | None = None,
        timeout: float = 30.0,
        environ: Mapping[str, str] | None = None,
        labels: Sequence[str] = (),
    ) -> None:
        self.url = normalize_url(url)
        # Globs of the other branches to fetch (spring.labels), and those fetched last.
        self.labels = tuple(labels)
        self.label_branches = LabelBranches()
        self.path = path
        self.branch = branch
        self.credentials = dict(credentials or {})
        self.environ = os.environ if environ is None else environ
        self._repo: pygit2.Repository | None = None
        self._lock = threading.Lock()
        # Polls read one commit after another: each reads only the trees and blobs that changed.
        self._trees = TreeCache()
        self._read_lock = threading.Lock()
        self._open_lock = threading.Lock()
        self._read_repo: pygit2.Repository | None = None
        millis = int(timeout * 1000)
        pygit2.option(pygit2.enums.Option.SET_SERVER_CONNECT_TIMEOUT, millis)
        pygit2.option(pygit2.enums.Option.SET_SERVER_TIMEOUT, millis)

    @property
    def tracking_ref(self) -> str:
        """Where the fetched branch head is kept in the mirror."""
        return f"refs/remotes/{_REMOTE}/{self.branch}"

    def _open(self) -> pygit2.Repository | None:
        """The existing mirror if it is sound, else None (it is then made anew)."""
        if not self.path.exists():
            return None
        try:
            repo = pygit2.Repository(str(self.path))
            if not repo.is_bare or repo.remotes[_REMOTE].url != self.url:
                raise ValueError("not our mirror")
            ref = repo.references.get(self.tracking_ref)
            if ref is not None:
                repo[ref.target].peel(pygit2.Commit).tree  # noqa: B018 - reads objects: corruption shows here
            return repo
        except (pygit2.GitError, KeyError, ValueError, OSError) as exc:
            log.warning("the clone in %s is unusable (%s); cloning again", self.path, exc)
            shutil.rmtree(self.path, ignore_errors=True)
            return None

    def repository(self) -> pygit2.Repository:
        """The mirror, opened or initialised (without fetching)."""
        with self._open_lock:
            if self._repo is None:
                repo = self._open()
                if repo is None:
                    repo = self._init()
                self._repo = repo
            return self._repo

    def _reader(self) -> pygit2.Repository:
        """A handle of its own for reads: libgit2 handles are not shared between threads, and
        reads (the poll's, ?ref= requests') must not wait for a fetch from a slow remote."""
        if self._read_repo is None:
            self.repository()
            self._read_repo = pygit2.Repository(str(self.path))
        return self._read_repo

    def _init(self) -> pygit2.Repository:
        # Initialise beside the final path and rename, so a crash never leaves half a mirror.
        tmp = self.path.with_name(self.path.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.parent.mkdir(parents=True, exist_ok=True)
        repo = pygit2.init_repository(str(tmp), bare=True)
        repo.remotes.create(
            _REMOTE, self.url, f"+refs/heads/{self.branch}:refs/remotes/{_REMOTE}/{self.branch}"
        )
        repo.remotes.add_fetch(_REMOTE, _TAGS)
        os.replace(tmp, self.path)
        return pygit2.Repository(str(self.path))

    def fetch(self) -> str:
        """Fetch the branch (and the label branches) and return its head commit id;
        FetchError if that fails."""
        with self._lock:
            repo = self.repository()
            remote = repo.remotes[_REMOTE]
            try:
                if self.labels:
                    self._fetch_with_labels(repo, remote)
                else:
                    remote.fetch(
                        callbacks=_Callbacks(self.credentials, self.environ),
                        prune=pygit2.enums.FetchPrune.PRUNE,
                    )
            except FetchError:
                raise
            except (pygit2.GitError, OSError, KeyError) as exc:
                raise FetchError(f"fetching {redact(self.url)}: {exc}") from None
            ref = repo.references.get(self.tracking_ref)
            if ref is None:
                raise FetchError(f"the remote {redact(self.url)} has no branch {self.branch!r}")
            return str(ref.target)

    def _fetch_with_labels(self, repo: pygit2.Repository, remote: pygit2.Remote) -> None:
        """Fetch the tracked branch, the tags and the branches the label globs choose; drop
        the label branches fetched before that are no longer chosen (or gone)."""
        heads = remote.list_heads(callbacks=_Callbacks(self.credentials, self.environ))
        names = [h.name[len(_HEADS) :] for h in heads if h.name and h.name.startswith(_HEADS)]
        chosen = choose_branches(names, self.labels, self.branch)
        if chosen.skipped and chosen != self.label_branches:
            log.warning(
                "spring.labels %s match %d branches of the remote; only the first %d in name "
                "order are fetched (up to %r): narrow the globs to serve the others",
                list(self.labels),
                len(chosen.fetched) + chosen.skipped,
                MAX_LABEL_BRANCHES,
                chosen.fetched[-1],
            )
        refspecs = [
            f"+{_HEADS}{name}:refs/remotes/{_REMOTE}/{name}"
            for name in (self.branch, *chosen.fetched)
        ]
        remote.fetch(
            [*refspecs, _TAGS],
            callbacks=_Callbacks(self.credentials, self.environ),
            prune=pygit2.enums.FetchPrune.PRUNE,
        )
        keep = {f"refs/remotes/{_REMOTE}/{name}" for name in (self.branch, *chosen.fetched)}
        prefix = f"refs/remotes/{_REMOTE}/"
        for name in [r for r in repo.references if r.startswith(prefix) and r not in keep]:
            repo.references.delete(name)
        self.label_branches = chosen

    def head(self) -> str | None:
        """The branch head already fetched, without touching the network."""
        ref = self.repository().references.get(self.tracking_ref)
        return str(ref.target) if ref is not None else None

    def descends(self, commit: str, ancestor: str) -> bool:
        """Whether commit is a descendant of ancestor in the mirror (False if either is
        unknown here, or they are the same)."""
        with self._read_lock:
            repo = self._reader()
            try:
                return bool(repo.descendant_of(commit, ancestor))
            except (pygit2.GitError, KeyError, ValueError):
                return False

    def _commit(self, repo: pygit2.Repository, ref: str) -> pygit2.Commit:
        try:
            return resolve(repo, ref)
        except UsageError:
            if ref == self.branch and repo.references.get(self.tracking_ref) is not None:
                return resolve(repo, self.tracking_ref)
            raise

    def resolve(self, ref: str) -> str:
        """The commit id a ref (branch, tag or sha) names in the mirror; UsageError if none."""
        with self._read_lock:
            return str(self._commit(self._reader(), ref).id)

    def fileset(self, ref: str) -> tuple[str, FileSet]:
        """The commit id and config files of a ref (branch, tag or sha) in the mirror."""
        with self._read_lock:
            repo = self._reader()
            commit = self._commit(repo, ref)
            return str(commit.id), fileset_from_commit(repo, commit, self._trees)

    # -- writing: the change API's commits ------------------------------------------------

    def is_commit(self, sha: str) -> bool:
        """Whether sha is the full id of a commit in the mirror (never read as a ref name)."""
        if len(sha) != 40:
            return False
        with self._read_lock:
            try:
                found = self._reader().get(sha)
            except (ValueError, pygit2.GitError):
                return False
            return isinstance(found, pygit2.Commit)

    def blob_ids(self, sha: str, paths: list[str]) -> dict[str, str | None]:
        """The blob id of each path in commit sha (None: the commit has no such file)."""
        with self._read_lock:
            tree = self._commit(self._reader(), sha).tree
            found: dict[str, str | None] = {}
            for path in paths:
                try:
                    found[path] = str(tree[path].id)
                except KeyError:
                    found[path] = None
            return found

    def commit(
        self,
        parent: str,
        files: Mapping[str, bytes],
        *,
        author: pygit2.Signature,
        committer: pygit2.Signature,
        message: str,
    ) -> str:
        """A commit on top of parent with files (path -> bytes) written, in the mirror only
        (push() sends it); its id."""
        with self._lock:
            repo = self.repository()
            base = repo[parent].peel(pygit2.Commit)
            index = pygit2.Index()
            index.read_tree(base.tree)
            for path, data in files.items():
                mode = pygit2.enums.FileMode.BLOB
                if path in index:
                    existing = index[path].mode
                    if existing == pygit2.enums.FileMode.BLOB_EXECUTABLE:
                        mode = existing
                index.add(pygit2.IndexEntry(path, repo.create_blob(data), mode))
            tree = index.write_tree(repo)
            return str(repo.create_commit(None, author, committer, message, tree, [base.id]))

    def push(self, sha: str, branch: str) -> None:
        """Move refs/heads/<branch> of the remote to commit sha, a fast-forward only.

        PushRejected if the remote refuses (someone pushed first; a hook said no); FetchError
        if it cannot be reached or refuses our credentials. On success the mirror's copy of
        the tracked branch is moved too, so the next poll serves sha even before it fetches.
        """
        ref = f"refs/heads/{branch}"
        with self._lock:
            repo = self.repository()
            callbacks = _Callbacks(self.credentials, self.environ)
            try:
                repo.remotes[_REMOTE].push([f"{sha}:{ref}"], callbacks=callbacks)
            except FetchError:
                raise
            except (pygit2.GitError, OSError, KeyError) as exc:
                text = str(exc)
                lowered = text.lower()
                # libgit2's words for a remote ref that moved since our fetch.
                if ("fast" in lowered and "forward" in lowered) or "not present locally" in lowered:
                    raise PushRejected(
                        f"{ref} moved on {redact(self.url)}: {text}", race=True
                    ) from None
                if "non-bare" in lowered:
                    text += (
                        "; gitconf pushes changes to a remote or a bare repository: serve a bare "
                        "clone (git clone --bare) and push your own commits to it"
                    )
                raise FetchError(f"pushing to {redact(self.url)}: {text}") from None
            refused = callbacks.refused.get(ref)
            if refused is not None:
                # A non-fast-forward the remote found itself (the usual words), else a hook or
                # a protection rule: not a race, retrying would not help.
                race = "fast-forward" in refused or "fetch first" in refused
                raise PushRejected(
                    f"{redact(self.url)} refused to move {ref}: {refused}", race=race
                )
            if branch == self.branch:
                repo.references.create(self.tracking_ref, sha, force=True)
