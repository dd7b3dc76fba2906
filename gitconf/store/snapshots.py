"""The served revision on disk, so a restart serves at once: bodies by digest, a small index.

A SQLite file of its own in the state dir (`served.db`), written only by the server's
persist thread. Each body is stored once under the digest of its bytes; a revision is an
index of (environment, service, digest) with a digest of its own; the served revision is a
pointer. Persisting a revision writes the bodies that are new and its index in one
transaction, so after a one-file commit it writes a few rows, and a crash leaves the old
revision or the new one, whole. Loading checks every digest: a body or index altered on disk
is refused with a message, never served.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple

__all__ = ["DamagedSnapshot", "PersistedRevision", "SnapshotStore"]

FORMAT = 2
# Published revisions whose index is kept (a pin or a restart may want one back).
KEEP_REVISIONS = 8
_CHUNK = 500  # digests per query, below SQLite's limit of bound parameters

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bodies (digest TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS revisions (
    sha TEXT PRIMARY KEY, doc BLOB NOT NULL, digest TEXT NOT NULL, written INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS served (id INTEGER PRIMARY KEY CHECK (id = 1), sha TEXT NOT NULL);
"""

ConfigKey = tuple[str, str]


class DamagedSnapshot(Exception):
    """The persisted snapshot cannot be trusted: what is wrong with it."""


class PersistedRevision(NamedTuple):
    """A revision as persisted: its index and the bodies it names, by ETag."""

    revision: str
    published_at: str
    environments: tuple[str, ...]
    services: tuple[str, ...]
    subscriptions: tuple[dict[str, Any], ...]
    etags: dict[ConfigKey, str]
    bodies: dict[str, bytes]
    # Configs whose secrets were left out of their body, and how many (their plaintext is
    # never written here).
    redacted: dict[ConfigKey, int]
    # Environments served from an earlier revision (a pin): their configs are that one's.
    pinned: dict[str, str] = {}  # noqa: RUF012 - a NamedTuple default, never mutated


