"""Saturating vs shipped ONNX Runtime U8 variant: val µAP and paired speed."""
from pathlib import Path

import numpy as np
import onnxruntime as ort

from copytrace.quant import derive_u8
from copytrace.recipes.image_task import load_val_set, preprocess, uap_from_descriptors
from copytrace.recipes.speed import paired_throughput

W = "src/copytrace/models/weights/"
derive_u8(W + "ct-image-r18s.int8.onnx", "/tmp/sat.onnx", exact=False)
val = load_val_set(Path("data/images"))
sess = {k: ort.InferenceSession(f, providers=["CPUExecutionProvider"]) for k, f in
        {"u8": W + "ct-image-r18s.int8-u8.onnx", "sat": "/tmp/sat.onnx", "fp32": W + "ct-image-r18s.onnx"}.items()}
def enc(s, imgs):
    out = [s.run(None, {"images": preprocess(imgs[i:i+64], 160)})[0] for i in range(0, len(imgs), 64)]
    o = np.concatenate(out); return o / np.linalg.norm(o, axis=1, keepdims=True)
for k, s in sess.items():
    print(k, "uap", uap_from_descriptors(enc(s, val.queries), enc(s, val.refs), val.truth.numpy()), flush=True)
r = paired_throughput({k: (lambda x, s=s: s.run(None, {"images": x})) for k, s in sess.items()}, 32, (160, 160), min_s=5)
print({k: round(v, 1) for k, v in r.items()}, "sat/u8", r["sat"] / r["u8"], "u8/fp32", r["u8"] / r["fp32"], "sat/fp32", r["sat"] / r["fp32"])
