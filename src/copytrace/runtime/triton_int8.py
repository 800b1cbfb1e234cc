"""GPU 8-bit backend (issue 26): the QDQ ONNX's INT8 network in Triton kernels (extra ``[gpu]``).

Every convolution is one implicit-GEMM kernel on int8 NHWC codes: int8 x int8 -> int32 on the
tensor cores, then an epilogue that applies the input and per-channel weight
scales, the folded-BN bias, the residual add (the skip's int8 codes and scale), ReLU, and
requantizes to the next tensor's int8 scale (round half to even, saturating, as ONNX
QuantizeLinear). The scales are the ones QAT/PTQ wrote into the QDQ file
(``runtime/qdq_plan.py``); nothing is recalibrated here.

Activations live in NHWC int8 buffers with a one-pixel zero border, so a 3x3 window row is
``KW * C`` contiguous bytes and the kernels need no padding masks (max pooling too: its input
is post-ReLU, so the zero border never wins). GeM, the quantized projection and L2 norm run in
float torch ops (6 % of the time at batch 1024 on an H200: docs/quantization.md).
"""
from __future__ import annotations

import numpy as np

from copytrace.errors import ModelError
from copytrace.runtime.base import Encoder, l2_normalise, register_backend


def _kernels():
    """The Triton kernels, imported on first use: importing this module must not need triton."""
    from copytrace.runtime import _triton_kernels

    return _triton_kernels


