"""The session cookie's codec, its key file, and the token binding it keeps instead of a token."""

from __future__ import annotations

import stat
from pathlib import Path

from gitconf.server.auth import Auth
from gitconf.ui.session import KEY_FILE, Session, SessionCodec, load_key


def test_the_key_is_made_once_private_and_kept(tmp_path: Path) -> None:
    key = load_key(tmp_path)
    assert len(key) == 32
    assert stat.S_IMODE((tmp_path / KEY_FILE).stat().st_mode) == 0o600
    assert load_key(tmp_path) == key
    (tmp_path / KEY_FILE).write_bytes(b"short")  # a torn first write is made again
    assert len(load_key(tmp_path)) == 32


def test_a_session_reads_back_until_its_lifetime_ends() -> None:
    now = [1_000_000.0]
    codec = SessionCodec(b"k" * 32, lifetime=3600, clock=lambda: now[0])
    session = Session.fresh("ops", "b" * 64)
    value = codec.dumps(session)
    assert codec.loads(value) == session
    now[0] += 3599
    assert codec.loads(value) == session
    now[0] += 2
    assert codec.loads(value) is None


def test_a_cookie_signed_with_another_key_or_tampered_with_is_refused() -> None:
    value = SessionCodec(b"k" * 32).dumps(Session.fresh("ops", "b" * 64))
    assert SessionCodec(b"j" * 32).loads(value) is None
    assert SessionCodec(b"k" * 32).loads(value[:-2] + "xx") is None
    for junk in (None, "", "garbage", "a.b.c"):
        assert SessionCodec(b"k" * 32).loads(junk) is None


def test_csrf_tokens_compare_exactly() -> None:
    session = Session.fresh()
    assert session.csrf_matches(session.csrf)
    assert not session.csrf_matches(session.csrf + "x")
    assert not session.csrf_matches("")
    assert not session.csrf_matches(None)
    assert Session.fresh().csrf != session.csrf


def test_the_binding_names_a_token_without_revealing_it(tmp_path: Path) -> None:
    key = b"k" * 32
    auth = Auth([{"name": "ops", "token": "s" * 32, "scopes": ["admin"]}])
    found = auth.session("s" * 32, key)
    assert found is not None
    principal, binding = found
    assert principal.name == "ops" and "s" * 8 not in binding
    assert auth.by_binding("ops", binding, key) == principal
    assert auth.by_binding("ops", binding, b"j" * 32) is None
    assert auth.by_binding("other", binding, key) is None
    assert auth.session("wrong" * 8, key) is None
    # The token removed or replaced: the same binding no longer names anyone.
    replaced = Auth([{"name": "ops", "token": "t" * 32, "scopes": ["admin"]}])
    assert replaced.by_binding("ops", binding, key) is None


def test_two_tokens_of_one_name_keep_their_own_scopes() -> None:
    key = b"k" * 32
    auth = Auth(
        [
            {"name": "team", "token": "r" * 32, "scopes": ["read:staging"]},
            {"name": "team", "token": "w" * 32, "scopes": ["admin"]},
        ]
    )
    found = auth.session("w" * 32, key)
    assert found is not None
    assert auth.by_binding("team", found[1], key) == found[0]
    assert found[0].admin


def test_a_binding_ends_when_its_token_expires() -> None:
    now = [100.0]
    spec = {
        "name": "t",
        "token": "e" * 32,
        "scopes": ["admin"],
        "expires_at": "1970-01-01T00:03:20Z",
    }
    auth = Auth([spec], clock=lambda: now[0])
    found = auth.session("e" * 32, b"k" * 32)
    assert found is not None
    now[0] = 200.0
    assert auth.by_binding("t", found[1], b"k" * 32) is None
