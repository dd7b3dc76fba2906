"""The audit recorder on a real SQLite file: rows written by its thread, kept while the store
is down, secrets scrubbed, old rows removed after keep_days."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import sqlalchemy as sa

from gitconf.audit import Audit, safe_url, valid_request_id
from gitconf.clock import utcnow
from gitconf.settings import SettingsError, load_settings
from gitconf.store.audit import AuditRow, AuditTable, audit_log
from gitconf.store.db import create_schema, make_engine


@pytest.fixture
def table(tmp_path: Path) -> AuditTable:
    engine = make_engine(f"sqlite:///{tmp_path / 'gitconf.db'}")
    create_schema(engine)
    return AuditTable(engine)


def test_rows_are_written_by_the_thread_and_read_oldest_first(table: AuditTable) -> None:
    audit = Audit(table, replica="r1")
    audit.start()
    try:
        for n in range(3):
            audit.record("ops", "pin.set", f"production #{n}", "200", request_id=f"req_{n}")
        assert audit.flush(10)
    finally:
        audit.stop()
    page = table.page()
    assert [(r["target"], r["request_id"], r["replica"]) for r in page.rows] == [
        ("production #0", "req_0", "r1"),
        ("production #1", "req_1", "r1"),
        ("production #2", "req_2", "r1"),
    ]
    assert page.next_cursor is None


def test_rows_wait_in_memory_while_the_store_is_down(table: AuditTable) -> None:
    audit = Audit(table)
    with table.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_log RENAME TO audit_away"))
    audit.record("ops", "change", "staging/search", "201")
    assert audit.error is not None and "1 audit row" in audit.error
    assert audit.status()["pending"] == 1
    with table.engine.begin() as conn:
        conn.execute(sa.text("ALTER TABLE audit_away RENAME TO audit_log"))
    audit.record("ops", "change", "staging/search", "409 push_conflict")
    assert audit.error is None
    assert [r["result"] for r in table.page().rows] == ["201", "409 push_conflict"]


def test_secrets_in_a_detail_are_scrubbed_before_logging_or_storing(table: AuditTable) -> None:
    row = Audit(table).record(
        "ops",
        "subscription.create",
        "subscription s1",
        "201",
        detail={
            "secret": "whsec_x",
            "nested": {"api_token": "t", "ok": 1},
            "list": [{"password": 2}],
        },
    )
    assert row.detail == {
        "secret": "[redacted]",
        "nested": {"api_token": "[redacted]", "ok": 1},
        "list": [{"password": "[redacted]"}],
    }
    assert "whsec_x" not in str(table.page().rows)


def test_rows_older_than_keep_days_are_removed(table: AuditTable) -> None:
    now = utcnow()
    table.append(
        [
            AuditRow(now - dt.timedelta(days=31), "ops", "pin.set", "production", "200"),
            AuditRow(now - dt.timedelta(days=29), "ops", "pin.clear", "production", "200"),
        ]
    )
    audit = Audit(table, keep_days=30)
    audit._prune()
    with table.engine.connect() as conn:
        left = conn.execute(sa.select(audit_log.c.action)).scalars().all()
    assert left == ["pin.clear"]


def test_keep_days_is_a_setting_with_a_default_of_400() -> None:
    assert load_settings({"repo": "r"}, environ={}).audit_keep_days == 400
    assert (
        load_settings({"repo": "r", "audit": {"keep_days": 30}}, environ={}).audit_keep_days == 30
    )
    with pytest.raises(SettingsError, match=r"audit\.keep_days"):
        load_settings({"repo": "r", "audit": {"keep_days": 0}}, environ={})


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("https://user:pw@hooks.example/x?token=1#f", "https://hooks.example/x"),
        ("http://127.0.0.1:9/x", "http://127.0.0.1:9/x"),
    ],
)
def test_urls_lose_what_may_hold_a_credential(url: str, shown: str) -> None:
    assert safe_url(url) == shown


def test_a_request_id_is_taken_only_when_it_is_a_plain_token() -> None:
    assert valid_request_id("abc-1.2:3_x") == "abc-1.2:3_x"
    for bad in (None, "", "a b", "x" * 65, "é", "a\nb"):
        assert valid_request_id(bad) is None


def test_what_a_caller_sent_cannot_stop_the_writer_on_postgresql(pg_url: str) -> None:
    # A request path with a NUL (GET /v1/config/x%00/y, refused 401) once held back every
    # later row: PostgreSQL's text refuses NUL, and the failed batch was retried forever.
    engine = make_engine(pg_url)
    create_schema(engine)
    table = AuditTable(engine)
    audit = Audit(table)
    audit.record("-", "token.refused", "GET /v1/config/x\x00/y", "401 unauthorized",
                 detail={"message": "bad\x00\x1b[31m", "long": "z" * 5000})  # fmt: skip
    audit.record("ops", "pin.set", "production", "200")
    assert audit.flush(10) and audit.error is None
    rows = table.page().rows
    assert [r["action"] for r in rows] == ["token.refused", "pin.set"]
    assert rows[0]["target"] == "GET /v1/config/x\ufffd/y"
    assert rows[0]["detail"]["message"] == "bad\ufffd\ufffd[31m"
    assert len(rows[0]["detail"]["long"]) == 1000
    engine.dispose()


@pytest.mark.parametrize(
    ("query", "field"),
    [("limit=%C2%B2", "limit"), ("cursor=%D9%A3", "cursor"), ("actor=a%00", "actor"), ("action=" + "a" * 201, "action")],
)  # fmt: skip
def test_bad_audit_queries_are_400(tmp_path: Path, query: str, field: str) -> None:
    from gitconf.bootstrap import build
    from gitconf.testing import make_repo
    from tests.conftest import BASE_FILES

    repo = make_repo(tmp_path / "repo", dict(BASE_FILES))
    server = build(load_settings({"repo": str(repo), "state_dir": str(tmp_path / "s")}, environ={}), environ={})  # fmt: skip
    try:
        assert server.poller.run_once() == "published"
        reply = server.app.test_client().get(f"/v1/audit?{query}")
        assert reply.status_code == 400, reply.get_data(as_text=True)
        assert reply.get_json()["error"]["field"] == field
    finally:
        server.stop()


def test_since_in_another_zone_means_the_same_instant(table: AuditTable) -> None:
    audit = Audit(table)
    audit.record("ops", "pin.set", "production", "200")
    assert audit.flush(10)
    hour_ago = (utcnow() - dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=5)))
    in_an_hour = (utcnow() + dt.timedelta(hours=1)).astimezone(dt.timezone(dt.timedelta(hours=-5)))
    from gitconf.server.audit_api import _since

    assert len(table.page(since=_since(hour_ago.isoformat())).rows) == 1
    assert table.page(since=_since(in_an_hour.isoformat())).rows == []


def test_a_percent_in_the_action_filter_is_a_percent(table: AuditTable) -> None:
    audit = Audit(table)
    audit.record("ops", "pin.set", "production", "200")
    assert audit.flush(10)
    assert table.page(action="%").rows == []
    assert table.page(action="_in").rows == []
    assert len(table.page(action="pin").rows) == 1
