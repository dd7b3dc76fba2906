"""Error types: one root for failures, and Problem for what is wrong in a config repository."""

from __future__ import annotations

from typing import Any, NamedTuple


class Source(NamedTuple):
    """Where something was written: a path in the config repository, 1-based line and column."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


class Problem(NamedTuple):
    """One thing wrong with a commit: where, which key, what, and how to fix it."""

    source: Source | None
    message: str
    key_path: str = ""
    hint: str = ""

    def render(self) -> str:
        """The problem as one line: `path:line:col: key.path: message (hint)`."""
        where = f"{self.source}: " if self.source else ""
        key = f"{self.key_path}: " if self.key_path else ""
        hint = f" ({self.hint})" if self.hint else ""
        return f"{where}{key}{self.message}{hint}"

    def sort_key(self) -> tuple[str, int, int, str]:
        """Order problems by path, line, column, then message."""
        if self.source is None:
            return ("", 0, 0, self.message)
        return (self.source.path, self.source.line, self.source.col, self.message)


class GitconfError(Exception):
    """Root of gitconf's errors: something the user must fix before gitconf can go on."""


class UsageError(GitconfError):
    """A usage or access problem: bad arguments, unreadable repository, unknown ref (exit 2)."""


def sorted_problems(problems: list[Problem]) -> list[Problem]:
    """Problems sorted by place, duplicates removed."""
    return sorted(set(problems), key=Problem.sort_key)


def problem_doc(problem: Problem) -> dict[str, Any]:
    """A problem as JSON: its fields and its rendered line."""
    source = problem.source
    return {
        "path": source.path if source else None,
        "line": source.line if source else None,
        "column": source.col if source else None,
        "key": problem.key_path or None,
        "message": problem.message,
        "hint": problem.hint or None,
        "text": problem.render(),
    }
