"""A SOPS file's `sops:` metadata, read from SOPS's own source (getsops/sops, 3.x).

- stores/stores.go (`metadata`, `ToInternal`, `internalKeygroups`): the metadata keys, the
  one encryption rule a file may have (`_unencrypted` suffix by default), key groups.
- stores/metadata.go (`ExtractMetadata`): the top-level `sops` mapping is the metadata.
- sops.go (`shouldBeEncrypted`): a rule matches any mapping key on a value's path.
- cmd/sops/common/common.go (`DecryptTree`): the MAC's additional data is `lastmodified`
  formatted again as RFC 3339.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from gitconf.core.model import KeyPath, Node, format_path
from gitconf.errors import Problem, Source
from gitconf.secrets.sops import parse_enc

__all__ = [
    "DEFAULT_UNENCRYPTED_SUFFIX",
    "METADATA_KEY",
    "AgeStanza",
    "Metadata",
    "Rule",
    "is_sops_tree",
    "parse_metadata",
]

METADATA_KEY = "sops"
DEFAULT_UNENCRYPTED_SUFFIX = "_unencrypted"

# The key sources of stores/stores.go besides age, by their metadata key.
_OTHER_KEYS = {
    "pgp": "PGP",
    "kms": "AWS KMS",
    "gcp_kms": "GCP KMS",
    "azure_kv": "Azure Key Vault",
    "hc_vault": "HashiCorp Vault",
    "hckms": "Huawei Cloud KMS",
}
# The rules of stores/stores.go ToInternal, of which a file may have one.
_RULES = (
    "unencrypted_suffix",
    "encrypted_suffix",
    "unencrypted_regex",
    "encrypted_regex",
    "unencrypted_comment_regex",
    "encrypted_comment_regex",
)
# Keys SOPS writes in every file's metadata: a top-level `sops` mapping with one of them is
# SOPS metadata (a config may have a `sops:` section of its own that has none of them).
_ALWAYS_WRITTEN = ("mac", "lastmodified", "version")

_FIX_FILE = "encrypt the file again with sops (`sops --encrypt --in-place FILE` on its plaintext)"


class AgeStanza(NamedTuple):
    """One `sops.age[]` entry: the recipient and the data key wrapped for it (armored age)."""

    recipient: str
    enc: str
    source: Source


class Rule(NamedTuple):
    """The file's one rule for which values are encrypted (stores/stores.go ToInternal)."""

    name: str  # one of _RULES
    value: str
    matches: Callable[[str], bool]

    @property
    def encrypts_matches(self) -> bool:
        """Whether a match on the path encrypts the value (encrypted_*) or leaves it (unencrypted_*)."""
        return self.name.startswith("encrypted")


class Metadata(NamedTuple):
    """A SOPS file's `sops:` metadata, checked."""

    source: Source
    version: str
    lastmodified: str  # as written
    mac_aad: str  # lastmodified as Go formats it again: the MAC's additional data
    mac: str  # the ENC value holding the MAC
    mac_source: Source
    age: tuple[AgeStanza, ...]
    others: tuple[str, ...]  # the other kinds of key the data key is wrapped for ("PGP", ...)
    rule: Rule
    mac_only_encrypted: bool
    shamir_threshold: int
    key_groups: int


def is_sops_tree(tree: Node) -> bool:
    """Whether a parsed file is a SOPS file: a top-level `sops` mapping of SOPS metadata."""
    meta = tree.value.get(METADATA_KEY) if tree.kind == "map" else None
    return (
        meta is not None
        and meta.kind == "map"
        and any(key in meta.value for key in _ALWAYS_WRITTEN)
    )


class _Reader:
    """Reads the fields of the `sops` mapping, collecting a problem for each bad one."""

    def __init__(self, path: str, meta: Node) -> None:
        self.path = path
        self.meta = meta
        self.problems: list[Problem] = []

    def fail(
        self, node: Node, key: str | int | tuple[str | int, ...], message: str, hint: str
    ) -> None:
        where: KeyPath = (METADATA_KEY, *(key if isinstance(key, tuple) else (key,)))
        self.problems.append(Problem(node.source, message, format_path(where), hint))

    def string(self, key: str, required: bool = False) -> tuple[str, Source]:
        node = self.meta.value.get(key)
        if node is None or (node.kind == "scalar" and node.value is None):
            if required:
                self.fail(self.meta, key, f"the SOPS metadata has no {key!r}", _FIX_FILE)
            return "", self.meta.source
        if node.kind != "scalar" or not isinstance(node.value, str):
            self.fail(node, key, f"{key!r} must be a string", _FIX_FILE)
            return "", node.source
        return node.value, node.source

    def items(self, node: Node | None, key: tuple[str | int, ...]) -> tuple[Node, ...]:
        if node is None or (node.kind == "scalar" and node.value is None):
            return ()
        if node.kind != "seq":
            self.fail(node, key, f"{format_path(key)!r} must be a list", _FIX_FILE)
            return ()
        return tuple(node.value)


