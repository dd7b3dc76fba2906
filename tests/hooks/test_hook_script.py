"""`gitconf hook-script` and the post-receive script it prints (the end-to-end run is in test_e2e)."""

from __future__ import annotations

import importlib.machinery
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

from click.testing import CliRunner

import gitconf.hooks
from gitconf.cli import main
from tests.hooks.payloads import vector

SCRIPT = Path(gitconf.hooks.__file__).parent / "post-receive"


def load_script() -> ModuleType:
    loader = importlib.machinery.SourceFileLoader("post_receive", str(SCRIPT))
    spec = importlib.util.spec_from_loader("post_receive", loader)
    assert spec is not None
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    return module


def test_hook_script_prints_the_packaged_script() -> None:
    result = CliRunner().invoke(main, ["hook-script"])
    assert result.exit_code == 0
    assert result.output == SCRIPT.read_text()
    assert result.output.startswith("#!/usr/bin/env python3\n")
    assert os.access(SCRIPT, os.X_OK)


def test_the_script_signs_the_official_standard_webhooks_vector() -> None:
    official = vector("standard_webhooks.json")["vectors"][0]
    script = load_script()
    key = script.key_of(official["secret"])
    signature = script.sign(
        key, official["msg_id"], official["timestamp"], official["payload"].encode()
    )
    assert signature == official["expected_signature_header"]


def test_without_settings_the_push_is_not_failed(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITCONF_")}
    env["GIT_DIR"] = str(tmp_path)  # no repository here: git config finds nothing
    ran = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=f"{'0' * 40} {'1' * 40} refs/heads/main\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0
    assert "gitconf: not notified: set GITCONF_URL and GITCONF_HOOK_SECRET" in ran.stderr


def test_an_unreachable_server_does_not_fail_the_push(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GITCONF_")}
    env.update(
        GITCONF_URL="http://127.0.0.1:9",  # the discard port: nothing listens
        GITCONF_HOOK_SECRET="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    )
    ran = subprocess.run(
        [sys.executable, str(SCRIPT)],
        input=f"{'0' * 40} {'1' * 40} refs/heads/main\n",
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0
    assert (
        "gitconf: refs/heads/main: cannot reach http://127.0.0.1:9/v1/hooks/generic" in ran.stderr
    )
