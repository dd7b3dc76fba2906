"""A whole change applied to a FileSet: each key in its layer file, then the real compile.

This is what `gitconf set` and `POST /v1/changes` share: it reads nothing and writes nothing;
the caller writes the files (or commits them) only when `problems` is empty.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from gitconf.changes.edit import edit_layer, is_encrypted, parse_key
from gitconf.changes.errors import BaseInvalid, EncryptedLayer, UnknownConfig
from gitconf.changes.layers import choose_layer
from gitconf.core.compile import NO_KEYS, CompileCache, SecretReading, compile_fileset
from gitconf.core.diff import ConfigChange, diff_revisions
from gitconf.core.layers import Layout, discover
from gitconf.core.model import CompiledRevision, FileSet
from gitconf.core.parse import parse_yaml
from gitconf.errors import Problem

__all__ = ["ChangeResult", "Edit", "FileEdit", "apply_change", "default_message"]


@dataclass(frozen=True)
class Edit:
    """One (environment, service)'s part of a change: keys to set and unset, and maybe a layer."""

    environment: str
    service: str
    set: Mapping[str, Any] = field(default_factory=dict)
    unset: Sequence[str] = ()
    layer: str | None = None


class FileEdit(NamedTuple):
    """One file the change writes: its bytes before (None: it is created) and after."""

    path: str
    before: bytes | None
    after: bytes


class ChangeResult(NamedTuple):
    """The files after the change, what it changed, and what the compile says of it.

    `problems` empty: the change is valid, `revision` is its compiled revision and `diff` the
    effective changes per (environment, service) from `before` (core.diff.to_doc gives the
    /v1/diff format). Otherwise `revision` is None and `diff` empty: write nothing.
    `reach` is every (environment, service) whose layers include an edited file: what the
    change may change, now or later (a key it sets that another layer overrides today shows
    once that override goes), whether or not it compiles.
    """

    files: FileSet
    edited: tuple[FileEdit, ...]
    problems: list[Problem]
    revision: CompiledRevision | None
    diff: list[ConfigChange]
    before: CompiledRevision
    reach: tuple[tuple[str, str], ...] = ()


def _refuse_encrypted_targets(files: FileSet, edits: Sequence[Edit]) -> None:
    """EncryptedLayer before anything is compiled, for an edit whose named layer, or whose
    environment's own file, is SOPS-encrypted (its plaintext may not even be readable here)."""
    for edit in edits:
        # A named layer is the only file the edit writes; else the environment's own file
        # is where its keys land unless another of the environment's files sets them.
        if edit.layer:
            targets = [edit.layer.removeprefix("./")]
        else:
            targets = [f"environments/{edit.environment}/{edit.service}.yaml"]
        for path in targets:
            data = files.files.get(path)
            if data is None or b"sops" not in data:
                continue
            tree, _ = parse_yaml(path, data)
            if is_encrypted(tree):
                raise EncryptedLayer(
                    "the file is encrypted with SOPS; gitconf never edits an encrypted file",
                    layer=path,
                    hint="edit it with `sops`, or choose another layer",
                )
            break


def apply_change(
    files: FileSet,
    edits: Sequence[Edit],
    *,
    before: CompiledRevision | None = None,
    cache: CompileCache | None = None,
    secrets: SecretReading = NO_KEYS,
) -> ChangeResult:
    """Apply every edit to files, compile the result and diff it against before.

    before: the compiled revision of files, if the caller has it (else it is compiled here).
    cache: a CompileCache for both compiles (the server's; the cache only speeds them up).
    Raises UnknownConfig, NotALayer and the edit's errors (changes/errors.py), and
    BaseInvalid when files do not compile before the change. secrets says how SOPS files are
    read (the server's keys; key-less for `gitconf set` without one).
    """
    _refuse_encrypted_targets(files, edits)
    if before is None:
        result = compile_fileset(files, cache, secrets)
        if result.revision is None:
            raise BaseInvalid(
                f"the repository has {len(result.problems)} problem(s) before the change",
                hint="fix them first: `gitconf validate` lists them",
                problems=tuple(result.problems),
            )
        before = result.revision
    layout, _ = discover(list(files.files))
    planned: dict[str, tuple[list[tuple[str, Any]], list[str]]] = {}
    for edit in edits:
        _check_config(before, edit)
        for key, value in edit.set.items():
            where = choose_layer(
                before, layout, edit.environment, edit.service, parse_key(key), edit.layer
            )
            planned.setdefault(where, ([], []))[0].append((key, value))
        for key in edit.unset:
            where = choose_layer(
                before, layout, edit.environment, edit.service, parse_key(key), edit.layer
            )
            planned.setdefault(where, ([], []))[1].append(key)
    new_files = dict(files.files)
    edited = []
    for path in sorted(planned):
        sets, unsets = planned[path]
        old = files.files.get(path)
        new = edit_layer(path, old, sets, unsets)
        if new != old:
            new_files[path] = new
            edited.append(FileEdit(path, old, new))
    changed = {e.path for e in edited}
    after = FileSet(
        new_files,
        {p: oid for p, oid in files.oids.items() if p not in changed},
        files.irregular,
        label=files.label,
    )
    if not edited:
        return ChangeResult(after, (), [], before, [], before)
    # The layout is read again only when the change created a file (a new layer).
    after_layout = (
        layout if new_files.keys() == files.files.keys() else discover(list(new_files))[0]
    )
    reach = _reach(before, after_layout, changed)
    result = compile_fileset(after, cache, secrets)
    if result.revision is None:
        return ChangeResult(after, tuple(edited), result.problems, None, [], before, reach)
    diff = diff_revisions(before, result.revision)
    return ChangeResult(after, tuple(edited), [], result.revision, diff, before, reach)


def _reach(
    before: CompiledRevision, layout: Layout, changed: set[str]
) -> tuple[tuple[str, str], ...]:
    """Every (environment, service) whose layer stack, after the change, holds a changed file."""
    return tuple(
        (env, service)
        for env in before.environments
        for service in before.services
        if changed.intersection(layout.layers(before.manifest, env, service))
    )


def _check_config(revision: CompiledRevision, edit: Edit) -> None:
    if edit.environment not in revision.environments:
        raise UnknownConfig(
            f"unknown environment {edit.environment!r}",
            hint=f"known: {', '.join(revision.environments)}",
        )
    if edit.service not in revision.services:
        raise UnknownConfig(
            f"unknown service {edit.service!r}", hint=f"known: {', '.join(revision.services)}"
        )


def default_message(edits: Sequence[Edit]) -> str:
    """A commit message naming the keys: `set production-eu/payments db.pool.max=60`."""
    parts = []
    for edit in edits:
        words = []
        if edit.set:
            shown = ", ".join(
                f"{k}={json.dumps(v, ensure_ascii=False)}" for k, v in edit.set.items()
            )
            words.append(f"set {edit.environment}/{edit.service} {shown}")
        if edit.unset:
            prefix = "unset" if words else f"unset {edit.environment}/{edit.service}"
            words.append(f"{prefix} {', '.join(edit.unset)}")
        parts.append("; ".join(words))
    return "; ".join(p for p in parts if p) or "gitconf change"
