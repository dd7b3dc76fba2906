"""Plain scalars under the YAML 1.2 core schema, and how long an integer gitconf serves."""

from __future__ import annotations

import math
import re
from typing import Any, NamedTuple

from gitconf.core.model import TAG_APPEND, TAG_DELETE, TAG_REPLACE

__all__ = [
    "GITCONF_TAGS",
    "MAP",
    "MAX_INT_DIGITS",
    "SEQ",
    "Refusal",
    "is_integer",
    "resolve_plain",
    "tagged_scalar",
    "unserved_number",
]

MAP = "tag:yaml.org,2002:map"
SEQ = "tag:yaml.org,2002:seq"
GITCONF_TAGS = {"!delete": TAG_DELETE, "!replace": TAG_REPLACE, "!append": TAG_APPEND}
_STR = "tag:yaml.org,2002:str"
_EXPECTED = {
    "tag:yaml.org,2002:int": int,
    "tag:yaml.org,2002:float": float,
    "tag:yaml.org,2002:bool": bool,
    "tag:yaml.org,2002:null": type(None),
}

# Python converts an integer to decimal (to serve it as JSON or YAML) only up to 4,300 digits
# (sys.get_int_max_str_digits): gitconf refuses longer integers, in every notation, where they
# are written rather than when a revision is served.
MAX_INT_DIGITS = 4300
_INT_LIMIT = 10**MAX_INT_DIGITS

# YAML 1.2 core schema (https://yaml.org/spec/1.2.2/#1023-core-schema).
_NULL_RE = re.compile(r"(?:~|null|Null|NULL|)\Z")
_BOOL_RE = re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z")
_INT_RE = re.compile(r"[-+]?[0-9]+\Z")
_OCT_RE = re.compile(r"0o[0-7]+\Z")
_HEX_RE = re.compile(r"0x[0-9a-fA-F]+\Z")
_FLOAT_RE = re.compile(r"[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?\Z")
_INF_RE = re.compile(r"([-+]?)\.(?:inf|Inf|INF)\Z")
_NAN_RE = re.compile(r"\.(?:nan|NaN|NAN)\Z")

# Every non-string of the core schema starts with one of these (or is empty): most plain
# scalars of a config are names and URLs, which this one test leaves as strings.
_NON_STRING_START = frozenset("0123456789+-.~tTfFnN")


def _integer(digits: str, base: int, negative: bool = False) -> int | float:
    """The integer, or infinity when its decimal form would pass MAX_INT_DIGITS."""
    if base == 10:
        digits = digits.lstrip("0") or "0"
        if len(digits) > MAX_INT_DIGITS:
            return -math.inf if negative else math.inf
        value = int(digits, 10)
    else:
        # Bases 8 and 16 convert in linear time whatever the length; the decimal form is
        # what has a limit.
        value = int(digits, base)
        if value >= _INT_LIMIT:
            return math.inf
    return -value if negative else value


def resolve_plain(text: str) -> Any:
    """The value of a plain (unquoted) scalar under the YAML 1.2 core schema.

    An integer too long to serve (see MAX_INT_DIGITS) resolves to infinity, which the parse
    refuses as it does `.inf`.
    """
    if text and text[0] not in _NON_STRING_START:
        return text
    if _NULL_RE.match(text):
        return None
    if _BOOL_RE.match(text):
        return text[0] in "tT"
    if _INT_RE.match(text):
        if len(text) <= MAX_INT_DIGITS:
            try:
                return int(text, 10)
            except ValueError:  # an interpreter whose own limit is lower: refused as too long
                return math.inf
        sign = text[0] in "+-"
        return _integer(text[sign:], 10, text[0] == "-")
    if _OCT_RE.match(text):
        return _integer(text[2:], 8)
    if _HEX_RE.match(text):
        return _integer(text[2:], 16)
    if _FLOAT_RE.match(text):
        return float(text)
    if m := _INF_RE.match(text):
        return -math.inf if m.group(1) == "-" else math.inf
    if _NAN_RE.match(text):
        return math.nan
    return text


def is_integer(text: str) -> bool:
    """Whether a plain scalar is an integer of the core schema (decimal, octal or hex)."""
    return bool(_INT_RE.match(text) or _OCT_RE.match(text) or _HEX_RE.match(text))


class Refusal(NamedTuple):
    """Why a scalar is not a value gitconf reads, and how to fix it."""

    message: str
    hint: str = ""


def short(text: str) -> str:
    """A scalar quoted for a message; a long one cut to its start and its length."""
    if len(text) <= 40:
        return repr(text)
    return f"{text[:24]!r}... ({len(text):,} characters)"


def unserved_number(text: str) -> Refusal:
    """Why a plain scalar that resolved to NaN or an infinity is refused."""
    if is_integer(text):
        return Refusal(
            f"{short(text)} is an integer of more than {MAX_INT_DIGITS:,} decimal digits, "
            "more than gitconf can serve",
            "quote it to keep it as a string",
        )
    return Refusal(
        f"{short(text)} is a number JSON cannot carry (NaN, infinity or too large)",
        "quote it to keep it as a string",
    )


def tagged_scalar(text: str, tag: str, plain: bool) -> tuple[Any, str | None] | Refusal:
    """The value of a scalar written with a tag, and the merge tag of gitconf it carries.

    `plain` is whether the scalar is unquoted (for the non-specific tag `!`, libyaml's
    implicit flag, as PyYAML's composer reads it).
    """
    ours = GITCONF_TAGS.get(tag)
    if ours == TAG_APPEND:
        return Refusal("!append applies to a list", "write !append [item, ...]")
    if ours == TAG_DELETE:
        if text not in ("", "~", "null"):
            return Refusal("!delete takes no value", "write `key: !delete`")
        return None, ours
    if ours is not None or tag == "!":
        value = resolve_plain(text) if plain else text
    elif tag == _STR:
        return text, None
    else:
        expected = _EXPECTED.get(tag)
        if expected is None:
            return Refusal(
                f"unsupported tag {tag!r}",
                "gitconf reads YAML 1.2 core values: strings, numbers, true/false, null",
            )
        value = resolve_plain(text)
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        too_long = type(value) is float and math.isinf(value) and is_integer(text)
        if type(value) is not expected and not (expected is int and too_long):
            return Refusal(f"{short(text)} is not a valid {tag}")
    if isinstance(value, float) and not math.isfinite(value):
        return unserved_number(text)
    return value, ours
