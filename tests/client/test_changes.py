"""What a watch callback is told: old and new copy, and the dotted keys that differ."""

from __future__ import annotations

from gitconf.client.changes import Change, change_between


def test_changes_name_dotted_keys_and_skip_mere_reordering() -> None:
    old = {"db": {"host": "a", "port": 1}, "hosts": ["x"]}
    new = {"db": {"port": 2, "host": "a"}, "hosts": ["x", "y"], "new": True}
    change = change_between(old, new, "rev", '"e"')
    assert change is not None and change.changed == ("db.port", "hosts", "new")
    assert change_between(old, {"hosts": ["x"], "db": {"port": 1, "host": "a"}}, "r", None) is None
    first = change_between(None, new, "rev", None)
    assert first is not None and first.old is None and "db.host" in first.changed


def test_a_change_carries_both_copies_and_the_served_validators() -> None:
    assert change_between({"a": 1}, {"a": 2}, "abc123", '"e2"') == Change(
        {"a": 1}, {"a": 2}, ("a",), "abc123", '"e2"'
    )


def test_a_config_emptied_names_the_keys_it_lost() -> None:
    change = change_between({"db": {"port": 1}, "debug": True}, {}, "r", None)
    assert change is not None and change.changed == ("db.port", "debug")


def test_the_first_copy_is_a_change_even_when_empty() -> None:
    first = change_between(None, {}, "r", None)
    assert first == Change(None, {}, (), "r", None)
