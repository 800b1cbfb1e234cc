"""Small ONNX graph-editing helpers shared by export and the ONNX Runtime rewrite."""
from __future__ import annotations

import numpy as np


def initializer_arrays(g) -> dict[str, np.ndarray]:
    from onnx import numpy_helper

    return {i.name: numpy_helper.to_array(i) for i in g.initializer}


def producers(g) -> dict:
    return {o: n for n in g.node for o in n.output}


def consumers(g) -> dict[str, list]:
    out: dict[str, list] = {}
    for n in g.node:
        for name in n.input:
            out.setdefault(name, []).append(n)
    return out


def topological_sort(g) -> None:
    """Reorder g.node so every node follows the producers of its inputs (stable)."""
    available = {i.name for i in g.input} | {i.name for i in g.initializer} | {""}
    pending = list(g.node)
    ordered = []
    while pending:
        rest = []
        for n in pending:
            if all(i in available for i in n.input):
                ordered.append(n)
                available.update(n.output)
            else:
                rest.append(n)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or a dangling input near {rest[0].op_type}")
        pending = rest
    del g.node[:]
    g.node.extend(ordered)


def prune_initializers(g) -> None:
    used = {name for node in g.node for name in node.input} | {o.name for o in g.output}
    keep = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(keep)