def _rfc3339_aad(text: str) -> str | None:
    """`text` parsed as Go's time.Parse(time.RFC3339) and formatted again, or None if invalid.

    Go accepts fractional seconds when parsing and drops them when formatting; an offset of
    zero is formatted as `Z`.
    """
    match = re.fullmatch(
        r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d+)?(Z|[+-]\d{2}:\d{2})", text
    )
    if match is None:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    try:
        datetime(year, month, day, hour, minute, second)
    except ValueError:
        return None
    offset = match.group(7)
    if offset != "Z":
        hours, minutes = int(offset[1:3]), int(offset[4:6])
        if hours > 23 or minutes > 59:
            return None
        if hours == 0 and minutes == 0:
            offset = "Z"
    return f"{year:04d}-{month:02d}-{day:02d}T{hour:02d}:{minute:02d}:{second:02d}{offset}"


def _version_problem(version: str) -> str | None:
    match = re.fullmatch(r"(\d+)\.(\d+)(?:\.\d+)?(?:[-+].*)?", version)
    if match is None:
        return f"version {version!r} is not a SOPS version"
    if match.group(1) != "3":
        return f"the file was written by SOPS {version}; gitconf reads files of SOPS 3"
    return None


def _rule(reader: _Reader) -> Rule:
    found: list[tuple[str, str, Source]] = []
    for name in _RULES:
        value, source = reader.string(name)
        if value:
            found.append((name, value, source))
    if len(found) > 1:
        names = ", ".join(name for name, _, _ in found)
        reader.fail(
            reader.meta,
            (),
            f"the SOPS metadata has more than one encryption rule ({names})",
            "SOPS refuses such a file too; keep one rule and encrypt the file again",
        )
    if not found:
        suffix = DEFAULT_UNENCRYPTED_SUFFIX
        return Rule("unencrypted_suffix", suffix, lambda key: key.endswith(suffix))
    name, value, source = found[0]
    if name.endswith("comment_regex"):
        reader.problems.append(
            Problem(
                source,
                f"{name} is not supported: it decides by YAML comments, which gitconf does not read",
                format_path((METADATA_KEY, name)),
                "encrypt the file with --encrypted-regex or an (un)encrypted suffix instead",
            )
        )
    if name.endswith("suffix"):
        return Rule(name, value, lambda key: key.endswith(value))
    try:
        # Go's regexp.Match: a search; RE2's \d, \w, \s and \b are ASCII.
        pattern = re.compile(value, re.ASCII)
    except re.error as exc:
        reader.problems.append(
            Problem(
                source,
                f"{name} {value!r} is not a regular expression gitconf can read ({exc.msg})",
                format_path((METADATA_KEY, name)),
                "use a plain regular expression such as '^(password|token)$'",
            )
        )
        return Rule(name, value, lambda key: False)
    search = pattern.search
    return Rule(name, value, lambda key: search(key) is not None)


def _age(reader: _Reader, node: Node | None, where: tuple[str | int, ...]) -> list[AgeStanza]:
    stanzas: list[AgeStanza] = []
    for index, item in enumerate(reader.items(node, where)):
        at = (*where, index)
        if item.kind != "map":
            reader.fail(item, at, "an age entry must be a mapping of recipient and enc", _FIX_FILE)
            continue
        values: dict[str, str] = {}
        for key in ("recipient", "enc"):
            child = item.value.get(key)
            if (
                child is None
                or child.kind != "scalar"
                or not isinstance(child.value, str)
                or not child.value
            ):
                reader.fail(child or item, (*at, key), f"the age entry has no {key!r}", _FIX_FILE)
            else:
                values[key] = child.value
        if len(values) == 2:
            stanzas.append(AgeStanza(values["recipient"], values["enc"], item.source))
    return stanzas


def _others(reader: _Reader, group: Node, where: tuple[str | int, ...]) -> list[str]:
    kinds = []
    for key, kind in _OTHER_KEYS.items():
        if reader.items(group.value.get(key), (*where, key)):
            kinds.append(kind)
    return kinds


