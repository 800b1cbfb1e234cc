"""Calibration methods, the quantizer's numerics and config validation."""
from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from copytrace.quant import QuantConfig, calibrate, prepare
from copytrace.quant.calibration import amax_from_histogram
from copytrace.quant.quantizer import TensorQuantizer


def _hist(values: np.ndarray, bins: int = 2048):
    a = np.abs(values)
    h, _ = np.histogram(a, bins=bins, range=(0, a.max()))
    return h.astype(np.float64), float(a.max())


def test_max_and_percentile_on_known_distribution():
    rng = np.random.default_rng(0)
    v = rng.uniform(-1, 1, 200_000)
    h, mx = _hist(v)
    assert amax_from_histogram(h, mx, "max", 99.99) == pytest.approx(mx)
    assert amax_from_histogram(h, mx, "percentile", 90.0) == pytest.approx(0.9, abs=0.01)


@pytest.mark.parametrize("method", ["mse", "entropy", "percentile"])
def test_clipping_methods_ignore_rare_outliers(method):
    # A Gaussian bulk with a handful of huge outliers: max calibration would spend the INT8
    # range on the outliers; the clipping methods must not.
    rng = np.random.default_rng(1)
    v = np.concatenate([rng.normal(0, 1, 500_000), [40.0, -45.0, 50.0]])
    h, mx = _hist(v)
    amax = amax_from_histogram(h, mx, method, 99.99)
    # MSE still pays for the three outliers' clipping error, so it stops further out.
    assert 2.5 < amax < (0.6 * mx if method == "mse" else 10.0), amax


def test_mse_threshold_beats_max_on_measured_error():
    rng = np.random.default_rng(2)
    v = np.concatenate([rng.laplace(0, 1, 200_000), [60.0]]).astype(np.float32)
    h, mx = _hist(v)

    def err(amax):
        s = amax / 127
        return float(np.mean((np.clip(np.round(v / s), -128, 127) * s - v) ** 2))

    assert err(amax_from_histogram(h, mx, "mse", 99.99)) < 0.5 * err(mx)


def test_quantizer_rounds_to_the_int8_grid_and_saturates():
    q = TensorQuantizer()
    q.set_amax(1.27)
    x = torch.tensor([0.0, 0.014, 0.016, 1.0, 5.0, -5.0])
    y = q(x)
    assert torch.allclose(y, torch.tensor([0.0, 0.01, 0.02, 1.0, 1.27, -1.28]), atol=1e-6)


def test_per_channel_weight_scales_follow_each_output_channel():
    from copytrace.models.resnet import DescriptorNet, NetConfig

    net = DescriptorNet(NetConfig(widths=(8, 8, 8, 8), blocks=(1, 1, 1, 1), stem_width=8, dims=8))
    p = prepare(net, QuantConfig())
    conv = p.stem[0][0]
    want = conv.weight.detach().abs().reshape(conv.out_channels, -1).amax(1)
    assert torch.allclose(conv.weight_quantizer.amax, want)
    assert conv.weight_quantizer.axis == 0 and conv.input_quantizer.axis is None


def test_uncalibrated_model_refuses_to_run_and_calibration_sets_every_scale():
    from copytrace.models.resnet import DescriptorNet, NetConfig

    net = DescriptorNet(NetConfig(widths=(8, 8, 8, 8), blocks=(1, 1, 1, 1), stem_width=8, dims=8))
    p = prepare(net, QuantConfig())
    x = torch.randn(2, 3, 32, 32)
    with pytest.raises(RuntimeError, match="calibrat"):
        p(x)
    calibrate(p, lambda m: m(x), "entropy")
    qs = [m for m in p.modules() if isinstance(m, TensorQuantizer)]
    assert qs and all(q.calibrated for q in qs)
    # residual adds carry a skip quantizer (TensorRT placement)
    assert any(n.endswith("add.skip_quantizer") for n, _ in p.named_modules())


def test_config_errors_say_how_to_fix():
    with pytest.raises(ValueError, match="pick one of"):
        QuantConfig(method="minmax")
    with pytest.raises(ValueError, match="percentile"):
        QuantConfig(percentile=20)
    from copytrace.quant import FinetuneConfig

    with pytest.raises(ValueError, match="1% of the original"):
        FinetuneConfig(lr=2.0)
