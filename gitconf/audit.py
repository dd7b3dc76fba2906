"""The audit trail: every write, who made it, and how it ended.

`Audit.record(actor, action, target, result, ...)` is the one hook every feature calls: a
change, a pin, a rollout action, a subscription created or deleted, a push hook accepted or
refused, a token refused. Each record is a JSON line on the `gitconf.audit` logger at once,
and a row of the store's append-only audit table (gitconf.store.audit), written by a thread
so that a slow or unreachable store holds up no request (rows wait in memory, bounded, and
are written when it answers). Rows older than `audit.keep_days` are removed once an hour.

Actors are token names, never tokens; a detail's values under keys that name a secret are
replaced before anything is logged or stored.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.exc import DataError

from gitconf.clock import iso, utcnow
from gitconf.store.audit import AuditPage, AuditRow, AuditTable

__all__ = ["Audit", "new_request_id", "safe_url", "valid_request_id"]

log = logging.getLogger(__name__)
trail = logging.getLogger("gitconf.audit")

MAX_PENDING = 10_000  # rows held while the store is down; past this the oldest are dropped
PRUNE_EVERY = 3600.0
RETRY_MAX = 30.0
_SECRET_KEY = re.compile(r"secret|token|password|passwd|authorization|credential|private", re.I)
_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def new_request_id() -> str:
    """A fresh request id."""
    return "req_" + secrets.token_hex(8)


def valid_request_id(value: str | None) -> str | None:
    """A caller's X-Request-Id if it is a plain token of at most 64 characters (else None: a
    fresh one is made, so that nothing a caller sends lands in the log unchecked)."""
    return value if value is not None and _REQUEST_ID.fullmatch(value) else None


def safe_url(url: str) -> str:
    """A URL without what may hold a credential (user info, query, fragment)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
MAX_TEXT = 1000  # characters of one string in a row (a request path, a reason)


def clean(text: str) -> str:
    """A string as a row holds it: control characters (NUL, which PostgreSQL's text refuses,
    escapes) as U+FFFD, and at most MAX_TEXT characters: what a caller sent stays readable
    and can never stop the writer."""
    text = _CONTROL.sub("\ufffd", text)
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"


def _scrub(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {
            clean(str(k)): "[redacted]" if _SECRET_KEY.search(str(k)) else _scrub(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return clean(value)
    return value


class Audit:
    """Records audited actions: a log line now, a store row soon."""

    def __init__(self, table: AuditTable, *, keep_days: float = 400, replica: str = "") -> None:
        self.table = table
        self.keep = dt.timedelta(days=keep_days)
        self.replica = replica
        self.error: str | None = None
        self.dropped = 0
        self.recorded = 0
        self._pending: deque[AuditRow] = deque()
        self._cond = threading.Condition()
        self._busy = False
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._pruned_at: float | None = None

    def record(
        self,
        actor: str,
        action: str,
        target: str,
        result: str,
        *,
        request_id: str | None = None,
        detail: Mapping[str, Any] | None = None,
    ) -> AuditRow:
        """Record one action (the hook every write calls); the row recorded."""
        row = AuditRow(
            utcnow(),
            clean(actor or "-"),
            clean(action),
            clean(target),
            clean(result),
            clean(request_id) if request_id else None,
            self.replica or None,
            _scrub(detail) if detail else None,
        )
        trail.info("%s", json.dumps(row.doc(), separators=(",", ":"), default=str))
        self.recorded += 1
        with self._cond:
            if len(self._pending) >= MAX_PENDING:
                self._pending.popleft()
                self.dropped += 1
            self._pending.append(row)
            self._cond.notify_all()
        if self._thread is None:
            self._write()  # no writer thread (a test, a CLI): write in place
        return row

    def page(self, **query: Any) -> AuditPage:
        """A page of the table (what GET /v1/audit answers), after writing what is pending."""
        self.flush(5.0)
        return self.table.page(**query)

    # -- the writer ----------------------------------------------------------------------

    def start(self) -> None:
        """Write rows in a thread from now on."""
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(target=self._run, name="gitconf-audit", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        """Write what is pending (one try), then end the thread."""
        thread, self._thread = self._thread, None
        if thread is not None:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            thread.join(30)
        self._write()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until the rows recorded so far are written (or failed); False on timeout."""
        if self._thread is None:
            return self._write()
        with self._cond:
            return self._cond.wait_for(lambda: not self._pending and not self._busy, timeout)

    def _run(self) -> None:
        delay = 0.0
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._pending or self._stopping, PRUNE_EVERY)
                if self._stopping:
                    return
            if self._write():
                delay = 0.0
                self._prune()
            else:
                delay = min(delay * 2, RETRY_MAX) if delay else 0.5
                with self._cond:
                    self._cond.wait_for(lambda: self._stopping, delay)

    def _write(self) -> bool:
        with self._cond:
            batch = list(self._pending)
            self._pending.clear()
            self._busy = True
        try:
            if batch:
                self._append(batch)
            self.error = None
            return True
        except Exception as exc:
            self.error = f"writing {len(batch)} audit row(s): {str(exc).splitlines()[0]}"
            log.error("%s; keeping them to write again", self.error)
            with self._cond:
                room = MAX_PENDING - len(self._pending)
                kept = batch[-room:] if room > 0 else []
                self.dropped += len(batch) - len(kept)
                self._pending.extendleft(reversed(kept))
            return False
        finally:
            with self._cond:
                self._busy = False
                self._cond.notify_all()

    def _append(self, batch: list[AuditRow]) -> None:
        """Write batch; if the store refuses it for its data (not for being down), row by row,
        dropping (and logging) only the rows it refuses, so one cannot hold back the rest."""
        try:
            self.table.append(batch)
        except DataError:
            for row in batch:
                try:
                    self.table.append([row])
                except DataError as exc:
                    self.dropped += 1
                    log.error(
                        "an audit row the store refuses is dropped (%s): %s",
                        str(exc).splitlines()[0],
                        json.dumps(row.doc(), default=str),
                    )

    def _prune(self) -> None:
        if self._pruned_at is not None and time.monotonic() - self._pruned_at < PRUNE_EVERY:
            return
        self._pruned_at = time.monotonic()
        try:
            removed = self.table.prune(utcnow() - self.keep)
        except Exception as exc:
            log.warning("cannot remove old audit rows: %s", exc)
            return
        if removed:
            log.info("removed %d audit row(s) older than %s days", removed, self.keep.days)

    def status(self) -> dict[str, Any]:
        """The audit section of /v1/status."""
        with self._cond:
            pending = len(self._pending)
        return {
            "recorded": self.recorded,
            "pending": pending,
            "dropped": self.dropped,
            "keep_days": self.keep.total_seconds() / 86400,
            "error": self.error,
            "checked_at": iso(utcnow()),
        }
