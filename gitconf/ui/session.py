"""The dashboard's session cookie: signed, HttpOnly, SameSite=Strict, expiring; and its CSRF token.

The cookie holds a CSRF token and, once logged in, the token's name and its binding (an HMAC
of the token under the dashboard's key, gitconf.server.auth): never the token. Rotating,
removing or expiring the token ends every session made with it. The signing key is random,
made once and kept in the state dir (mode 0600).
"""

from __future__ import annotations

import hmac
import os
import secrets
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from itsdangerous import BadSignature, TimestampSigner, URLSafeTimedSerializer

__all__ = ["COOKIE", "LIFETIME", "Session", "SessionCodec", "load_key"]

COOKIE = "gitconf_session"
LIFETIME = 12 * 3600  # seconds a session lasts after login
KEY_FILE = "ui-session.key"


class Session(NamedTuple):
    """What the cookie says: the CSRF token and, once logged in, who."""

    csrf: str
    name: str | None = None
    binding: str | None = None

    @classmethod
    def fresh(cls, name: str | None = None, binding: str | None = None) -> Session:
        """A session with a new CSRF token."""
        return cls(secrets.token_urlsafe(32), name, binding)

    def csrf_matches(self, sent: str | None) -> bool:
        """Whether a form's CSRF field is this session's token (constant time)."""
        return bool(sent) and hmac.compare_digest(self.csrf.encode(), (sent or "").encode())


def load_key(state_dir: Path) -> bytes:
    """The dashboard's signing key: read from the state dir, or made there (0600) the first time."""
    path = state_dir / KEY_FILE
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
        # A torn first write: make the key again (sessions signed with it cannot exist).
        path.unlink()
        return load_key(state_dir)
    key = secrets.token_bytes(32)
    try:
        os.write(fd, key)
        os.fsync(fd)
    finally:
        os.close(fd)
    return key


class SessionCodec:
    """Signs sessions into cookie values and reads them back, refusing old or forged ones."""

    def __init__(
        self, key: bytes, lifetime: int = LIFETIME, clock: Callable[[], float] = time.time
    ) -> None:
        self.key = key
        self.lifetime = lifetime

        class Signer(TimestampSigner):
            def get_timestamp(self) -> int:
                return int(clock())

        self._serializer = URLSafeTimedSerializer(key, salt="gitconf-ui-session", signer=Signer)

    def dumps(self, session: Session) -> str:
        """The cookie value of a session."""
        return self._serializer.dumps(list(session))

    def loads(self, value: str | None) -> Session | None:
        """The session of a cookie value; None if absent, forged, malformed or past lifetime."""
        if not value:
            return None
        try:
            data = self._serializer.loads(value, max_age=self.lifetime)
        except BadSignature:  # also SignatureExpired
            return None
        if not isinstance(data, list) or len(data) != 3:
            return None
        csrf, name, binding = data
        if not isinstance(csrf, str) or not csrf:
            return None
        if (name is None) != (binding is None):
            return None
        if name is not None and not (isinstance(name, str) and isinstance(binding, str)):
            return None
        return Session(csrf, name, binding)
