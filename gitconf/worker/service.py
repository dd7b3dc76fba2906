"""What the compile worker does for each request, as plain methods (no process, no pipe).

`child.py` runs one CompileService in the worker process; tests call it directly. It reads
commits from the server's mirror, keeps the incremental compile cache for the branch head,
and the compiled revisions the server serves or asked about lately, so a config unchanged
since the served revision keeps its ETag without being encoded again, and its body is not
sent again.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitconf.changes.apply import Edit, apply_change
from gitconf.changes.errors import BaseInvalid, ChangeError
from gitconf.core.baselayers import merge_base
from gitconf.core.compile import CompileCache, SecretReading, compile_fileset
from gitconf.core.diff import ConfigChange, diff_configs, diff_values, mask_secrets, secret_keys
from gitconf.core.explain import explain_config
from gitconf.core.model import (
    CompiledRevision,
    Config,
    FileSet,
    Manifest,
    format_path,
    iter_leaves,
    to_plain,
)
from gitconf.core.redact import count_secrets, redacted
from gitconf.core.render import etag_of, to_json
from gitconf.errors import UsageError
from gitconf.gcpause import collector_paused
from gitconf.secrets import Keyring
from gitconf.worker.messages import (
    Adopted,
    BaseConfig,
    Built,
    ChangeApplied,
    ChangeRefused,
    ConfigKey,
    Refused,
    Started,
)

__all__ = ["CompileService", "subscription_docs"]

# Compiled revisions kept besides the cache: the served one, the newest, one asked about.
KEEP = 3
LARGEST = 5


def subscription_docs(manifest: Manifest) -> tuple[dict[str, Any], ...]:
    """The manifest's subscriptions as plain, persistable dicts."""
    return tuple(
        {
            "name": spec.name,
            "url": spec.url,
            "environments": list(spec.environments),
            "services": list(spec.services),
            "secret_env": spec.secret_env,
            "events": list(spec.events),
            "include_config": spec.include_config,
            "source": str(spec.source),
        }
        for spec in manifest.subscriptions
    )


@dataclass
class _Compiled:
    """A valid revision the worker holds: its configs and the ETag of each body (without its
    secrets), and of each plaintext variant of a config that has secrets."""

    sha: str
    revision: CompiledRevision
    etags: dict[ConfigKey, str]
    etag_set: set[str] = field(default_factory=set)
    secret_etags: dict[ConfigKey, str] = field(default_factory=dict)
    redacted: dict[ConfigKey, int] = field(default_factory=dict)

    def identity(self, key: ConfigKey) -> str | None:
        """What says whether a config changed: its plaintext variant's ETag, if it has one."""
        return self.secret_etags.get(key) or self.etags.get(key)


