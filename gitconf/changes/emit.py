"""JSON values written as YAML text in a file's own style, read back as gitconf reads them.

Every scalar is written the simplest way that gitconf's parser (YAML 1.2 core schema) reads
back as the very value: `yes` and `2024-06-20` stay plain strings, `"true"`, `"1"`, `"null"`
and `""` are quoted. Each plain or block candidate is checked by parsing it with gitconf's
parser, so a rule missed here costs a quote, never a wrong value. Strings are never folded,
whatever their length.
"""

from __future__ import annotations

import math
from typing import Any

from gitconf.changes.document import Style
from gitconf.core.model import KeyPath, format_path
from gitconf.core.parse import parse_yaml
from gitconf.core.scalars import MAX_INT_DIGITS, resolve_plain

__all__ = ["block_lines", "entry_lines", "flow_text", "json_problem", "key_text", "scalar_text"]

_INDICATORS = frozenset("-?:,[]{}#&*!|>'\"%@`")
_FLOW_INDICATORS = frozenset(",[]{}")
_ESCAPES = {'"': '\\"', "\\": "\\\\", "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def json_problem(value: Any, path: KeyPath = ()) -> tuple[KeyPath, str] | None:
    """Where and why value is not a JSON value gitconf can write, or None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, str):
        return (
            (path, "a string with a lone surrogate (not UTF-8 text)") if _surrogate(value) else None
        )
    if isinstance(value, int):
        if len(str(abs(value))) > MAX_INT_DIGITS:
            return path, f"an integer of more than {MAX_INT_DIGITS:,} digits"
        return None
    if isinstance(value, float):
        return None if math.isfinite(value) else (path, f"{value!r} is not a JSON number")
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = json_problem(item, (*path, i))
            if found:
                return found
        return None
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                return path, f"key {key!r} is not a string"
            if _surrogate(key):
                return path, "a key with a lone surrogate (not UTF-8 text)"
            found = json_problem(item, (*path, key))
            if found:
                return found
        return None
    return path, f"a {type(value).__name__} is not a JSON value"


def _surrogate(text: str) -> bool:
    """Whether text holds a lone surrogate, which no UTF-8 file can (JSON's \\ud800 reads as one)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(ch: str) -> bool:
    # YAML's printable set, less the characters libyaml reads as line breaks or a BOM.
    code = ord(ch)
    if ch in "\t\n":
        return True
    if code < 0x20 or 0x7F <= code <= 0x9F or code in (0x2028, 0x2029, 0xFEFF):
        return False
    return not (0xD800 <= code <= 0xDFFF or code in (0xFFFE, 0xFFFF))


def _reads_back(text: str, expected: str, where: str) -> bool:
    """Whether gitconf's parser reads text, written as where says, as the string expected."""
    if where == "key":
        doc = f"{text}: 0\n"
    elif where == "flow":
        doc = f"k: [{text}]\n"
    else:
        doc = f"k: {text}\n"
    tree, problems = parse_yaml("<value>", doc.encode())
    if tree is None or problems:
        return False
    if where == "key":
        return list(tree.value) == [expected]
    node = tree.value.get("k")
    if node is None:
        return False
    if where == "flow":
        if node.kind != "seq" or len(node.value) != 1:
            return False
        node = node.value[0]
    return node.kind == "scalar" and node.tag is None and node.value == expected


def _plain(text: str, flow: bool, where: str) -> bool:
    """Whether text can be written without quotes and read back as the same string."""
    if not text or text != text.strip() or text[0] in _INDICATORS or text == "<<":
        return False
    if any(ch in "\n\r\t" or not _printable(ch) for ch in text):
        return False
    if ": " in text or " #" in text or text.endswith(":"):
        return False
    if flow and any(ch in _FLOW_INDICATORS for ch in text):
        return False
    resolved = resolve_plain(text)
    if not isinstance(resolved, str):
        return False
    return _reads_back(text, text, where)


def _double(text: str) -> str:
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif not _printable(ch):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _single_ok(text: str) -> bool:
    return all(_printable(ch) and ch not in "\n\t" for ch in text)


def _quoted(text: str, quote: str) -> str:
    if quote == "'" and _single_ok(text):
        return "'" + text.replace("'", "''") + "'"
    return _double(text)


def scalar_text(value: Any, style: Style, *, flow: bool = False, quote: str = "") -> str:
    """A scalar as YAML text on one line; quote ("'" or '"') keeps a string quoted that way."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    assert isinstance(value, str)
    if quote in ("'", '"'):
        return _quoted(value, quote)
    if _plain(value, flow, "flow" if flow else "block"):
        return value
    return _quoted(value, style.quote)


def key_text(key: str, style: Style, *, flow: bool = False) -> str:
    """A mapping key as YAML text: plain when gitconf reads it back as the same key."""
    if _plain(key, flow, "key"):
        return key
    return _quoted(key, style.quote)


def flow_text(value: Any, style: Style) -> str:
    """A value in flow style: `{a: 1, b: [x, y]}`."""
    if isinstance(value, dict):
        inner = ", ".join(
            f"{key_text(k, style, flow=True)}: {flow_text(v, style)}" for k, v in value.items()
        )
        return "{" + inner + "}"
    if isinstance(value, list):
        return "[" + ", ".join(flow_text(v, style) for v in value) + "]"
    return scalar_text(value, style, flow=True)


def block_scalar(
    text: str, col: int, folded: bool = False, single: bool = False
) -> tuple[str, list[str]] | None:
    """A multi-line string as a block scalar: its header (`|`, `|-`, `|+`, or `>` for one line
    when folded) and its lines indented to col; None when it cannot be one. A one-line string
    is one only if single (it replaces a block scalar)."""
    if "\n" not in text.rstrip("\n") and not (folded or single):
        return None
    if not text or any(ch == "\r" or not _printable(ch) for ch in text):
        return None
    body = text[:-1] if text.endswith("\n") else text
    lines = body.split("\n")
    first = next((line for line in lines if line), "")
    if first.startswith((" ", "\t")) or any(line.strip() == "" and line for line in lines):
        return None  # leading spaces would need an indentation indicator
    trailing = len(text) - len(text.rstrip("\n"))
    chomp = "-" if trailing == 0 else "" if trailing == 1 else "+"
    if folded:
        if len(lines) != 1 or chomp == "+":
            return None
        header = ">" + chomp
    else:
        header = "|" + chomp
    indented = [" " * col + line if line else "" for line in lines]
    if not _block_reads_back(header, lines, text):
        return None
    return header, indented


def _block_reads_back(header: str, lines: list[str], expected: str) -> bool:
    doc = "k: " + header + "\n" + "".join(f"  {line}\n" if line else "\n" for line in lines)
    tree, problems = parse_yaml("<value>", doc.encode())
    if tree is None or problems:
        return False
    node = tree.value.get("k")
    return node is not None and node.kind == "scalar" and node.value == expected


def _nonempty(value: Any) -> bool:
    return isinstance(value, dict | list) and bool(value)


def entry_lines(head: str, value: Any, col: int, style: Style, quote: str = "") -> list[str]:
    """The lines of `head: value` in block style; head is the indented key with its colon.

    col is the key's column: a nested mapping goes `style.indent` deeper, a list
    `style.seq_indent` deeper, a multi-line string's lines `style.indent` deeper.
    """
    if isinstance(value, dict) and value:
        return [head, *block_lines(value, col + style.indent, style)]
    if isinstance(value, list) and value:
        return [head, *block_lines(value, col + style.seq_indent, style)]
    if isinstance(value, str) and not quote:
        block = block_scalar(value, col + style.indent)
        if block is not None:
            return [f"{head} {block[0]}", *block[1]]
    return [
        f"{head} {flow_text(value, style) if not isinstance(value, str) else scalar_text(value, style, quote=quote)}"
    ]


def block_lines(value: Any, col: int, style: Style) -> list[str]:
    """A non-empty mapping or list in block style, its lines indented to col."""
    lines: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            lines += entry_lines(" " * col + key_text(key, style) + ":", item, col, style)
        return lines
    inner = col + style.dash_gap
    for item in value:
        dash = " " * col + "-" + " " * (style.dash_gap - 1)
        if _nonempty(item):
            sub = block_lines(item, inner, style)
            lines += [dash + sub[0][inner:], *sub[1:]]
            continue
        block = block_scalar(item, inner) if isinstance(item, str) else None
        if block is not None:
            lines += [dash + block[0], *block[1]]
        else:
            lines.append(dash + flow_text(item, style))
    return lines


def describe(path: KeyPath) -> str:
    """A key path for a message."""
    return format_path(path) or "(the top level)"
