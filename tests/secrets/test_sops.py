"""The SOPS format's pieces: Go's float text, RFC 3339 times, type conversion, ENC values."""

from __future__ import annotations

import pytest

from gitconf.secrets.metadata import _rfc3339_aad
from gitconf.secrets.sops import convert, format_float, mac_bytes, parse_enc

# What Go's strconv.FormatFloat(f, 'f', -1, 64) prints (the MAC's and ENC values' text).
GO_FLOATS = [
    (1.0, "1"),
    (1e20, "100000000000000000000"),
    (1e21, "1000000000000000000000"),
    (-0.5, "-0.5"),
    (3.14159, "3.14159"),
    (1e-7, "0.0000001"),
    (-0.0, "-0"),
    (0.0, "0"),
    (0.1, "0.1"),
    (0.30000000000000004, "0.30000000000000004"),
    (123456789012345680000.0, "123456789012345680000"),
    (2.0**53, "9007199254740992"),
    (5e-324, "0." + "0" * 323 + "5"),
    (1.5e300, "15" + "0" * 299),
]


@pytest.mark.parametrize(("value", "text"), GO_FLOATS)
def test_format_float(value: float, text: str) -> None:
    assert format_float(value) == text
    assert float(text) == value


def test_mac_bytes() -> None:
    assert mac_bytes("héllo") == "héllo".encode()
    assert mac_bytes(True) == b"True" and mac_bytes(False) == b"False"
    assert mac_bytes(42) == b"42" and mac_bytes(-7) == b"-7"
    assert mac_bytes(1.0) == b"1" and mac_bytes(2.5) == b"2.5"
    assert mac_bytes(None) is None


@pytest.mark.parametrize(
    ("text", "aad"),
    [
        ("2024-05-01T10:00:00Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00.123456Z", "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00+00:00", "2024-05-01T10:00:00Z"),
        ("2024-05-01T10:00:00-07:30", "2024-05-01T10:00:00-07:30"),
        ("2024-02-30T10:00:00Z", None),
        ("2024-05-01 10:00:00Z", None),
        ("2024-05-01T10:00:00", None),
        ("2024-05-01T10:00:00+24:00", None),
    ],
)
def test_lastmodified_as_go_formats_it(text: str, aad: str | None) -> None:
    assert _rfc3339_aad(text) == aad


@pytest.mark.parametrize(
    ("kind", "plain", "value", "hashed"),
    [
        ("str", "Grüße".encode(), "Grüße", "Grüße".encode()),
        ("bytes", b"raw", "raw", b"raw"),
        ("int", b"5432", 5432, b"5432"),
        ("int", b"+007", 7, b"7"),
        ("int", b"-9223372036854775808", -(2**63), b"-9223372036854775808"),
        ("float", b"1", 1.0, b"1"),
        ("float", b"100000000000000000000", 1e20, b"100000000000000000000"),
        ("float", b"1e-7", 1e-7, b"0.0000001"),
        ("bool", b"True", True, b"True"),
        ("bool", b"t", True, b"True"),
        ("bool", b"FALSE", False, b"False"),
        ("bool", b"0", False, b"False"),
        ("time", b"2024-01-01T10:00:00.500+02:00", "2024-01-01T10:00:00.5+02:00", b"2024-01-01T10:00:00.5+02:00"),
        ("time", b"2024-01-01T10:00:00+00:00", "2024-01-01T10:00:00Z", b"2024-01-01T10:00:00Z"),
    ],
)  # fmt: skip
def test_convert(kind: str, plain: bytes, value: object, hashed: bytes) -> None:
    converted = convert(kind, plain)
    assert converted == (value, hashed)
    assert type(converted[0]) is type(value)


@pytest.mark.parametrize(
    ("kind", "plain", "message"),
    [
        ("str", b"\xff", "not UTF-8"),
        ("int", b"1_000", "not a 64-bit integer"),
        ("int", b"9223372036854775808", "not a 64-bit integer"),
        ("int", b"1.5", "not a 64-bit integer"),
        ("float", b"1e400", "JSON cannot carry"),
        ("float", b"NaN", "not a decimal number"),
        ("float", b"0x1p-2", "not a decimal number"),
        ("bool", b"yes", "not a boolean"),
        ("time", b"yesterday", "not an RFC 3339 time"),
        ("comment", b"a comment", "encrypted comment"),
        ("decimal", b"1", "not one SOPS writes"),
    ],
)
def test_convert_refuses(kind: str, plain: bytes, message: str) -> None:
    refused = convert(kind, plain)
    assert isinstance(refused, str) and message in refused
    assert plain.decode(errors="replace") not in refused  # never the secret itself


IV = "A" * 43 + "="  # 32 bytes
TAG = "A" * 22 + "=="  # 16 bytes


def test_parse_enc() -> None:
    enc = parse_enc(f"ENC[AES256_GCM,data:aGk=,iv:{IV},tag:{TAG},type:str]")
    assert not isinstance(enc, str)
    assert (enc.data, len(enc.iv), len(enc.tag), enc.type) == (b"hi", 32, 16, "str")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("hunter2", "is not a SOPS value"),
        (f"ENC[AES256_GCM,data:aGk,iv:{IV},tag:{TAG},type:str]", "data is not valid base64"),
        (f"ENC[AES256_GCM,data:aGk=,iv:AAAA,tag:{TAG},type:str]", "iv has 3 bytes"),
        (f"ENC[AES256_GCM,data:aGk=,iv:{IV},tag:AAAA,type:str]", "tag has 3 bytes"),
        (f"ENC[AES128_GCM,data:aGk=,iv:{IV},tag:{TAG},type:str]", "is not a SOPS value"),
    ],
)
def test_parse_enc_refuses(text: str, message: str) -> None:
    refused = parse_enc(text)
    assert isinstance(refused, str) and message in refused
