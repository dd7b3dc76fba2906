"""Secrets in the config repository: SOPS YAML files encrypted for age recipients (DESIGN 11).

    keyring = load_keyring(key_file_paths(age_key_files, os.environ))   # KeyFileError
    result = read_yaml(path, data, keyring)      # in place of parse_yaml(path, data)
    result = check_yaml(path, data)              # `gitconf validate` without a key

Both give a SecretParse: the located tree (a SOPS file's without its `sops:` metadata, each
value at its ENC[...] scalar's line and column) or the problems, and where the secrets are.
Pure apart from reading the key files; decryption needs the `secrets` extra (pyrage and
cryptography), key-less checking does not.
"""

from gitconf.secrets.decrypt import SecretParse, Skipped, SopsError, decrypt_tree, read_yaml
from gitconf.secrets.keyless import check_tree, check_yaml
from gitconf.secrets.keys import (
    KEY_FILE_VARIABLE,
    KeyFileError,
    Keyring,
    key_file_paths,
    load_keyring,
)
from gitconf.secrets.metadata import is_sops_tree

__all__ = [
    "KEY_FILE_VARIABLE",
    "KeyFileError",
    "Keyring",
    "SecretParse",
    "Skipped",
    "SopsError",
    "check_tree",
    "check_yaml",
    "decrypt_tree",
    "is_sops_tree",
    "key_file_paths",
    "load_keyring",
    "read_yaml",
]
