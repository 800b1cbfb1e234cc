"""PTQ calibration methods compared on the validation set (CPU); see docs/quantization.md."""
# Re-run the PTQ calibration comparison on the CPU after the entropy fix (hist[0] excluded).
import json
import logging
import time
from pathlib import Path

logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
from copytrace.models.registry import get_spec
from copytrace.quant import prepare
from copytrace.quant.calibration import collect_statistics, load_amax
from copytrace.recipes.image_task import load_fp32_model, load_image_task

spec = get_spec("ct-image-r18s")
m = load_fp32_model(Path("weights/ct-image-r18s.pt"), spec.training["net"])
task = load_image_task(Path("data/images"), 160, "cpu", calib_images=512)
t = time.time(); out = {"fp32": task.evaluate(m)}
p = prepare(m); collect_statistics(p, task.forward_loop)
for meth in ("max", "percentile", "mse", "entropy"):
    load_amax(p, meth); out[meth] = task.evaluate(p); print(meth, out[meth], flush=True)
out["wall_s"] = time.time() - t
Path("out/quant/ptq_methods_cpu.json").write_text(json.dumps(out, indent=1)); print(out)
