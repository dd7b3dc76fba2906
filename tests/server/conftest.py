# The shared fixtures (repo, make_server, server, client) live in tests/conftest.py.
from tests.conftest import BASE_FILES, PAYMENTS_SCHEMA

__all__ = ["BASE_FILES", "PAYMENTS_SCHEMA"]