def _digest(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def _etag(digest: str) -> str:
    return f'"{digest}"'


class SnapshotStore:
    """served.db in a state dir."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        # What the file holds, learnt at the first write: digests present, kept indexes.
        self._present: set[str] | None = None
        self._kept: OrderedDict[str, set[str]] = OrderedDict()
        self._counter = 0

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    def close(self) -> None:
        """Close the file."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
            self._present = None

    # -- writing ------------------------------------------------------------------------

    def write(
        self,
        *,
        revision: str,
        published_at: str,
        environments: Iterable[str],
        services: Iterable[str],
        subscriptions: Iterable[Mapping[str, Any]],
        etags: Mapping[ConfigKey, str],
        body_of: Mapping[str, bytes],
        redacted: Mapping[ConfigKey, int] | None = None,
        pinned: Mapping[str, str] | None = None,
    ) -> int:
        """Make revision the persisted one; the bodies it names that the file lacks are taken
        from body_of (by ETag). Returns how many bodies were written."""
        doc = json.dumps(
            {
                "format": FORMAT,
                "revision": revision,
                "published_at": published_at,
                "environments": list(environments),
                "services": list(services),
                "subscriptions": list(subscriptions),
                "configs": [[env, svc, etag.strip('"')] for (env, svc), etag in etags.items()],
                "redacted": [[env, svc, n] for (env, svc), n in (redacted or {}).items()],
                "pinned": dict(pinned or {}),
            },
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()
        digests = {etag.strip('"') for etag in etags.values()}
        with self._lock:
            conn = self._connect()
            present = self._learn(conn)
            new = [(digest, body_of[_etag(digest)]) for digest in digests if digest not in present]
            self._counter += 1
            conn.execute("BEGIN IMMEDIATE")
            try:
                conn.executemany("INSERT OR IGNORE INTO bodies VALUES (?, ?)", new)
                conn.execute(
                    "INSERT OR REPLACE INTO revisions VALUES (?, ?, ?, ?)",
                    (revision, doc, _digest(doc), self._counter),
                )
                conn.execute("INSERT OR REPLACE INTO served VALUES (1, ?)", (revision,))
                kept = OrderedDict(self._kept)
                kept[revision] = digests
                kept.move_to_end(revision)
                dropped = []
                while len(kept) > KEEP_REVISIONS:
                    dropped.append(kept.popitem(last=False)[0])
                conn.executemany("DELETE FROM revisions WHERE sha = ?", [(s,) for s in dropped])
                live = set().union(*kept.values())
                dead = (present | {d for d, _ in new}) - live
                conn.executemany("DELETE FROM bodies WHERE digest = ?", [(d,) for d in dead])
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            self._kept = kept
            self._present = (present | {d for d, _ in new}) - dead
            return len(new)

    def _learn(self, conn: sqlite3.Connection) -> set[str]:
        """The digests the file holds and the indexes it keeps, read once."""
        if self._present is None:
            self._present = {row[0] for row in conn.execute("SELECT digest FROM bodies")}
            self._kept = OrderedDict()
            rows = conn.execute("SELECT sha, doc, written FROM revisions ORDER BY written")
            for sha, doc, written in rows:
                try:
                    configs = json.loads(doc)["configs"]
                    self._kept[sha] = {entry[2] for entry in configs}
                except (ValueError, KeyError, TypeError, IndexError):
                    continue  # dropped with the next write's clean-up of unknown bodies
                self._counter = max(self._counter, written)
        return self._present

    # -- reading ------------------------------------------------------------------------

    def load(self, sha: str | None = None) -> PersistedRevision | None:
        """The served revision (or the kept one sha names), checked; None if there is none.

        DamagedSnapshot if any digest does not match what it covers.
        """
        if not self.path.exists():
            return None
        with self._lock:
            try:
                conn = self._connect()
                if sha is None:
                    row = conn.execute("SELECT sha FROM served WHERE id = 1").fetchone()
                    if row is None:
                        return None
                    sha = row[0]
                found = conn.execute(
                    "SELECT doc, digest FROM revisions WHERE sha = ?", (sha,)
                ).fetchone()
                if found is None:
                    raise DamagedSnapshot(f"{self.path}: the index of revision {sha} is missing")
                doc, digest = found
                if _digest(doc) != digest:
                    raise DamagedSnapshot(
                        f"{self.path}: the index of revision {sha[:12]} does not match its digest"
                    )
                index = json.loads(doc)
                if index.get("format") != FORMAT:
                    raise DamagedSnapshot(f"{self.path}: an unknown format {index.get('format')!r}")
                wanted = {entry[2] for entry in index["configs"]}
                bodies: dict[str, bytes] = {}
                listed = sorted(wanted)
                for start in range(0, len(listed), _CHUNK):
                    chunk = listed[start : start + _CHUNK]
                    query = f"SELECT digest, data FROM bodies WHERE digest IN ({','.join('?' * len(chunk))})"
                    for digest_, data in conn.execute(query, chunk):
                        if _digest(data) != digest_:
                            raise DamagedSnapshot(
                                f"{self.path}: a body of revision {sha[:12]} does not match its "
                                f"digest {digest_}"
                            )
                        bodies[_etag(digest_)] = bytes(data)
                missing = wanted - {etag.strip('"') for etag in bodies}
                if missing:
                    raise DamagedSnapshot(
                        f"{self.path}: {len(missing)} body(ies) of revision {sha[:12]} are missing"
                    )
                return PersistedRevision(
                    revision=index["revision"],
                    published_at=index.get("published_at", ""),
                    environments=tuple(index["environments"]),
                    services=tuple(index["services"]),
                    subscriptions=tuple(index.get("subscriptions", ())),
                    etags={(env, svc): _etag(d) for env, svc, d in index["configs"]},
                    bodies=bodies,
                    redacted={(env, svc): int(n) for env, svc, n in index.get("redacted", [])},
                    pinned={str(e): str(sha) for e, sha in index.get("pinned", {}).items()},
                )
            except sqlite3.DatabaseError as exc:
                raise DamagedSnapshot(f"{self.path}: {exc}") from None
            except (ValueError, KeyError, TypeError, IndexError) as exc:
                raise DamagedSnapshot(f"{self.path}: the index is not readable: {exc}") from None
