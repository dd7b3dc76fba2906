"""`gitconf agent --config agent.yaml [--once]`: the sidecar that renders config files."""

from __future__ import annotations

import sys

import click

from gitconf.agent.config import AgentConfigError
from gitconf.agent.run import Agent, configure_logging

__all__ = ["agent"]


@click.command()
@click.option(
    "--config",
    "config_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="The agent.yaml that names the server and the files to render.",
)
@click.option(
    "--once",
    is_flag=True,
    help="Render every file and exit: 0, or 1 if a file could not be written (init containers).",
)
def agent(config_path: str, once: bool) -> None:
    """Render config files from a gitconf server and reload services when they change."""
    try:
        runner = Agent(config_path)
    except AgentConfigError as exc:
        click.echo(f"gitconf agent: {exc}", err=True)
        sys.exit(2)
    configure_logging(runner.config.log_level)
    sys.exit(runner.once() if once else runner.run())