class CompileService:
    """Compiles commits of one mirror and answers questions about the revisions it compiled."""

    def __init__(self, mirror_path: str | Path, keyring: Keyring | None = None) -> None:
        self.mirror_path = str(mirror_path)
        # SOPS files are decrypted with these age keys; without any, one fails its compile.
        self.reading = SecretReading(keyring)
        self.cache = CompileCache()
        self.served: str | None = None
        self._repo: Any = None
        self._trees: Any = None
        self._kept: OrderedDict[str, _Compiled] = OrderedDict()
        self._refused: OrderedDict[str, Refused] = OrderedDict()

    # -- reading commits ----------------------------------------------------------------

    def fileset(self, sha: str) -> FileSet:
        """The config files of a commit of the mirror."""
        import pygit2

        from gitconf.git.read import TreeCache, fileset_from_commit

        for attempt in (1, 2):
            if self._repo is None:
                # The server may have cloned the mirror anew since: open it afresh.
                self._repo = pygit2.Repository(self.mirror_path)
                self._trees = TreeCache()
            try:
                commit = self._repo[sha].peel(pygit2.Commit)
                return fileset_from_commit(self._repo, commit, self._trees)
            except (KeyError, ValueError, pygit2.GitError, OSError) as exc:
                self._repo = None
                if attempt == 2:
                    raise UsageError(
                        f"cannot read commit {sha[:12]} from the mirror: {exc}"
                    ) from exc
        raise AssertionError("unreachable")

    # -- requests -----------------------------------------------------------------------

    def compile(
        self, sha: str, base: str | None, started: Callable[[Started], None] | None = None
    ) -> Built | Refused:
        """Compile the commit with the incremental cache; the bodies base lacks are sent."""
        began = time.perf_counter()
        if base is not None and base not in self._kept and base != sha:
            # After a restart: the served revision first, so this compile is incremental and
            # sends only the bodies the server lacks.
            self.adopt(base)
        files = self.fileset(sha)
        if started is not None:
            started(Started(sha, largest_files(files)))
        try:
            with collector_paused():
                result = compile_fileset(files, self.cache, self.reading)
        except BaseException:
            # It may hold half of what the failed compile did.
            self.cache = CompileCache()
            raise
        if result.revision is None:
            return Refused(sha, result.problems)
        reference = self._kept.get(base) if base is not None else None
        compiled, bodies, secret_bodies = self._render(sha, result.revision, reference)
        changed = _changed(reference, compiled) if reference is not None else {}
        self._keep(compiled)
        self.served = sha
        base = reference.sha if reference is not None else None
        return _built(compiled, bodies, secret_bodies, base, changed, began)

    def revision(
        self, sha: str, started: Callable[[Started], None] | None = None
    ) -> Built | Refused:
        """Every body of a revision (one a request names by ref), or why it is invalid."""
        began = time.perf_counter()
        found = self._compiled(sha, started)
        if isinstance(found, Refused):
            return found
        bodies, secret_bodies = _all_bodies(found)
        return _built(found, bodies, secret_bodies, None, {}, began)

    def adopt(self, sha: str) -> Adopted | Refused:
        """The server serves sha now: hold its compiled revision (compiling it into the head's
        cache if need be, as after a restart) and diff later compiles from it. Its ETags, and
        its plaintext variants (which the server does not persist)."""
        hit = self._kept.get(sha)
        if hit is None:
            with collector_paused():
                result = compile_fileset(self.fileset(sha), self.cache, self.reading)
            if result.revision is None:
                return Refused(sha, result.problems)
            hit, _, _ = self._render(sha, result.revision, None)
        self.served = sha
        self._keep(hit)
        _, secret_bodies = _all_bodies(hit, public=False)
        return Adopted(dict(hit.etags), dict(hit.secret_etags), secret_bodies, dict(hit.redacted))

    def explain(self, sha: str, env: str, service: str) -> bytes | None:
        """The provenance of every leaf of one config, as the JSON the API serves."""
        found = self._compiled(sha)
        if isinstance(found, Refused):
            return None
        config = found.revision.configs.get((env, service))
        if config is None:
            return None
        return to_json(
            {
                "environment": env,
                "service": service,
                "revision": sha,
                "layers": list(config.layers),
                "leaves": explain_config(config, secrets=found.revision.secrets),
            }
        )

    def base(self, sha: str, service: str) -> BaseConfig | None:
        """The base layers of one service of a valid revision merged alone (None: the revision
        is invalid, or has no such service)."""
        found = self._compiled(sha)
        if isinstance(found, Refused) or service not in found.revision.services:
            return None
        merged = merge_base(self.fileset(sha), service, self.cache, self.reading)
        if merged.tree is None:
            return BaseConfig(merged.layers, b"{}", None, 0, {})
        origins = {format_path(path): str(leaf.source) for path, leaf in iter_leaves(merged.tree)}
        hidden = count_secrets(merged.tree, merged.secrets) if merged.secrets else 0
        if not hidden:
            return BaseConfig(merged.layers, to_json(to_plain(merged.tree)), None, 0, origins)
        public = to_json(redacted(merged.tree, merged.secrets)[0])
        return BaseConfig(merged.layers, public, to_json(to_plain(merged.tree)), hidden, origins)

    def diff(self, old: str, new: str) -> list[ConfigChange] | Refused:
        """Effective changes from revision old to revision new, for every config."""
        before = self._compiled(old)
        if isinstance(before, Refused):
            return before
        after = self._compiled(new)
        if isinstance(after, Refused):
            return after
        differ = {
            k
            for k in before.etags.keys() | after.etags.keys()
            if before.identity(k) != after.identity(k)
        }
        changes = diff_configs(
            {k: before.revision.configs[k].value for k in differ if k in before.etags},
            {k: after.revision.configs[k].value for k in differ if k in after.etags},
            [*after.revision.environments, *before.revision.environments],
        )
        return mask_secrets(changes, secret_keys(before.revision), secret_keys(after.revision))

    def changes(
        self, old: str, new: str
    ) -> (
        tuple[dict[ConfigKey, str], dict[ConfigKey, str], dict[ConfigKey, tuple[str, ...]]]
        | Refused
    ):
        """The ETags and identities of revision old, and the changed keys of every config
        that differs between the two revisions."""
        before = self._compiled(old)
        if isinstance(before, Refused):
            return before
        after = self._compiled(new)
        if isinstance(after, Refused):
            return after
        ids = {key: before.identity(key) or "" for key in before.etags}
        return dict(before.etags), ids, _changed(before, after)

    def change(self, sha: str, edits: tuple[Edit, ...]) -> ChangeApplied | ChangeRefused:
        """Apply edits to commit sha, compile the result like a pushed commit, and diff it
        from sha (the change API's work: the server only commits what this found valid)."""
        before = self._compiled(sha)
        if isinstance(before, Refused):
            return ChangeRefused(
                BaseInvalid.code,
                BaseInvalid.status,
                f"the branch head {sha[:12]} does not compile: {len(before.problems)} "
                "problem(s); fix them first",
                {},
                before.problems,
            )
        try:
            with collector_paused():
                result = apply_change(
                    self.fileset(sha),
                    edits,
                    before=before.revision,
                    cache=self.cache.fork(),
                    secrets=self.reading,
                )
        except ChangeError as exc:
            fields = {k: v for k, v in (("layer", exc.layer), ("key", exc.key)) if v}
            if exc.source is not None:
                fields["source"] = str(exc.source)
            return ChangeRefused(exc.code, exc.status, exc.render(), fields, list(exc.problems))
        # diff_revisions masks secrets: a change's diff never holds a plaintext secret.
        return ChangeApplied(sha, result.edited, result.problems, result.diff, result.reach)

    # -- the revisions held -------------------------------------------------------------

    def _compiled(
        self, sha: str, started: Callable[[Started], None] | None = None
    ) -> _Compiled | Refused:
        """A revision compiled before, or compiled now without disturbing the head's cache."""
        hit = self._kept.get(sha)
        if hit is not None:
            self._kept.move_to_end(sha)
            return hit
        refused = self._refused.get(sha)
        if refused is not None:
            return refused
        files = self.fileset(sha)
        if started is not None:
            started(Started(sha, largest_files(files)))
        with collector_paused():
            # A fork shares what the commits have in common and leaves the head's cache as
            # the next poll needs it.
            result = compile_fileset(files, self.cache.fork(), self.reading)
        if result.revision is None:
            refused = Refused(sha, result.problems)
            self._refused[sha] = refused
            while len(self._refused) > KEEP:
                self._refused.popitem(last=False)
            return refused
        compiled, _, _ = self._render(sha, result.revision, self._kept.get(self.served or ""))
        self._keep(compiled)
        return compiled

    def _render(
        self,
        sha: str,
        revision: CompiledRevision,
        reference: _Compiled | None,
    ) -> tuple[_Compiled, dict[str, bytes], dict[str, bytes]]:
        """Every config's ETags; the bodies whose ETag reference lacks (without secrets, and
        the plaintext variants).

        A config whose Config is the very object of reference's (the cache hands back the
        same object when its inputs are unchanged) keeps reference's ETags unencoded.
        """
        etags: dict[ConfigKey, str] = {}
        secret_etags: dict[ConfigKey, str] = {}
        redacted_counts: dict[ConfigKey, int] = {}
        bodies: dict[str, bytes] = {}
        secret_bodies: dict[str, bytes] = {}
        before = reference.revision.configs if reference is not None else {}
        known = reference.etag_set if reference is not None else set()
        known_secret = set(reference.secret_etags.values()) if reference is not None else set()
        for key, config in revision.configs.items():
            if reference is not None and before.get(key) is config:
                etags[key] = reference.etags[key]
                if key in reference.secret_etags:
                    secret_etags[key] = reference.secret_etags[key]
                    redacted_counts[key] = reference.redacted[key]
                continue
            hidden = count_secrets(config.tree, revision.secrets) if revision.secrets else 0
            if hidden:
                plain = to_json(config.value)
                secret_etag = etag_of(plain)
                secret_etags[key] = secret_etag
                redacted_counts[key] = hidden
                if secret_etag not in known_secret:
                    secret_bodies[secret_etag] = plain
                data = to_json(redacted(config.tree, revision.secrets)[0])
            else:
                data = to_json(config.value)
            etag = etag_of(data)
            etags[key] = etag
            if etag not in known:
                bodies[etag] = data
        compiled = _Compiled(
            sha, revision, etags, set(etags.values()), secret_etags, redacted_counts
        )
        return compiled, bodies, secret_bodies

    def _keep(self, compiled: _Compiled) -> None:
        self._kept[compiled.sha] = compiled
        self._kept.move_to_end(compiled.sha)
        while len(self._kept) > KEEP:
            oldest = next(iter(self._kept))
            if oldest == self.served and len(self._kept) > 1:
                self._kept.move_to_end(oldest)  # the served revision stays
                oldest = next(iter(self._kept))
            del self._kept[oldest]


