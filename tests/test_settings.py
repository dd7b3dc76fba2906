"""Server settings: precedence flag > environment > file > default, and clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from gitconf.settings import SettingsError, load_settings


def test_defaults() -> None:
    settings = load_settings({"repo": "r"}, environ={})
    assert (settings.branch, settings.listen, settings.poll_interval) == (
        "main",
        "127.0.0.1:8080",
        30.0,
    )


def test_precedence_flag_over_environment_over_file(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(
        "repo: from-file\nbranch: file-branch\npoll_interval: 5\nlisten: 127.0.0.1:9000\n"
    )
    environ = {"GITCONF_BRANCH": "env-branch", "GITCONF_POLL_INTERVAL": "7"}
    settings = load_settings({"poll_interval": 9.0}, environ=environ, config_file=str(config))
    assert settings.repo == "from-file"
    assert settings.branch == "env-branch"
    assert settings.poll_interval == 9.0
    assert settings.port == 9000


def test_config_file_from_the_environment(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("repo: r\nbranch: release\n")
    settings = load_settings({}, environ={"GITCONF_CONFIG": str(config)})
    assert settings.branch == "release"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("repo: r\npoll_interval: often\n", "poll_interval: 'often' is not of type 'number'"),
        ("repo: r\nlisten: nowhere\n", "listen"),
        ("repo: r\nunknown_option: 1\n", "'unknown_option' is not allowed"),
        ("repo: r\ntokens: [{name: a, scopes: [admin]}]\n", "tokens[0]"),
        ("repo: r\nhooks: {github: {}}\n", "hooks.github"),
        ("repo: [r\n", "YAML syntax error"),
    ],
)
def test_bad_settings_file_names_the_setting(tmp_path: Path, content: str, expected: str) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(content)
    with pytest.raises(SettingsError) as info:
        load_settings({}, environ={}, config_file=str(config))
    assert expected in str(info.value)
    assert str(config) in str(info.value)


def test_bad_environment_value_names_the_variable() -> None:
    with pytest.raises(SettingsError, match="GITCONF_MAX_WAITERS='lots'"):
        load_settings({"repo": "r"}, environ={"GITCONF_MAX_WAITERS": "lots"})


def test_missing_repo_and_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="repo: no repository given"):
        load_settings({}, environ={})
    with pytest.raises(SettingsError, match="cannot read settings file"):
        load_settings({}, environ={}, config_file=str(tmp_path / "missing.yaml"))


@pytest.mark.parametrize("listen", ["0.0.0.0:8080", "[::]:8080", "10.0.0.5:80"])
def test_public_listen_needs_tokens(listen: str) -> None:
    with pytest.raises(SettingsError, match="refusing to listen"):
        load_settings({"repo": "r", "listen": listen}, environ={})
    tokens = [{"name": "a", "token": "x" * 20, "scopes": ["admin"]}]
    assert load_settings({"repo": "r", "listen": listen, "tokens": tokens}, environ={}).tokens


@pytest.mark.parametrize("listen", ["127.0.0.1:1", "127.3.4.5:1", "[::1]:1", "localhost:1"])
def test_loopback_listen_needs_no_tokens(listen: str) -> None:
    assert load_settings({"repo": "r", "listen": listen}, environ={}).port == 1


@pytest.mark.parametrize(
    ("listen", "address"),
    [
        ("localhost:8123", "127.0.0.1:8123"),
        ("LOCALHOST:8123", "127.0.0.1:8123"),
        ("localhost.:8123", "127.0.0.1:8123"),
        ("gitconf.localhost:8123", "127.0.0.1:8123"),
        ("127.0.0.1:8123", "127.0.0.1:8123"),
        ("[::1]:8123", "[::1]:8123"),
    ],
)
def test_a_loopback_name_is_listened_on_as_its_address(listen: str, address: str) -> None:
    # granian binds addresses only: "localhost" passed the settings, then crashed at start.
    settings = load_settings({"repo": "r", "listen": listen}, environ={})
    assert settings.listen == address
    assert settings.base_url() == f"http://{address}"


@pytest.mark.parametrize("listen", ["127.evil.example:8080", "config.internal:80", "a-b:1"])
def test_other_host_names_are_refused_with_or_without_tokens(listen: str) -> None:
    host, port = listen.rsplit(":", 1)
    message = (
        f"listen: {listen!r} names the host {host!r}, and gitconf listens on an IP address: "
        f"use 127.0.0.1:{port} (this machine only), 0.0.0.0:{port} (every interface; tokens "
        "required) or the address of one interface"
    )
    with pytest.raises(SettingsError) as caught:
        load_settings({"repo": "r", "listen": listen}, environ={})
    assert str(caught.value) == message
    tokens = [{"name": "a", "token": "x" * 20, "scopes": ["admin"]}]
    with pytest.raises(SettingsError, match=re.escape(message)):
        load_settings({"repo": "r", "listen": listen, "tokens": tokens}, environ={})


def test_a_lease_shorter_than_an_attempt_is_refused() -> None:
    with pytest.raises(
        SettingsError, match=r"delivery.lease: 5 s must be longer than delivery.timeout \(10 s\)"
    ):
        load_settings({"repo": "r", "delivery": {"lease": 5}}, environ={})
    assert (
        load_settings({"repo": "r", "delivery": {"lease": 11}}, environ={}).delivery["lease"] == 11
    )


@pytest.mark.parametrize(
    "token",
    [
        {"name": "a", "token": "short-secret", "scopes": ["admin"]},
        {"name": "a", "token": "supersecretvalue123", "token_env": "X", "scopes": ["admin"]},
    ],
)
def test_errors_never_quote_a_secret(tmp_path: Path, token: dict[str, object]) -> None:
    with pytest.raises(SettingsError) as info:
        load_settings({"repo": "r", "tokens": [token]}, environ={})
    assert "tokens[0]" in str(info.value)
    assert str(token["token"]) not in str(info.value)
    config = tmp_path / "server.yaml"
    config.write_text(f"repo: r\ntokens:\n  - {token}\n".replace("'", '"'))
    with pytest.raises(SettingsError) as info:
        load_settings({}, environ={}, config_file=str(config))
    assert "tokens[0]" in str(info.value)
    assert str(token["token"]) not in str(info.value)


@pytest.mark.parametrize(
    ("environ", "flags", "shared"),
    [
        ({}, {}, False),
        ({"GITCONF_REUSE_PORT": "true"}, {}, True),
        ({"GITCONF_REUSE_PORT": "1"}, {}, True),
        ({"GITCONF_REUSE_PORT": "false"}, {}, False),  # bool("false") would be True
        ({"GITCONF_REUSE_PORT": "No"}, {}, False),
        ({"GITCONF_REUSE_PORT": "true"}, {"reuse_port": False}, False),  # the flag wins
    ],
)
def test_reuse_port_is_off_unless_asked(
    environ: dict[str, str], flags: dict[str, bool], shared: bool
) -> None:
    assert load_settings({"repo": "r", **flags}, environ=environ).reuse_port is shared


def test_reuse_port_from_the_file_and_a_bad_variable(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("repo: r\nreuse_port: true\n")
    assert load_settings({}, environ={}, config_file=str(config)).reuse_port is True
    with pytest.raises(SettingsError, match=re.escape("GITCONF_REUSE_PORT='maybe': reuse_port")):
        load_settings({"repo": "r"}, environ={"GITCONF_REUSE_PORT": "maybe"})


@pytest.mark.parametrize(
    "secret",
    [
        # The words of the messages that are safe to show, inside a value: the message
        # quoting it was shown because it held them.
        ["s3cret is not allowed"],
        ["s3cret is a required property"],
        ["s3cret is valid under each of"],
    ],
)
def test_a_secret_holding_the_words_of_a_safe_message_is_not_quoted(
    tmp_path: Path, secret: list[str]
) -> None:
    token = {"name": "a", "token": secret, "scopes": ["admin"]}
    with pytest.raises(SettingsError) as info:
        load_settings({"repo": "r", "tokens": [token]}, environ={})
    assert "s3cret" not in str(info.value)
    assert "not shown: it may be a secret" in str(info.value)
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"repo": "r", "tokens": [token]}))
    with pytest.raises(SettingsError) as info:
        load_settings({}, environ={}, config_file=str(config))
    assert "s3cret" not in str(info.value)
    assert "not shown: it may be a secret" in str(info.value)


def test_messages_that_quote_key_names_are_shown_under_tokens(tmp_path: Path) -> None:
    config = tmp_path / "server.yaml"
    config.write_text("repo: r\ntokens:\n  - {name: a, token: x, scopes: [admin], colour: red}\n")
    with pytest.raises(SettingsError, match=re.escape("'colour' is not allowed here")):
        load_settings({}, environ={}, config_file=str(config))
    with pytest.raises(SettingsError, match=re.escape("'scopes' is a required property")):
        load_settings({"repo": "r", "tokens": [{"name": "a", "token": "x"}]}, environ={})


BUS = {"name": "bus", "kind": "amqp", "format": "spring-bus"}


@pytest.mark.parametrize(
    ("broker", "expected"),
    [
        (
            {**BUS, "url": "amqp://u:hunter2@h/", "url_env": "AMQP_URL"},
            "brokers[0]: give exactly one of url and url_env (the variable that holds the URL)",
        ),
        (
            {**BUS, "url": ["amqp://u:hunter2@h/"]},
            "brokers[0].url: invalid value (not shown: it may be a secret)",
        ),
        ({**BUS, "kind": "rabbit", "url": "amqp://u:hunter2@h/"}, "'rabbit' is not one of"),
        (
            {**BUS, "url": "amqp://u:hunter2@h/", "colour": "red"},
            "'colour' is not allowed here",
        ),
        # An empty list would read as "all" further on: refused instead.
        ({**BUS, "url": "amqp://u:hunter2@h/", "services": []}, "services: [] should be non-empty"),
    ],
)
def test_broker_errors_name_the_field_and_never_quote_the_url(
    tmp_path: Path, broker: dict[str, object], expected: str
) -> None:
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"repo": "r", "brokers": [broker]}))
    with pytest.raises(SettingsError) as info:
        load_settings({}, environ={}, config_file=str(config))
    assert expected in str(info.value)
    assert "hunter2" not in str(info.value)
    with pytest.raises(SettingsError) as info:
        load_settings({"repo": "r", "brokers": [broker]}, environ={})
    assert "hunter2" not in str(info.value)


def test_brokers_are_kept_out_of_the_settings_repr() -> None:
    settings = load_settings(
        {"repo": "r", "brokers": [{**BUS, "url": "amqp://u:hunter2@h/"}]}, environ={}
    )
    assert settings.brokers[0]["url"] == "amqp://u:hunter2@h/"
    assert "hunter2" not in repr(settings)


def test_spring_settings() -> None:
    settings = load_settings(
        {"repo": "r", "spring": {"default_environment": "prod", "labels": ["release/*"]}},
        environ={},
    )
    assert settings.spring_default_environment == "prod"
    assert settings.spring_labels == ("release/*",)
    plain = load_settings({"repo": "r"}, environ={})
    assert plain.spring_default_environment is None
    assert plain.spring_labels == ()
    with pytest.raises(SettingsError, match="write 'release/\\*'"):
        load_settings({"repo": "r", "spring": {"labels": ["refs/heads/release/*"]}}, environ={})
    with pytest.raises(SettingsError, match="spring"):
        load_settings({"repo": "r", "spring": {"labels": "release/*"}}, environ={})
