"""Triton kernels of the GPU 8-bit backend (runtime/triton_int8.py); imports triton."""
import triton
import triton.language as tl


@triton.jit
def _round_half_even(x):
    f = tl.floor(x)
    d = x - f
    odd = (f - 2.0 * tl.floor(f * 0.5)) != 0.0
    return f + ((d > 0.5) | ((d == 0.5) & odd)).to(tl.float32)

@triton.jit
def _requant(y, out_scale):
    q = tl.minimum(tl.maximum(y / out_scale, -128.0), 127.0)
    return _round_half_even(q).to(tl.int8)

CONFIGS = [
    triton.Config({"BLOCK_M": bm, "BLOCK_N": bn, "BLOCK_K": bk}, num_warps=w, num_stages=s)
    for bm, bn, bk, w, s in [
        (128, 32, 32, 4, 4), (128, 64, 32, 4, 4), (128, 64, 64, 4, 3), (128, 128, 64, 8, 3),
        (256, 64, 64, 8, 3), (256, 32, 64, 4, 3), (64, 64, 64, 4, 4), (256, 128, 64, 8, 3),
        (128, 64, 128, 4, 3), (256, 64, 128, 8, 2), (64, 128, 64, 4, 4), (128, 16, 64, 4, 4),
    ]
]


def _prune(configs, named_args, **kwargs):
    """Drop tiles far wider than the layer: N beyond the next power of two of COUT, K beyond
    that of one tap row (KW * CIN)."""
    args = {**named_args, **kwargs}
    cout, kwc = args["COUT"], args["KW"] * args["CIN"]
    keep = [c for c in configs
            if c.kwargs["BLOCK_N"] <= max(16, triton.next_power_of_2(cout))
            and c.kwargs["BLOCK_K"] <= max(32, triton.next_power_of_2(kwc))]
    return keep or configs[:1]


@triton.autotune(configs=CONFIGS, key=["CIN", "COUT", "OH", "KH", "STRIDE"],
                 prune_configs_by={"early_config_prune": _prune})
@triton.jit
def conv(x_ptr, w_ptr, alpha_ptr, bias_ptr, res_ptr, out_ptr,
         M, OH, OW, HP, WP, res_scale, out_scale,
         CIN: tl.constexpr, COUT: tl.constexpr, KH: tl.constexpr, KW: tl.constexpr,
         STRIDE: tl.constexpr, OFF: tl.constexpr,
         HAS_RES: tl.constexpr, RELU: tl.constexpr, OUT_INT8: tl.constexpr,
         BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_K: tl.constexpr):
    # one program per (M tile, N tile), N fastest: the N tiles of one M tile run together and
    # share its activation rows in L2
    n_tiles: tl.constexpr = (COUT + BLOCK_N - 1) // BLOCK_N
    pid = tl.program_id(0)
    pid_m = pid // n_tiles
    pid_n = pid % n_tiles
    rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
    rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
    m_ok = rm < M
    n_ok = rn < COUT
    ohw = OH * OW
    img = rm // ohw
    rem = rm % ohw
    oh = rem // OW
    ow = rem % OW
    kwc: tl.constexpr = KW * CIN
    even_k: tl.constexpr = kwc % BLOCK_K == 0
    acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.int32)
    for r in tl.static_range(KH):
        # padded row oh*S + r + OFF, first tap at padded column ow*S + OFF: KW*CIN bytes
        row = ((img * HP + oh * STRIDE + r + OFF) * WP + ow * STRIDE + OFF) * CIN
        for k0 in range(0, kwc, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            if even_k:
                a = tl.load(x_ptr + row[:, None] + rk[None, :], mask=m_ok[:, None], other=0)
                b = tl.load(w_ptr + (r * kwc + rk)[:, None] * COUT + rn[None, :],
                            mask=n_ok[None, :], other=0)
            else:
                k_ok = rk < kwc
                a = tl.load(x_ptr + row[:, None] + rk[None, :],
                            mask=m_ok[:, None] & k_ok[None, :], other=0)
                b = tl.load(w_ptr + (r * kwc + rk)[:, None] * COUT + rn[None, :],
                            mask=k_ok[:, None] & n_ok[None, :], other=0)
            acc = tl.dot(a, b, acc, out_dtype=tl.int32)
    alpha = tl.load(alpha_ptr + rn, mask=n_ok, other=0.0)
    bias = tl.load(bias_ptr + rn, mask=n_ok, other=0.0)
    y = acc.to(tl.float32) * alpha[None, :] + bias[None, :]
    out_row = ((img * (OH + 2) + oh + 1) * (OW + 2) + ow + 1) * COUT
    offs = out_row[:, None] + rn[None, :]
    mask = m_ok[:, None] & n_ok[None, :]
    if HAS_RES:
        res = tl.load(res_ptr + offs, mask=mask, other=0)
        y += res.to(tl.float32) * res_scale
    if RELU:
        y = tl.maximum(y, 0.0)
    if OUT_INT8:
        tl.store(out_ptr + offs, _requant(y, out_scale), mask=mask)
    else:
        tl.store(out_ptr + offs, y, mask=mask)

@triton.jit
def maxpool(x_ptr, out_ptr, M, OH, OW, HP, WP, C,
            K: tl.constexpr, STRIDE: tl.constexpr, OFF: tl.constexpr,
            BLOCK_M: tl.constexpr, BLOCK_C: tl.constexpr):
    rm = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
    rc = tl.arange(0, BLOCK_C)
    mask = (rm < M)[:, None] & (rc < C)[None, :]
    ohw = OH * OW
    img = rm // ohw
    oh = (rm % ohw) // OW
    ow = rm % OW
    best = tl.full((BLOCK_M, BLOCK_C), -128, tl.int8)
    for r in tl.static_range(K):
        for s in tl.static_range(K):
            pix = (img * HP + oh * STRIDE + r + OFF) * WP + ow * STRIDE + s + OFF
            v = tl.load(x_ptr + pix[:, None] * C + rc[None, :], mask=mask, other=-128)
            best = tl.maximum(best, v)
    out = ((img * (OH + 2) + oh + 1) * (OW + 2) + ow + 1) * C
    tl.store(out_ptr + out[:, None] + rc[None, :], best, mask=mask)

@triton.jit
def quantize_input(x_ptr, out_ptr, P, H, W, scale, C: tl.constexpr, BLOCK: tl.constexpr):
    """float NCHW -> int8 NHWC codes inside a zero border."""
    p = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
    ok = p < P
    hw = H * W
    img = p // hw
    h = (p % hw) // W
    w = p % W
    dst = ((img * (H + 2) + h + 1) * (W + 2) + w + 1) * C
    for c in tl.static_range(C):
        v = tl.load(x_ptr + (img * C + c) * hw + (p % hw), mask=ok, other=0.0)
        tl.store(out_ptr + dst + c, _requant(v, scale), mask=ok)