def parse_metadata(path: str, tree: Node) -> tuple[Metadata | None, list[Problem]]:
    """The checked `sops:` metadata of a SOPS file (is_sops_tree), or every problem with it.

    Refused, with a problem that says so: Shamir key groups (more than one key group), a file
    whose data key is wrapped for no age recipient (PGP, KMS, Vault only), the comment rules,
    versions other than SOPS 3.
    """
    meta: Node = tree.value[METADATA_KEY]
    reader = _Reader(path, meta)
    version, version_source = reader.string("version", required=True)
    if version and (message := _version_problem(version)):
        reader.fail(Node("scalar", version, version_source), "version", message, _FIX_FILE)
    lastmodified, lastmodified_source = reader.string("lastmodified", required=True)
    aad = _rfc3339_aad(lastmodified) if lastmodified else ""
    if aad is None:
        reader.fail(
            Node("scalar", lastmodified, lastmodified_source),
            "lastmodified",
            f"lastmodified {lastmodified!r} is not an RFC 3339 time",
            _FIX_FILE,
        )
    mac, mac_source = reader.string("mac", required=True)
    if mac:
        enc = parse_enc(mac)
        if isinstance(enc, str):
            reader.fail(Node("scalar", mac, mac_source), "mac", f"the MAC {enc}", _FIX_FILE)
        elif enc.type != "str":
            reader.fail(
                Node("scalar", mac, mac_source), "mac", "the MAC is not of type str", _FIX_FILE
            )
    elif "mac" in meta.value:
        reader.fail(meta.value["mac"], "mac", "the file has no MAC (sops.mac is empty)", _FIX_FILE)
    rule = _rule(reader)
    only = meta.value.get("mac_only_encrypted")
    mac_only = False
    if only is not None and not (only.kind == "scalar" and only.value is None):
        if only.kind != "scalar" or not isinstance(only.value, bool):
            reader.fail(
                only, "mac_only_encrypted", "mac_only_encrypted must be true or false", _FIX_FILE
            )
        else:
            mac_only = only.value
    threshold_node = meta.value.get("shamir_threshold")
    threshold = 0
    if threshold_node is not None and threshold_node.value is not None:
        if type(threshold_node.value) is not int:
            reader.fail(
                threshold_node, "shamir_threshold", "shamir_threshold must be an integer", _FIX_FILE
            )
        else:
            threshold = threshold_node.value
    # stores/stores.go internalKeygroups: keys at the top of the metadata are one group, and
    # `key_groups` is read only when there are none.
    age = _age(reader, meta.value.get("age"), ("age",))
    others = _others(reader, meta, ())
    groups = 1 if age or others else 0
    if not groups:
        group_nodes = reader.items(meta.value.get("key_groups"), ("key_groups",))
        groups = len(group_nodes)
        if groups > 1:
            reader.problems.append(
                Problem(
                    meta.value["key_groups"].source,
                    f"the data key is split among {groups} key groups (Shamir secret sharing, "
                    f"threshold {threshold or groups}): gitconf does not support key groups",
                    format_path((METADATA_KEY, "key_groups")),
                    "encrypt the file for one or more age recipients without key groups: "
                    "`sops --encrypt --age <recipient>[,<recipient>...]`",
                )
            )
        elif groups == 1:
            group = group_nodes[0]
            if group.kind != "map":
                reader.fail(group, ("key_groups", 0), "a key group must be a mapping", _FIX_FILE)
            else:
                age = _age(reader, group.value.get("age"), ("key_groups", 0, "age"))
                others = _others(reader, group, ("key_groups", 0))
    if groups == 0:
        reader.fail(
            meta, (), "the SOPS metadata names no key that the data key is wrapped for", _FIX_FILE
        )
    elif groups == 1 and not age and not reader.problems:
        kinds = " and ".join(others)
        reader.problems.append(
            Problem(
                meta.source,
                f"the file's data key is wrapped for {kinds} only: gitconf decrypts with age keys",
                METADATA_KEY,
                "add an age recipient: `sops updatekeys FILE` after adding it to .sops.yaml, "
                "or `sops --rotate --in-place --add-age <recipient> FILE`",
            )
        )
    if reader.problems:
        return None, reader.problems
    assert aad is not None
    metadata = Metadata(
        source=meta.source,
        version=version,
        lastmodified=lastmodified,
        mac_aad=aad,
        mac=mac,
        mac_source=mac_source,
        age=tuple(age),
        others=tuple(others),
        rule=rule,
        mac_only_encrypted=mac_only,
        shamir_threshold=threshold,
        key_groups=groups,
    )
    return metadata, []
