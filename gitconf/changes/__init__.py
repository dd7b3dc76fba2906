"""Changing config through gitconf: exact edits of layer files, validated before anything is written.

- `edit.py`: one layer file's new bytes for a list of sets and unsets (pure).
- `layers.py`: which layer file each key of an edit lands in (pure).
- `apply.py`: a whole change applied to a FileSet, compiled, with its effective diff (pure).
"""
