"""Why a change is refused: objects with fields, rendered to text at the edge.

Each class carries the `code` and HTTP `status` the change API answers with, so the CLI and
the API name the same refusal the same way.
"""

from __future__ import annotations

from gitconf.errors import GitconfError, Problem, Source

__all__ = [
    "BadKey",
    "BaseInvalid",
    "ChangeError",
    "EditRefused",
    "EncryptedLayer",
    "InvalidLayer",
    "NotALayer",
    "NotExact",
    "UnknownConfig",
]


class ChangeError(GitconfError):
    """A change gitconf will not make; nothing is written."""

    code = "bad_change"
    status = 422

    def __init__(
        self,
        message: str,
        *,
        layer: str = "",
        key: str = "",
        source: Source | None = None,
        hint: str = "",
        problems: tuple[Problem, ...] = (),
    ) -> None:
        self.message = message
        self.layer = layer
        self.key = key
        self.source = source
        self.hint = hint
        self.problems = problems
        super().__init__(self.render())

    def render(self) -> str:
        """`where: key: message (hint)`, as gitconf's problems read."""
        where = str(self.source) if self.source else self.layer
        parts = [p for p in (where, self.key) if p]
        head = ": ".join(parts)
        hint = f" ({self.hint})" if self.hint else ""
        return f"{head}: {self.message}{hint}" if head else f"{self.message}{hint}"


class BadKey(ChangeError):
    """A key path or value that is not one gitconf can write (`db..max`, a NaN)."""

    code = "bad_key"
    status = 400


class EditRefused(ChangeError):
    """An edit that does not fit the layer file: a key path that crosses a scalar, an alias
    or a merge key, an unset of a key the file does not set."""

    code = "bad_edit"
    status = 422


class InvalidLayer(ChangeError):
    """The layer file is broken before the edit (its problems are in `problems`)."""

    code = "invalid_layer"
    status = 422


class EncryptedLayer(ChangeError):
    """The layer file is SOPS-encrypted: gitconf never edits one."""

    code = "encrypted_layer"
    status = 409


class NotALayer(ChangeError):
    """`layer` names a file that is not a layer of that (environment, service)."""

    code = "bad_layer"
    status = 422


class UnknownConfig(ChangeError):
    """An environment or service the repository does not have."""

    code = "unknown_config"
    status = 404


class BaseInvalid(ChangeError):
    """The repository does not compile before the change (its problems are in `problems`)."""

    code = "base_invalid"
    status = 409


class NotExact(ChangeError):
    """gitconf could not make the edit exactly: a bug of gitconf's, reported, nothing written.

    Raised when the edited file does not read back as exactly the intended tree, or when a
    line outside the edited keys changed.
    """

    code = "edit_not_exact"
    status = 500
