"""The Dockerfile and the README's `docker run`, read as text (no Docker engine needed).

The image's settings must never beat a mounted server.yaml: GITCONF_* variables do (flag >
environment > file > default), so the image sets none and ships its defaults as a file. And
the README's `docker run` must pass every variable its server.yaml names, or the server
stops at start.
"""

from __future__ import annotations

import itertools
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from gitconf.package_data import own_schema
from gitconf.server.auth import Auth
from gitconf.settings import load_settings

ROOT = Path(__file__).resolve().parents[1]
TOKENS = [{"name": "ci", "token": "t" * 32, "scopes": ["admin"]}]


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of a Dockerfile, continuation lines joined, comments dropped."""
    lines: list[str] = []
    pending = ""
    for raw in dockerfile.splitlines():
        if raw.lstrip().startswith("#") and not pending:
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        lines.append(pending + raw)
        pending = ""
    parsed = []
    for line in lines:
        if line.strip():
            word, _, rest = line.strip().partition(" ")
            parsed.append((word.upper(), rest.strip()))
    return parsed


def image_env(dockerfile: str) -> dict[str, str]:
    """The variables the image's ENV instructions set."""
    env: dict[str, str] = {}
    for word, rest in instructions(dockerfile):
        if word != "ENV":
            continue
        parts = shlex.split(rest)
        if "=" not in parts[0]:  # the legacy `ENV NAME value` form
            env[parts[0]] = " ".join(parts[1:])
            continue
        for part in parts:
            name, _, value = part.partition("=")
            env[name] = value
    return env


def image_copies(dockerfile: str) -> dict[str, str]:
    """What the image's COPY instructions put where: destination -> source."""
    return {
        shlex.split(rest)[-1]: shlex.split(rest)[0]
        for word, rest in instructions(dockerfile)
        if word == "COPY" and not rest.startswith("--")
    }


def readme_block(start: str) -> str:
    """The README's first fenced block whose first line starts with start."""
    readme = (ROOT / "README.md").read_text()
    for block in re.findall(r"```[a-z]*\n(.*?)```", readme, re.S):
        if block.startswith(start):
            return str(block)
    raise AssertionError(f"no block starting {start!r} in README.md")


def docker_run() -> tuple[dict[str, str | None], dict[str, str]]:
    """The README's `docker run`: its -e variables (None: passed from the shell) and mounts."""
    command = readme_block("docker build").split("docker run", 1)[1]
    words = shlex.split(command.replace("\\\n", " "))
    env: dict[str, str | None] = {}
    mounts: dict[str, str] = {}
    for flag, value in itertools.pairwise(words):
        if flag == "-e":
            name, eq, given = value.partition("=")
            env[name] = given if eq else None
        elif flag == "-v":
            source, target = value.split(":")[:2]
            mounts[target] = source
    return env, mounts


def variables_named(value: Any) -> set[str]:
    """Every `*_env` value in a settings tree: the variables the server reads."""
    if isinstance(value, dict):
        named = {v for k, v in value.items() if k.endswith("_env") and isinstance(v, str)}
        return named.union(*(variables_named(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(variables_named(v) for v in value))
    return set()


DOCKERFILE = (ROOT / "Dockerfile").read_text()
README_SERVER_YAML = readme_block("# server.yaml\n")


def test_the_image_sets_no_variable_of_a_setting() -> None:
    settings = {f"GITCONF_{name.upper()}" for name in own_schema("server")["properties"]}
    assert settings & set(image_env(DOCKERFILE)) == set()


def test_the_image_reads_its_defaults_from_the_file_it_ships() -> None:
    config = image_env(DOCKERFILE)["GITCONF_CONFIG"]
    assert image_copies(DOCKERFILE)[config] == "docker/server.yaml"
    environ = {**image_env(DOCKERFILE), "GITCONF_CONFIG": str(ROOT / "docker/server.yaml")}
    settings = load_settings({"repo": "r", "tokens": TOKENS}, environ=environ)
    assert (settings.listen, settings.state_dir) == ("0.0.0.0:8080", "/var/lib/gitconf")
    assert '"/var/lib/gitconf"' in dict(instructions(DOCKERFILE))["VOLUME"]


@pytest.mark.parametrize(
    ("mounted", "listen", "state_dir"),
    [
        ({"listen": "0.0.0.0:9000"}, "0.0.0.0:9000", ".gitconf-state"),
        ({"listen": "[::]:8080", "state_dir": "/data"}, "[::]:8080", "/data"),
    ],
)
def test_a_mounted_server_yaml_is_not_overridden_by_the_image(
    tmp_path: Path, mounted: dict[str, str], listen: str, state_dir: str
) -> None:
    # The image's ENV GITCONF_LISTEN/GITCONF_STATE_DIR beat the mounted file before.
    config = tmp_path / "server.yaml"
    config.write_text(yaml.safe_dump({"repo": "r", "tokens": TOKENS, **mounted}))
    environ = {**image_env(DOCKERFILE), "GITCONF_CONFIG": str(config)}
    settings = load_settings({}, environ=environ)
    assert (settings.listen, settings.state_dir) == (listen, state_dir)


def test_the_readme_docker_run_passes_every_variable_its_server_yaml_names() -> None:
    env, mounts = docker_run()
    named = variables_named(yaml.safe_load(README_SERVER_YAML))
    assert named  # the example names its secrets by variable
    assert named <= set(env), f"not passed with -e: {sorted(named - set(env))}"
    config = env.get("GITCONF_CONFIG") or image_env(DOCKERFILE)["GITCONF_CONFIG"]
    assert mounts[config] == "$PWD/server.yaml"


def test_the_readme_docker_run_starts(tmp_path: Path) -> None:
    """The checks `gitconf serve` makes before listening, in the container's environment."""
    env, _ = docker_run()
    config = tmp_path / "server.yaml"
    config.write_text(README_SERVER_YAML)
    environ = {**image_env(DOCKERFILE), "GITCONF_CONFIG": str(config)}
    environ.update(
        {k: v if v is not None else "from-the-shell-" + "x" * 24 for k, v in env.items()}
    )
    settings = load_settings({}, environ=environ)
    Auth(settings.tokens, environ)  # exits 2 at start when a token variable is not set
    assert (settings.listen, settings.state_dir) == ("0.0.0.0:8080", "/var/lib/gitconf")
