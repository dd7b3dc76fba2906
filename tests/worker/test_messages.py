"""The worker's answers cross a pipe pickled: they come back whole, problems still rendering.

Every server test sends them through a real worker process; this checks the messages alone.
"""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import pytest

from gitconf.errors import Problem, Source
from gitconf.testing import commit_all
from gitconf.worker import messages
from gitconf.worker.messages import Built, Refused
from gitconf.worker.service import CompileService


def crossed(message: Any) -> Any:
    """message as the other end of the pipe receives it."""
    return pickle.loads(pickle.dumps(message))


def test_a_built_revision_arrives_whole(repo: Path) -> None:
    service = CompileService(repo / ".git")
    built = service.revision(commit_all(repo, "again"))
    assert isinstance(built, Built)
    assert crossed(built) == built
    assert crossed(built).bodies[built.etags[("production", "payments")]].startswith(b"{")


def test_a_refusal_arrives_with_problems_that_still_render(repo: Path) -> None:
    sha = commit_all(repo, "break", {"base/payments.yaml": "db: {port: [\n"})
    refused = CompileService(repo / ".git").revision(sha)
    assert isinstance(refused, Refused)
    back = crossed(refused)
    assert back == refused and back.limit is False
    assert [p.render() for p in back.problems] == [p.render() for p in refused.problems]
    assert back.problems[0].source.path == "base/payments.yaml"


@pytest.mark.parametrize(
    "message",
    [
        messages.Compile("a" * 40, None),
        messages.Revision("a" * 40),
        messages.Adopt("a" * 40),
        messages.Explain("a" * 40, "production", "payments"),
        messages.DiffBetween("a" * 40, "b" * 40),
        messages.BaseLayers("a" * 40, "payments"),
        messages.BaseConfig(("base/_all.yaml",), b'{"a":1}', None, 0, {"a": "base/_all.yaml:1:4"}),
        messages.ChangesBetween("a" * 40, "b" * 40),
        messages.Started("a" * 40, [("base/big.yaml", 1 << 20)]),
        messages.Refused("a" * 40, [Problem(Source("f.yaml", 2, 3), "m", "k", "h")], limit=True),
        messages.Failed("the mirror is unreadable"),
    ],
    ids=lambda m: type(m).__name__,
)
def test_every_request_and_answer_survives_the_pipe(message: Any) -> None:
    assert crossed(message) == message
    assert type(crossed(message)) is type(message)
