"""Two compiled revisions to the effective changes per (environment, service), key by key."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from gitconf.core.model import CompiledRevision, format_path, iter_leaves
from gitconf.core.render import flatten

__all__ = [
    "ConfigChange",
    "KeyChange",
    "diff_configs",
    "diff_revisions",
    "diff_values",
    "to_markdown",
    "to_text",
]

Status = Literal["added", "removed", "changed"]


class KeyChange(NamedTuple):
    """One leaf that changed: its dotted key, and its old and new value (None when absent)."""

    key: str
    status: Status
    old: Any = None
    new: Any = None


class ConfigChange(NamedTuple):
    """The changes of one (environment, service)'s effective config."""

    environment: str
    service: str
    status: Status
    keys: tuple[KeyChange, ...]


def diff_values(old: Any, new: Any) -> tuple[KeyChange, ...]:
    """Leaf-by-leaf changes between two configs; lists compare whole."""
    # An empty config has no keys: flatten would make its root a leaf with an empty key path.
    before = flatten(old, lists=False) if old else {}
    after = flatten(new, lists=False) if new else {}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        if key not in after:
            changes.append(KeyChange(key, "removed", before[key], None))
        elif key not in before:
            changes.append(KeyChange(key, "added", None, after[key]))
        elif not _same(before[key], after[key]):
            changes.append(KeyChange(key, "changed", before[key], after[key]))
    return tuple(changes)


def _same(a: Any, b: Any) -> bool:
    """Equal as served JSON: 1, 1.0 and True are equal in Python, but not in JSON."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same(v, b[k]) for k, v in a.items())
    return bool(a == b) or (a != a and b != b)  # NaN cannot be served, but stays itself


SECRET_CHANGED = "<secret changed>"


def secret_keys(revision: CompiledRevision | None) -> dict[tuple[str, str], set[str]]:
    """The key paths, as diffs name them (lists whole), that hold a secret, per config."""
    found: dict[tuple[str, str], set[str]] = {}
    if revision is None or not revision.secrets:
        return found
    for key, config in revision.configs.items():
        for path, leaf in iter_leaves(config.tree):
            if leaf.source in revision.secrets:
                whole = next((i for i, part in enumerate(path) if isinstance(part, int)), None)
                found.setdefault(key, set()).add(format_path(path[:whole]))
    return found


def mask_secrets(
    changes: list[ConfigChange],
    old: Mapping[tuple[str, str], set[str]],
    new: Mapping[tuple[str, str], set[str]],
) -> list[ConfigChange]:
    """The changes with every secret's value, old and new, shown as "<secret changed>"."""
    if not old and not new:
        return changes
    masked = []
    for change in changes:
        hidden = old.get((change.environment, change.service), set()) | new.get(
            (change.environment, change.service), set()
        )
        keys = tuple(
            k._replace(
                old=SECRET_CHANGED if k.status != "added" else None,
                new=SECRET_CHANGED if k.status != "removed" else None,
            )
            if k.key in hidden
            else k
            for k in change.keys
        )
        masked.append(change._replace(keys=keys))
    return masked


def diff_revisions(
    old: CompiledRevision | None, new: CompiledRevision | None
) -> list[ConfigChange]:
    """Every (environment, service) whose effective config differs, in environment order;
    secrets show as "<secret changed>", never their values.

    A config that is the very object in both (an incremental compile hands back the same
    Config when its inputs did not change) is not compared: after a one-file commit only the
    configs that file feeds are.
    """
    before = old.configs if old else {}
    after = new.configs if new else {}
    same = {k for k, c in before.items() if after.get(k) is c}
    changes = diff_configs(
        {k: c.value for k, c in before.items() if k not in same},
        {k: c.value for k, c in after.items() if k not in same},
        [*(new.environments if new else ()), *(old.environments if old else ())],
    )
    return mask_secrets(changes, secret_keys(old), secret_keys(new))


def diff_configs(
    old: Mapping[tuple[str, str], Any], new: Mapping[tuple[str, str], Any], order: list[str]
) -> list[ConfigChange]:
    """Changes between two sets of configs by (environment, service); order ranks environments."""
    rank = {env: i for i, env in reversed(list(enumerate(order)))}
    changes = []
    for key in sorted(old.keys() | new.keys(), key=lambda k: (rank.get(k[0], len(rank)), k)):
        status: Status = "changed"
        if key not in old:
            status = "added"
        elif key not in new:
            status = "removed"
        keys_changed = diff_values(old.get(key), new.get(key))
        if keys_changed or status != "changed":
            changes.append(ConfigChange(key[0], key[1], status, keys_changed))
    return changes


def _show(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


def to_text(changes: list[ConfigChange]) -> str:
    """A plain-text report, one line per changed key."""
    if not changes:
        return "no effective changes\n"
    lines = []
    for change in changes:
        lines.append(f"{change.environment}/{change.service} ({change.status})")
        for key in change.keys:
            if key.status == "added":
                lines.append(f"  + {key.key}: {_show(key.new)}")
            elif key.status == "removed":
                lines.append(f"  - {key.key}: {_show(key.old)}")
            else:
                lines.append(f"  ~ {key.key}: {_show(key.old)} -> {_show(key.new)}")
    return "\n".join(lines) + "\n"


def _code(text: str) -> str:
    """text as a code span in a Markdown table: pipes escaped (else they split the cell), and
    fenced by more backticks than any run in it (else that run would end the span)."""
    text = text.replace("|", "\\|")
    fence = "`" * (max((len(run) for run in re.findall("`+", text)), default=0) + 1)
    pad = " " if text[:1] == "`" or text[-1:] == "`" else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _cell(value: Any, present: bool) -> str:
    return _code(_show(value)) if present else ""


def to_markdown(changes: list[ConfigChange], base: str = "", head: str = "") -> str:
    """A pull-request comment: a summary line and one table per changed config."""
    title = "### gitconf: effective configuration changes"
    if base or head:
        title += f" ({base} → {head})"
    if not changes:
        return f"{title}\n\nNo effective configuration changes.\n"
    configs = len(changes)
    keys = sum(len(c.keys) for c in changes)
    out = [title, "", f"{keys} key(s) in {configs} config(s).", ""]
    for change in changes:
        out.append(f"#### `{change.environment}/{change.service}` ({change.status})")
        out.append("")
        out.append("| key | before | after |")
        out.append("|---|---|---|")
        for key in change.keys:
            out.append(
                f"| {_code(key.key)} | {_cell(key.old, key.status != 'added')} "
                f"| {_cell(key.new, key.status != 'removed')} |"
            )
        out.append("")
    return "\n".join(out)


def to_doc(changes: list[ConfigChange]) -> list[dict[str, Any]]:
    """Changes as plain JSON-ready values."""
    return [
        {
            "environment": c.environment,
            "service": c.service,
            "status": c.status,
            "changes": [k._asdict() for k in c.keys],
        }
        for c in changes
    ]


def to_json_report(changes: list[ConfigChange]) -> str:
    """Machine-readable changes."""
    return json.dumps(to_doc(changes), indent=2, ensure_ascii=False) + "\n"
