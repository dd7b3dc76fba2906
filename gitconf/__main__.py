"""`python -m gitconf` runs the CLI."""

from gitconf.cli import entry

entry()