def _built(
    compiled: _Compiled,
    bodies: dict[str, bytes],
    secret_bodies: dict[str, bytes],
    base: str | None,
    changed: dict[ConfigKey, tuple[str, ...]],
    began: float,
) -> Built:
    revision = compiled.revision
    return Built(
        sha=compiled.sha,
        environments=revision.environments,
        services=revision.services,
        subscriptions=subscription_docs(revision.manifest),
        etags=compiled.etags,
        bodies=bodies,
        base=base,
        changed=changed,
        seconds=time.perf_counter() - began,
        secret_etags=compiled.secret_etags,
        secret_bodies=secret_bodies,
        redacted=compiled.redacted,
        rollouts=revision.manifest.rollouts,
    )


def _all_bodies(
    compiled: _Compiled, *, public: bool = True
) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Every body of a revision (without secrets, unless public is False), and every plaintext
    variant."""
    bodies: dict[str, bytes] = {}
    secret_bodies: dict[str, bytes] = {}
    secrets = compiled.revision.secrets
    for key, config in compiled.revision.configs.items():
        if key in compiled.secret_etags:
            secret_bodies.setdefault(compiled.secret_etags[key], to_json(config.value))
            if public and compiled.etags[key] not in bodies:
                bodies[compiled.etags[key]] = to_json(redacted(config.tree, secrets)[0])
        elif public and compiled.etags[key] not in bodies:
            bodies[compiled.etags[key]] = to_json(config.value)
    return bodies, secret_bodies


def _changed(before: _Compiled, after: _Compiled) -> dict[ConfigKey, tuple[str, ...]]:
    """Changed key paths of each config whose ETag differs (added and removed ones too)."""
    out: dict[ConfigKey, tuple[str, ...]] = {}
    old, new = before.revision.configs, after.revision.configs
    differ = [
        key
        for key in before.etags.keys() | after.etags.keys()
        if before.identity(key) != after.identity(key)
    ]
    for key in sorted(differ):
        out[key] = tuple(
            change.key for change in diff_values(_value(old.get(key)), _value(new.get(key)))
        )
    return out


def _value(config: Config | None) -> Any:
    return config.value if config is not None else None


def largest_files(files: FileSet, count: int = LARGEST) -> list[tuple[str, int]]:
    """The largest files of a file set, largest first."""
    sizes = sorted(((len(data), path) for path, data in files.files.items()), reverse=True)
    return [(path, size) for size, path in sizes[:count]]