class Int8Network:
    """A QdqPlan on one CUDA device: weights packed for the kernels, buffers per batch size."""

    def __init__(self, plan, device: str = "cuda",
                 tile: tuple[int, int, int] | None = None) -> None:
        """``tile=(BLOCK_M, BLOCK_N, BLOCK_K)`` fixes the convolution tiles (the Triton
        interpreter's tests); None autotunes per layer shape on the GPU."""
        import torch

        self.plan = plan
        self.device = torch.device(device)
        self.k = _kernels()
        self.tile = tile
        self.layers = []
        for st in plan.steps:
            if hasattr(st, "weight"):
                cout, cin, kh, kw = st.weight.shape
                # [cout, cin, kh, kw] -> [kh, kw*cin, cout]: a K row per (tap row, column, channel)
                wk = np.ascontiguousarray(st.weight.transpose(2, 3, 1, 0).reshape(kh * kw * cin,
                                                                                    cout))
                alpha = (np.float32(plan.scales[st.src]) * st.weight_scale).astype(np.float32)
                self.layers.append({
                    "w": torch.from_numpy(wk).to(self.device),
                    "alpha": torch.from_numpy(alpha).to(self.device),
                    "bias": torch.from_numpy(st.bias).to(self.device),
                    "cin": cin, "cout": cout, "k": kh,
                })
            else:
                self.layers.append(None)
        self._buffers: dict[tuple, dict] = {}
        self.proj_w = torch.from_numpy(plan.proj_weight).to(self.device)
        self.proj_b = torch.from_numpy(plan.proj_bias).to(self.device)

    def _alloc(self, n: int, h: int, w: int) -> dict:
        import torch

        key = (n, h, w)
        if key in self._buffers:
            return self._buffers[key]
        first = self.layers[0]
        if first is None:
            raise ModelError("the INT8 plan should start with a convolution")
        sizes = {self.plan.input_name: (h, w, first["cin"])}
        for st, lay in zip(self.plan.steps, self.layers):
            sh, sw, _ = sizes[st.src]
            k, s, p = (lay["k"], st.stride, st.pad) if lay else (st.kernel, st.stride, st.pad)
            oh, ow = (sh + 2 * p - k) // s + 1, (sw + 2 * p - k) // s + 1
            sizes[st.dst] = (oh, ow, lay["cout"] if lay else sizes[st.src][2])
        # One buffer per live tensor, reused once its last reader has run (every buffer of a
        # shape has the same zero border, and kernels write only interiors).
        last_use: dict[str, int] = {}
        for i, st in enumerate(self.plan.steps):
            for name in (st.src, getattr(st, "residual", None)):
                if name is not None:
                    last_use[name] = i
        free: dict[tuple, list] = {}
        bufs = {}

        def take(name):
            bh, bw, c = sizes[name]
            dtype = torch.int8 if name in self.plan.scales else torch.float32
            if n * (bh + 2) * (bw + 2) * c >= 2**31:
                raise ModelError(f"batch {n} is too large for 32-bit offsets; split it")
            pool = free.get((bh, bw, c, dtype))
            bufs[name] = pool.pop() if pool else torch.zeros(
                (n, bh + 2, bw + 2, c), dtype=dtype, device=self.device)

        take(self.plan.input_name)
        for i, st in enumerate(self.plan.steps):
            take(st.dst)
            for name in {st.src, getattr(st, "residual", None)} - {None}:
                if last_use[name] == i:
                    b = bufs[name]
                    bh, bw, c = sizes[name]
                    free.setdefault((bh, bw, c, b.dtype), []).append(b)
        self._buffers = {key: {"bufs": bufs, "sizes": sizes}}  # keep one shape: bounded memory
        return self._buffers[key]

    def __call__(self, images, events: list | None = None):
        """float32 NCHW images on the device -> L2-normalised descriptors (float32).
        ``events``: a list that gets one recorded CUDA event per step (profiling)."""
        import torch

        def mark():
            if events is not None:
                events.append(torch.cuda.Event(enable_timing=True))
                events[-1].record()

        n, c, h, w = images.shape
        a = self._alloc(n, h, w)
        bufs, sizes = a["bufs"], a["sizes"]
        k, triton = self.k, self.k.triton
        x = images.contiguous().float()
        p = n * h * w
        mark()
        k.quantize_input[(triton.cdiv(p, 1024),)](
            x, bufs[self.plan.input_name], p, h, w, self.plan.scales[self.plan.input_name],
            C=c, BLOCK=1024)
        mark()
        for st, lay in zip(self.plan.steps, self.layers):
            sh, sw, _ = sizes[st.src]
            oh, ow, cout = sizes[st.dst]
            m = n * oh * ow
            if lay is None:
                k.maxpool[(triton.cdiv(m, 64),)](
                    bufs[st.src], bufs[st.dst], m, oh, ow, sh + 2, sw + 2, cout,
                    K=st.kernel, STRIDE=st.stride, OFF=1 - st.pad, BLOCK_M=64,
                    BLOCK_C=triton.next_power_of_2(cout))
                mark()
                continue
            res = bufs[st.residual] if st.residual is not None else bufs[st.dst]
            res_scale = self.plan.scales[st.residual] if st.residual is not None else 0.0

            def grid(meta, m=m, cout=cout):
                return (triton.cdiv(m, meta["BLOCK_M"]) * triton.cdiv(cout, meta["BLOCK_N"]),)

            conv, tiles = k.conv, {}
            if self.tile is not None:
                conv = k.conv.fn
                tiles = dict(zip(("BLOCK_M", "BLOCK_N", "BLOCK_K"), self.tile))
            conv[grid](
                bufs[st.src], lay["w"], lay["alpha"], lay["bias"], res, bufs[st.dst],
                m, oh, ow, sh + 2, sw + 2, res_scale,
                st.out_scale if st.out_scale is not None else 1.0,
                CIN=lay["cin"], COUT=cout, KH=lay["k"], KW=lay["k"], STRIDE=st.stride, OFF=1 - st.pad,
                HAS_RES=st.residual is not None, RELU=st.relu, OUT_INT8=st.out_scale is not None,
                **tiles)
            mark()
        from copytrace.runtime.qdq_plan import head

        feat = bufs[self.plan.output][:, 1:-1, 1:-1, :].permute(0, 3, 1, 2)
        out = head(self.plan, feat)
        mark()
        return out


class TritonInt8Encoder(Encoder):
    def __init__(self, spec, precision: str = "int8", threads: int = 0) -> None:
        import torch

        from copytrace.runtime.qdq_plan import read_plan

        if precision != "int8":
            raise ModelError("the cuda-int8 backend runs the QDQ INT8 file; for float use "
                             "'torch-cuda'")
        if not torch.cuda.is_available():
            raise ModelError("the cuda-int8 backend needs a CUDA GPU")
        if not spec.has_int8():
            raise ModelError(f"{spec.name}: no INT8 file made from the FP32 file present")
        self.spec = spec
        self.precision = precision
        self._net = Int8Network(read_plan(spec.path("int8")), "cuda")

    def encode(self, batch: np.ndarray) -> np.ndarray:
        import torch

        x = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to("cuda")
        with torch.inference_mode():
            y = self._net(x).cpu().numpy()
        return l2_normalise(y)


@register_backend("cuda-int8")
def _make(spec, precision: str, threads: int) -> Encoder:
    return TritonInt8Encoder(spec, precision, threads)
