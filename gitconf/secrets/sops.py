"""SOPS's encrypted values, read from SOPS's own source (getsops/sops, 3.x); nothing decrypts here.

- aes/cipher.go (`parse`, `Decrypt`, `Encrypt`): `ENC[AES256_GCM,data:,iv:,tag:,type:]`, a
  32-byte nonce, the types and how each is converted; an empty string is never encrypted.
- sops.go (`ToBytes`, MACOnlyEncryptedInitialization): the bytes of each value that the MAC
  hashes, floats as Go's strconv.FormatFloat(f, 'f', -1, 64) writes them.
"""

from __future__ import annotations

import binascii
import re
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

__all__ = [
    "ENC_PREFIX",
    "MAC_ONLY_ENCRYPTED_INIT",
    "STAND_INS",
    "EncValue",
    "convert",
    "format_float",
    "mac_bytes",
    "parse_enc",
]

# sops.go MACOnlyEncryptedInitialization: sha256(b"sops"), hashed first when only the encrypted
# values count, so that the two kinds of MAC always differ.
MAC_ONLY_ENCRYPTED_INIT = bytes.fromhex(
    "8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69"
)
NONCE_SIZE = 32  # aes/cipher.go nonceSize
TAG_SIZE = 16

# aes/cipher.go `encre`: anchored at the start only, greedy groups.
_ENC = re.compile(r"ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]")
ENC_PREFIX = "ENC[AES256_GCM,"

# What key-less validation puts in place of a value it cannot decrypt, by the ENC value's
# type: a value of that type, so that schema `type` checks run (aes/cipher.go's types; a
# "time" is served as its RFC 3339 text, "bytes" as text).
STAND_INS: dict[str, Any] = {
    "str": "",
    "int": 0,
    "float": 0.0,
    "bool": False,
    "time": "1970-01-01T00:00:00Z",
    "bytes": "",
}


class EncValue(NamedTuple):
    """One `ENC[AES256_GCM,...]` value, its parts decoded."""

    data: bytes
    iv: bytes
    tag: bytes
    type: str


def parse_enc(text: str) -> EncValue | str:
    """The parts of an ENC value, or what is wrong with it (aes/cipher.go parse)."""
    match = _ENC.match(text)
    if match is None:
        return "is not a SOPS value of the form ENC[AES256_GCM,data:...,iv:...,tag:...,type:...]"
    parts = []
    for name, part in zip(("data", "iv", "tag"), match.groups()[:3], strict=True):
        try:
            # Go's base64.StdEncoding: the standard alphabet, padded.
            parts.append(binascii.a2b_base64(part, strict_mode=True))
        except (binascii.Error, ValueError):
            return f"its {name} is not valid base64"
    data, iv, tag = parts
    if len(iv) != NONCE_SIZE:
        return f"its iv has {len(iv)} bytes where SOPS writes {NONCE_SIZE}"
    if len(tag) != TAG_SIZE:
        return f"its tag has {len(tag)} bytes where AES-GCM has {TAG_SIZE}"
    return EncValue(data, iv, tag, match.group(4))


def format_float(value: float) -> str:
    """A float as Go's strconv.FormatFloat(value, 'f', -1, 64) writes it (sops.go ToBytes).

    The shortest digits that read back as the same float (Python's repr finds the same ones),
    written without an exponent: 1.0 is "1", 1e20 is "100000000000000000000", -0.0 is "-0".
    """
    text = format(Decimal(repr(value)), "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def mac_bytes(value: Any) -> bytes | None:
    """The bytes of a plaintext value that the MAC hashes (sops.go ToBytes); None: not hashed."""
    if value is None:
        return None  # sops.go walkValue: a nil value is not walked
    if isinstance(value, str):
        return value.encode()
    if value is True:
        return b"True"
    if value is False:
        return b"False"
    if isinstance(value, int):
        return str(value).encode()
    if isinstance(value, float):
        return format_float(value).encode()
    raise TypeError(f"no SOPS bytes for {type(value).__name__}")


_INT = re.compile(r"[+-]?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_BOOLS = {
    "1": True,
    "t": True,
    "T": True,
    "TRUE": True,
    "true": True,
    "True": True,
    "0": False,
    "f": False,
    "F": False,
    "FALSE": False,
    "false": False,
    "False": False,
}  # fmt: skip  (Go's strconv.ParseBool)
_INT64 = 2**63
_TIME = re.compile(r"(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})")


def _time_text(text: str) -> str | None:
    """An RFC 3339 time as Go's time.Time MarshalText writes it after UnmarshalText."""
    match = _TIME.fullmatch(text)
    if match is None:
        return None
    day, clock, fraction, offset = match.groups()
    try:
        datetime.fromisoformat(f"{day}T{clock}")
    except ValueError:
        return None
    if offset != "Z":
        delta = timedelta(hours=int(offset[1:3]), minutes=int(offset[4:6]))
        if delta >= timedelta(hours=24):
            return None
        if not delta:
            offset = "Z"
    fraction = (fraction or "").rstrip("0")
    return f"{day}T{clock}{'.' + fraction if fraction else ''}{offset}"


def convert(kind: str, plain: bytes) -> tuple[Any, bytes] | str:
    """A decrypted value as its type says (aes/cipher.go Decrypt), and its MAC bytes; or why not.

    Why not never quotes the plaintext: messages end up in logs and in /v1/status.
    """
    if kind in ("str", "bytes"):
        try:
            return plain.decode(), plain
        except UnicodeDecodeError:
            return "its plaintext is not UTF-8 text"
    try:
        text = plain.decode("ascii")
    except UnicodeDecodeError:
        return f"its plaintext is not a {kind}"
    if kind == "int":
        if not _INT.fullmatch(text) or not -_INT64 <= int(text) < _INT64:
            return "its plaintext (not shown: it is a secret) is not a 64-bit integer"
        value = int(text)
        return value, str(value).encode()
    if kind == "float":
        if not _FLOAT.fullmatch(text):
            return "its plaintext (not shown: it is a secret) is not a decimal number"
        number = float(text)
        if number in (float("inf"), float("-inf")):
            return "its plaintext (not shown: it is a secret) is a number JSON cannot carry"
        return number, format_float(number).encode()
    if kind == "bool":
        if text not in _BOOLS:
            return "its plaintext (not shown: it is a secret) is not a boolean"
        flag = _BOOLS[text]
        return flag, b"True" if flag else b"False"
    if kind == "time":
        when = _time_text(text)
        if when is None:
            return "its plaintext (not shown: it is a secret) is not an RFC 3339 time"
        return when, when.encode()
    if kind == "comment":
        return "it is an encrypted comment, not a value"
    return f"its type {kind!r} is not one SOPS writes"
