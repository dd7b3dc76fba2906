"""Problems as users read them: one line each, in file order, and as JSON for /v1/status."""

from __future__ import annotations

import pytest

from gitconf.errors import Problem, Source, problem_doc, sorted_problems

AT = Source("environments/production/payments.yaml", 12, 9)


def test_a_source_is_path_line_col() -> None:
    assert str(AT) == "environments/production/payments.yaml:12:9"
    assert str(Source("gitconf.yaml")) == "gitconf.yaml:1:1"


@pytest.mark.parametrize(
    ("problem", "line"),
    [
        (
            Problem(
                AT, "'abc' is not of type 'integer'", "db.port", "schema schemas/p.schema.json"
            ),
            "environments/production/payments.yaml:12:9: db.port: "
            "'abc' is not of type 'integer' (schema schemas/p.schema.json)",
        ),
        (Problem(AT, "duplicate key"), "environments/production/payments.yaml:12:9: duplicate key"),
        (
            Problem(AT, "bad", hint="fix it"),
            "environments/production/payments.yaml:12:9: bad (fix it)",
        ),
        (Problem(None, "no manifest", "k"), "k: no manifest"),
        (Problem(None, "the store is down"), "the store is down"),
    ],
    ids=["every-field", "no-key-no-hint", "hint-only", "no-source", "message-only"],
)
def test_a_problem_renders_as_one_line(problem: Problem, line: str) -> None:
    assert problem.render() == line


def test_problems_sort_by_place_then_message_and_lose_duplicates() -> None:
    problems = [
        Problem(Source("base/b.yaml", 2, 1), "second"),
        Problem(Source("base/b.yaml", 10, 1), "later line"),
        Problem(Source("base/a.yaml", 9, 9), "other file first"),
        Problem(Source("base/b.yaml", 2, 1), "first"),
        Problem(None, "nowhere"),
        Problem(Source("base/b.yaml", 2, 1), "second"),
    ]
    assert [p.render() for p in sorted_problems(problems)] == [
        "nowhere",
        "base/a.yaml:9:9: other file first",
        "base/b.yaml:2:1: first",
        "base/b.yaml:2:1: second",
        # Lines sort as numbers, not as text: 10 after 2.
        "base/b.yaml:10:1: later line",
    ]


def test_a_problem_as_json_keeps_its_fields_and_its_line() -> None:
    problem = Problem(AT, "'abc' is not of type 'integer'", "db.port", "see the schema")
    assert problem_doc(problem) == {
        "path": "environments/production/payments.yaml",
        "line": 12,
        "column": 9,
        "key": "db.port",
        "message": "'abc' is not of type 'integer'",
        "hint": "see the schema",
        "text": problem.render(),
    }
    assert problem_doc(Problem(None, "the repository has no gitconf.yaml manifest")) == {
        "path": None,
        "line": None,
        "column": None,
        "key": None,
        "message": "the repository has no gitconf.yaml manifest",
        "hint": None,
        "text": "the repository has no gitconf.yaml manifest",
    }
