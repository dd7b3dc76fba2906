"""Which layer file an edit of a key lands in (DESIGN 8).

For environment E, service S and key K:
1. the `layer` the caller names, if it is a layer of (E, S) — or E's own
   `environments/E/S.yaml`, which is created if missing;
2. else the file that sets K now (what `gitconf explain E S K` shows), if it is one of E's own
   layers (a file under `environments/E/`);
3. else E's own layer of S: `environments/E/S.yaml` (created if missing), or the last file of
   the folder `environments/E/S/` for a service written as a folder (the file that wins).
Each key is placed on its own, so one edit may change two files (a key set in
`environments/E/_all.yaml` stays there, a new key goes to `environments/E/S.yaml`).
"""

from __future__ import annotations

from gitconf.changes.errors import NotALayer
from gitconf.core.layers import Layout
from gitconf.core.model import CompiledRevision, KeyPath, find

__all__ = ["choose_layer", "own_layer"]


def own_layer(layout: Layout, env: str, service: str) -> str:
    """The environment's own layer file for the service: the one a new key goes to."""
    files = layout.files.get((env, service), [])
    if files:
        return files[-1]
    return f"environments/{env}/{service}.yaml"


def choose_layer(
    revision: CompiledRevision,
    layout: Layout,
    env: str,
    service: str,
    path: KeyPath,
    layer: str | None = None,
) -> str:
    """The repository path of the layer file the edit of path lands in."""
    layers = layout.layers(revision.manifest, env, service)
    own = own_layer(layout, env, service)
    if layer is not None:
        wanted = layer.removeprefix("./")
        if wanted in layers or wanted == own:
            return wanted
        listed = ", ".join([*layers, *([own] if own not in layers else [])])
        raise NotALayer(
            f"{layer!r} is not a layer of {env}/{service}",
            layer=layer,
            hint=f"its layers, lowest precedence first: {listed}",
        )
    config = revision.configs[(env, service)]
    node, covered = find(config.tree, path)
    if covered == path:
        setter = node.source.path
        if setter.startswith(f"environments/{env}/") and setter in layers:
            return setter
    return own
