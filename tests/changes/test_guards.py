"""The guards refuse an edit whose text is wrong, and user errors name the place in the way.

The guards are tested by making the text edit wrong on purpose (the faults a YAML round-trip
dumper makes, measured on this project: a "\\u00e9" escape rewritten as é on an untouched
line, an untouched list re-indented, a value written with the wrong type, a final newline
lost) and checking that the edit is refused and nothing is returned.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from gitconf.changes import splice
from gitconf.changes.edit import edit_layer
from gitconf.changes.errors import (
    BadKey,
    EditRefused,
    EncryptedLayer,
    InvalidLayer,
    NotExact,
)
from gitconf.errors import Source

FILE = 'name: "caf\\u00e9"\nhosts:\n  - a\n  - b\ndb:\n  port: 5432\n'


def corrupt(monkeypatch: pytest.MonkeyPatch, fault: Callable[[str], str]) -> None:
    """Make the text edit of every op pass its result through fault."""
    apply = splice.Editor.apply

    def faulty(self: splice.Editor, doc: splice.Document, op: splice.Op) -> splice._Result:
        text, before, after = apply(self, doc, op)
        return fault(text), before, after

    monkeypatch.setattr(splice.Editor, "apply", faulty)


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        (lambda t: t.replace("caf\\u00e9", "café"), "lines outside the edited keys"),
        (lambda t: t.replace("  - a\n  - b\n", "- a\n- b\n"), "lines outside the edited keys"),
        (lambda t: t.replace("port: 6543", "port: '6543'"), "intended tree"),
        (lambda t: t.rstrip("\n"), "ends with a line break"),
        (lambda t: t.replace("db:", "db: ["), "would not parse"),
        (lambda t: t.replace("port: 6543", "port: 6543\n  extra: 1"), "intended tree"),
    ],
    ids=["escape rewritten", "list re-indented", "wrong type", "final newline", "broken", "extra"],
)
def test_a_wrong_text_edit_is_refused(
    monkeypatch: pytest.MonkeyPatch, fault: Callable[[str], str], reason: str
) -> None:
    corrupt(monkeypatch, fault)
    with pytest.raises(NotExact) as info:
        edit_layer("environments/prod/db.yaml", FILE.encode(), {"db.port": 6543})
    assert reason in info.value.message
    assert info.value.status == 500
    assert info.value.code == "edit_not_exact"


def test_without_a_fault_the_same_edit_passes() -> None:
    assert (
        edit_layer("f.yaml", FILE.encode(), {"db.port": 6543})
        == FILE.replace("5432", "6543").encode()
    )


def test_crossing_a_scalar_names_the_key_and_the_scalars_place() -> None:
    with pytest.raises(EditRefused) as info:
        edit_layer("environments/prod/db.yaml", FILE.encode(), {"db.port.x": 1})
    error = info.value
    assert error.key == "db.port.x"
    assert error.source == Source("environments/prod/db.yaml", 6, 9)
    assert str(error) == (
        "environments/prod/db.yaml:6:9: db.port.x: db.port is the scalar 5432 at "
        "environments/prod/db.yaml:6:9, so db.port.x cannot be set inside it "
        "(set db.port itself to a mapping to replace the scalar)"
    )


def test_a_mapping_may_replace_a_scalar() -> None:
    assert edit_layer("f.yaml", FILE.encode(), {"db.port": {"x": 1}}).endswith(
        b"db:\n  port:\n    x: 1\n"
    )


def test_unset_of_a_key_the_file_does_not_set() -> None:
    with pytest.raises(EditRefused) as info:
        edit_layer("environments/prod/db.yaml", FILE.encode(), unsets=["db.pool.max"])
    assert info.value.key == "db.pool.max"
    assert "does not set db.pool.max" in info.value.message


@pytest.mark.parametrize(
    ("sets", "unsets", "message"),
    [
        ({"hosts.x": 1}, [], "hosts is a list, so it has no key 'x'"),
        ({"db[0]": 1}, [], "db is a mapping, so it has no item [0]"),
        ({"hosts[5]": "c"}, [], "[5] is past its end"),
        ({"name.first": "x"}, [], 'the scalar "caf\\u00e9"'),
    ],
)
def test_paths_that_do_not_fit(sets: dict[str, object], unsets: list[str], message: str) -> None:
    with pytest.raises(EditRefused) as info:
        edit_layer("f.yaml", FILE.encode(), sets, unsets)
    assert message in info.value.message


ANCHORED = (
    "base: &base\n  pool: &pool {max: 5}\nsvc:\n  db: *base\n  pool: *pool\nm:\n  <<: *base\n"
)


def test_through_an_alias_is_refused_with_the_anchor() -> None:
    with pytest.raises(EditRefused) as info:
        edit_layer("f.yaml", ANCHORED.encode(), {"svc.db.pool.max": 6})
    assert "svc.db is an alias of the anchor &base at f.yaml:1:7" in info.value.message


def test_into_a_merged_mapping_is_refused() -> None:
    with pytest.raises(EditRefused) as info:
        edit_layer("f.yaml", ANCHORED.encode(), {"m.pool.max": 6})
    assert "m.pool comes from the merge key `<<` at f.yaml:7:3" in info.value.message


def test_removing_an_anchor_in_use_is_refused() -> None:
    with pytest.raises(EditRefused) as info:
        edit_layer("f.yaml", ANCHORED.encode(), {"base": 1})
    assert "holds the anchor &pool" in info.value.message


def test_the_anchor_definition_is_edited_for_every_alias() -> None:
    after = edit_layer("f.yaml", ANCHORED.encode(), {"base.pool.max": 6})
    assert after == ANCHORED.replace("{max: 5}", "{max: 6}").encode()


@pytest.mark.parametrize(
    ("key", "ok"),
    [
        ("db.pool.max", True),
        ('labels["app.kubernetes.io"]', True),
        ("servers[0].host", True),
        ("db..max", False),
        ("db.", False),
        ("a[x]", False),
        ("", False),
        (".a", False),
    ],
)
def test_key_paths_are_read_strictly(key: str, ok: bool) -> None:
    if ok:
        edit_layer("f.yaml", b"a: 1\n", {key: 1})
    else:
        with pytest.raises(BadKey):
            edit_layer("f.yaml", b"a: 1\n", {key: 1})


def test_overlapping_keys_and_bad_values() -> None:
    with pytest.raises(BadKey, match="overlap"):
        edit_layer("f.yaml", b"a: 1\n", {"db": {}, "db.port": 1})
    with pytest.raises(BadKey, match="not a JSON number"):
        edit_layer("f.yaml", b"a: 1\n", {"x": float("nan")})
    with pytest.raises(BadKey, match="edits the same list"):
        edit_layer("f.yaml", FILE.encode(), {"hosts[0]": "z"}, ["hosts[1]"])


def test_an_encrypted_file_is_never_edited() -> None:
    sops = b"db:\n  password: ENC[AES256_GCM,data:x,type:str]\nsops:\n  version: 3.9.0\n"
    with pytest.raises(EncryptedLayer) as info:
        edit_layer("environments/prod/secrets.yaml", sops, {"db.user": "x"})
    assert info.value.status == 409
    assert info.value.code == "encrypted_layer"


def test_a_broken_file_is_not_edited() -> None:
    with pytest.raises(InvalidLayer) as info:
        edit_layer("f.yaml", b"a: 1\na: 2\n", {"b": 1})
    assert info.value.problems[0].message.startswith("duplicate key 'a'")
