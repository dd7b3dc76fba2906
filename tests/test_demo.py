"""`gitconf demo` as a new user runs it: curl, commit a change, break it, Ctrl-C."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import requests

from gitconf.testing.server import free_port, wait_until


def test_demo_serves_commits_and_rejects_a_broken_one(tmp_path: Path) -> None:
    port = free_port()
    home = tmp_path / "home"  # a machine with no git identity configured
    home.mkdir()
    env = {"PATH": os.environ["PATH"], "HOME": str(home)}
    log = (tmp_path / "demo.log").open("wb")
    demo = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gitconf",
            "demo",
            "--dir",
            str(tmp_path / "d"),
            "--port",
            str(port),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/v1/config/production-eu/payments"
    try:
        first = wait_until(lambda: (r := requests.get(url, timeout=2)).ok and r, 30)
        assert first.json()["db"]["pool"]["max"] == 30
        banner = (tmp_path / "demo.log").read_text()
        assert f"curl {url}" in banner
        repo = tmp_path / "d" / "config-repo"
        path = repo / "environments" / "production-eu" / "payments.yaml"

        def commit(old: str, new: str, message: str) -> None:
            path.write_text(path.read_text().replace(old, new))
            subprocess.run(["git", "commit", "-qam", message], cwd=repo, env=env, check=True)
            subprocess.run(["git", "push", "-q"], cwd=repo, env=env, check=True)

        commit("max: 30", "max: 40", "raise the EU pool")
        wait_until(lambda: requests.get(url, timeout=2).json()["db"]["pool"]["max"] == 40, 30)
        commit("max: 40", "max: lots", "break payments")
        status_url = f"http://127.0.0.1:{port}/v1/status"
        status = wait_until(
            lambda: (s := requests.get(status_url, timeout=2).json())["rejected"] and s, 30
        )
        [problem] = status["rejected"][0]["problems"]
        assert problem["path"] == "environments/production-eu/payments.yaml"
        assert "'lots' is not of type 'integer'" in problem["message"]
        assert requests.get(url, timeout=2).json()["db"]["pool"]["max"] == 40
        # The banner's change through gitconf: the broken head is refused as a base...
        bare = tmp_path / "d" / "config.git"
        head = subprocess.run(["git", "rev-parse", "main"], cwd=bare, env=env, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        edit = {"environment": "production-eu", "service": "payments", "set": {"db.pool.max": 50}}
        changes = f"http://127.0.0.1:{port}/v1/changes"
        refused = requests.post(changes, json={"base": head, "edits": [edit]}, timeout=30)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "base_invalid"
        # ... fixed in the work clone, then changed through gitconf and served.
        commit("max: lots", "max: 45", "fix payments")
        wait_until(lambda: requests.get(url, timeout=2).json()["db"]["pool"]["max"] == 45, 30)
        head = subprocess.run(["git", "rev-parse", "main"], cwd=bare, env=env, capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
        made = requests.post(changes, json={"base": head, "edits": [edit]}, timeout=30)
        assert made.status_code == 201, made.text
        wait_until(lambda: requests.get(url, timeout=2).json()["db"]["pool"]["max"] == 50, 30)
        assert "/v1/changes" in banner
    finally:
        demo.send_signal(signal.SIGINT)  # Ctrl-C
        code = demo.wait(30)
        log.close()
    assert code == 0, (tmp_path / "demo.log").read_text()
