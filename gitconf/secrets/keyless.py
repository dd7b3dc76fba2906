"""What `gitconf validate` checks of a SOPS file without a key (DESIGN 11).

Checked: the `sops:` metadata (present, well formed, age recipients, a rule gitconf reads), a
MAC present and well formed, and every value the rule encrypts an ENC[...] value of a known
type. Each encrypted value is replaced by a stand-in of its recorded type (sops.py STAND_INS) so
that the schema's `type` checks run; the stand-ins' other schema checks, the MAC and the
decryption are reported as skipped, not failed. Needs neither pyrage nor cryptography.
"""

from __future__ import annotations

from typing import Any

from gitconf.core.model import Node
from gitconf.secrets.decrypt import SecretParse, Skipped, parse_sops
from gitconf.secrets.metadata import parse_metadata
from gitconf.secrets.sops import STAND_INS, EncValue
from gitconf.secrets.walk import walk

__all__ = ["check_tree", "check_yaml"]


def _stand_in(enc: EncValue, aad: str) -> tuple[Any, None] | str:
    if enc.type not in STAND_INS:
        if enc.type == "comment":
            return "the value is an encrypted comment, not a value"
        return f"the value's type {enc.type!r} is not one SOPS writes"
    return STAND_INS[enc.type], None


def check_tree(path: str, tree: Node) -> SecretParse:
    """A parsed SOPS file (is_sops_tree) checked without a key, its values stand-ins."""
    metadata, problems = parse_metadata(path, tree)
    if metadata is None:
        return SecretParse(None, problems, encrypted=True)
    walked = walk(path, tree, metadata, _stand_in)
    if walked.problems:
        return SecretParse(None, walked.problems, encrypted=True)
    count = len(walked.secrets)
    skipped = Skipped(
        metadata.mac_source,
        f"not decrypted (no age key given): the MAC was not verified, and the {count} "
        f"encrypted value{'s' if count != 1 else ''} were checked for their recorded type "
        "only; give --age-key-file to validate fully",
    )
    return SecretParse(walked.tree, [], True, walked.secrets, walked.sources, (skipped,))


def check_yaml(path: str, data: bytes) -> SecretParse:
    """Parse one config file and, if it is a SOPS file, check it without a key (check_tree)."""
    return parse_sops(path, data, lambda tree: check_tree(path, tree))
