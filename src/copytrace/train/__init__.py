"""Self-supervised training of copytrace's descriptors (extra ``[train]``: needs torch).

Entry point: ``python -m copytrace.train.image --config {tiny,h100} --data DIR --out DIR``.
Nothing here is imported by the inference path.
"""
