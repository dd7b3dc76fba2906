"""Error responses: {"error": {"code", "message", ...}} with its status and headers.

That Flask and the fast path answer an error with the same bytes is in test_fast.py.
"""

from __future__ import annotations

import json

from gitconf.server.errors import ApiError, error_body, error_parts, internal_error


def test_the_body_is_one_json_line() -> None:
    body = error_body("unknown_service", "unknown service 'pay'; known: payments, search")
    assert body == (
        b'{"error": {"code": "unknown_service", '
        b'"message": "unknown service \'pay\'; known: payments, search"}}\n'
    )


def test_extra_fields_go_beside_the_code_and_message() -> None:
    doc = json.loads(error_body("invalid_revision", "abc is not valid", problems=["p:1:1: x"]))
    assert doc == {
        "error": {
            "code": "invalid_revision",
            "message": "abc is not valid",
            "problems": ["p:1:1: x"],
        }
    }


def test_the_parts_of_an_error_response() -> None:
    error = ApiError(
        503, "not_ready", "no valid revision has been loaded yet", headers={"Retry-After": "1"}
    )
    status, headers, body = error_parts(error)
    assert status == 503
    assert headers == [
        ("Retry-After", "1"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(body))),
    ]
    assert json.loads(body) == {
        "error": {"code": "not_ready", "message": "no valid revision has been loaded yet"}
    }


def test_a_message_with_non_ascii_is_counted_in_bytes() -> None:
    _, headers, body = error_parts(ApiError(404, "unknown_environment", "unknown 'zürich'"))
    assert dict(headers)["Content-Length"] == str(len(body))
    assert json.loads(body)["error"]["message"] == "unknown 'zürich'"


def test_an_unexpected_error_tells_the_caller_nothing_of_it() -> None:
    error = internal_error()
    assert (error.status, error.code, error.headers) == (500, "internal", {})
    assert error.message == "an unexpected error occurred; see the server log"
