"""gitconf: a Git-backed configuration engine."""

__version__ = "0.1.0"
