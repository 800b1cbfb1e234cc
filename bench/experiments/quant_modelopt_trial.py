"""nvidia-modelopt trial (run in .stage/venvs/modelopt with PYTHONPATH=src); see docs/quantization.md."""
import collections
import os
import time

import torch

t0 = time.time()
import modelopt.torch.quantization as mtq

t_imp = time.time() - t0
from copytrace.models.resnet import DescriptorNet

torch.manual_seed(0)
m = DescriptorNet().eval()
x = torch.randn(16, 3, 160, 160)
t0 = time.time()
q = mtq.quantize(m, mtq.INT8_DEFAULT_CFG, lambda mm: mm(x))
t_q = time.time() - t0
names = collections.Counter(type(mod).__name__ for mod in q.modules())
print("import_s", round(t_imp, 2), "quantize_s", round(t_q, 2), dict(names))
y = q(x); y.sum().backward(); print("backward ok")
t0 = time.time()
os.makedirs("out/quant", exist_ok=True)
torch.onnx.export(q, (x[:2],), "out/quant/modelopt.onnx", opset_version=17, dynamo=False)
import onnx

g = onnx.load("out/quant/modelopt.onnx").graph
print("export_s", round(time.time() - t0, 2), collections.Counter(n.op_type for n in g.node))
adds = [n for n in g.node if n.op_type == "Add"]
prod = {o: n.op_type for n in g.node for o in n.output}
print("add input producers", [[prod.get(i) for i in n.input] for n in adds][:4])
