"""BN folding, QAT with frozen scales, per-layer sensitivity and mixed precision."""
from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from copytrace.quant import (
    FinetuneConfig,
    QuantConfig,
    calibrate,
    choose_float_layers,
    finetune,
    fold_batchnorm,
    layer_sensitivity,
    prepare,
)
from copytrace.quant.quantizer import TensorQuantizer
from tests._quant_fixtures import small_net


def test_fold_batchnorm_is_exact():
    import copy

    net = small_net()
    x = torch.randn(4, 3, 48, 48)
    with torch.no_grad():
        want = net(x)
        got = fold_batchnorm(copy.deepcopy(net))(x)
    assert torch.allclose(want, got, atol=1e-5)


def test_qat_lowers_the_loss_and_keeps_scales_frozen():
    net = small_net()
    x = torch.randn(16, 3, 48, 48)
    p = calibrate(prepare(net, QuantConfig()), lambda m: m(x), "max")
    amax = {n: q.amax.clone() for n, q in p.named_modules() if isinstance(q, TensorQuantizer)}
    target = torch.nn.functional.normalize(torch.randn(16, 32), dim=1)

    def loss_fn(model, step):
        return (1 - (model(x) * target).sum(1)).mean()

    with torch.no_grad():
        before = float(loss_fn(p, 0))
    hist = finetune(p, loss_fn, FinetuneConfig(steps=30, lr=5e-3, log_every=0))
    assert len(hist) == 30 and hist[-1] < 0.8 * before
    for n, q in p.named_modules():
        if isinstance(q, TensorQuantizer):
            assert torch.equal(q.amax, amax[n]), f"{n} scale moved during QAT"


def test_sensitivity_finds_the_planted_layer_and_mixed_precision_floats_it():
    net = small_net()
    x = torch.randn(8, 3, 48, 48)
    p = calibrate(prepare(net, QuantConfig()), lambda m: m(x), "max")
    bad = "stages.1.0.conv1.0"
    # Plant a broken scale: this layer alone destroys the output.
    dict(p.named_modules())[bad].input_quantizer.set_amax(1e-3)
    with torch.no_grad():
        ref = net(x)

    def evaluate(model):
        with torch.no_grad():
            return float((model(x) * ref).sum(1).mean())

    sens = layer_sensitivity(p, evaluate, 1.0)
    assert sens[0].name == bad and sens[0].loss > 10 * abs(sens[1].loss)
    assert evaluate(p) < 0.995  # fully quantized: misses a 0.2% gate
    float_layers, metric = choose_float_layers(p, evaluate, 1.0, sens, gate=0.002)
    assert float_layers == (bad,)
    assert metric > 0.998
    assert all(not q.enabled for q in dict(p.named_modules())[bad].children())
