"""gitconf's own files: its JSON Schemas and the sample repository, installed or in a checkout."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

_PACKAGE = Path(__file__).resolve().parent


def data_dir(name: str) -> Path:
    """The folder `name` (schemas, sample-repo) from the installed package or the checkout."""
    for candidate in (_PACKAGE / "_data" / name, _PACKAGE.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"gitconf's {name}/ folder is missing from the installation")


@cache
def own_schema(name: str) -> dict[str, Any]:
    """One of gitconf's own JSON Schemas, e.g. own_schema("manifest")."""
    loaded: dict[str, Any] = json.loads((data_dir("schemas") / f"{name}.schema.json").read_text())
    return loaded
