"""How much INT8 descriptors move under 1e-6 input noise (the parity floor)."""
from pathlib import Path

import torch

torch.set_num_threads(2)
from copytrace.models.registry import get_spec
from copytrace.recipes.image_task import load_fp32_model, load_val_set, preprocess
from copytrace.quant.pipeline import load_state

spec = get_spec("ct-image-r18s")
m = load_fp32_model(Path("weights/ct-image-r18s.pt"), spec.training["net"])
q, _ = load_state("out/quant/ct-image-r18s.qstate.pt", m)
val = load_val_set(Path("data/images"))
x = torch.from_numpy(preprocess(torch.cat([val.refs[:32], val.queries[:32]]), 160))
with torch.no_grad():
    a = q(x)
    for eps in (1e-6, 1e-4):
        b = q(x + eps * torch.randn_like(x)); c = (a * b).sum(1)
        print(f"eps {eps}: min {c.min():.5f} mean {c.mean():.6f}")
