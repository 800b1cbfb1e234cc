"""The audio descriptor's quantization task: validation hit rate, calibration windows and the
QAT loss, all taken from ``copytrace.train.audio`` so decisions use the training run's held-out
tracks (``val_tracks`` of the pack, chosen with the training seed) and its own definition of a
hit, and QAT optimises the training loss on freshly degraded views.

Validation metric: the training run's ``val_top1`` (``train.audio.validate``): each degraded
1 s window is searched among ``block`` clean windows of the held-out tracks, and counts as a hit
when its nearest clean window is its own or overlaps it within 0.25 s. Averaged over ``blocks``
seeded blocks so that the 0.2% gate is not decided by a handful of windows. The views are built
once (CPU) and every model is scored on the same ones.

The FP32 model comes from the registry's ONNX (BN already folded by the exporter), so what is
quantized is exactly what is deployed; a training checkpoint (``.pt``) can be given instead.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

VAL_SEED = 123   # train.audio.validate's generator seed (first block)
NEAR_S = 0.25    # a neighbour overlapping within this counts as a hit (train.audio.validate)


@dataclass
class AudioTask:
    samplers: list                       # train.audio.PackSampler per pack (CPU)
    frontend: nn.Module                  # models.audio_net.TorchMelFrontend
    train_cfg: object                    # train.audio.AudioTrainConfig (tau, max_shift_s)
    aug_cfg: object                      # train.audio_augment.AugmentConfig
    val_blocks: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]
    calib_batches: list[torch.Tensor]
    qat_batch: int
    eval_batch: int = 512

    def embed(self, fn, windows: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return torch.cat([torch.as_tensor(np.asarray(fn(windows[i : i + self.eval_batch])))
                              for i in range(0, len(windows), self.eval_batch)]).float()

    def evaluate(self, model: nn.Module) -> float:
        """Mean validation top-1 hit rate of a torch model (fp32 math)."""
        model.eval()
        return self.evaluate_fn(model)

    def evaluate_fn(self, fn) -> float:
        """The same metric for any ``windows -> descriptors`` callable (torch or a runtime)."""
        hits = []
        for a, p, piece, pos in self.val_blocks:
            za, zp = _unit(self.embed(fn, a)), _unit(self.embed(fn, p))
            hits.append(hit_rate(za, zp, piece, pos, self.samplers[0].sample_rate))
        return float(np.mean(hits))

    def forward_loop(self, model: nn.Module) -> None:
        with torch.no_grad():
            for x in self.calib_batches:
                model(x)

    def qat_loss(self, model: nn.Module, step: int) -> torch.Tensor:
        """NT-Xent on a fresh batch of (clean, degraded) train windows, as in training."""
        from copytrace.train.audio import _views, nt_xent

        sampler = self.samplers[step % len(self.samplers)]
        with torch.no_grad():
            a, p, piece, pos = _views(sampler, self.frontend, self.train_cfg, self.aug_cfg,
                                      self.qat_batch, "train")
        z = model(torch.cat([a, p]))
        b = self.qat_batch
        return nt_xent(z[:b], z[b:], piece, pos, self.train_cfg.tau, sampler.sample_rate)

    @property
    def n_val_windows(self) -> int:
        return sum(len(b[0]) for b in self.val_blocks)


def _unit(z: torch.Tensor) -> torch.Tensor:
    return z / z.norm(dim=1, keepdim=True).clamp_min(1e-12)


def hit_rate(za: torch.Tensor, zp: torch.Tensor, piece: torch.Tensor, pos: torch.Tensor,
             sample_rate: int) -> float:
    """``train.audio.validate``'s hit: the degraded view's nearest clean window is its own, or
    one of the same piece within ``NEAR_S``."""
    best = (zp @ za.T).argmax(1)
    hit = best == torch.arange(len(za))
    near = (piece[best] == piece) & ((pos[best] - pos).abs() < NEAR_S * sample_rate)
    return float((hit | near).float().mean())


def load_audio_task(packs: list, val_tracks: int = 6, seed: int = 0, blocks: int = 4,
                    block: int = 2048, calib_windows: int = 1024, qat_batch: int = 32,
                    threads: int = 0, train_config: str = "h100", mel=None) -> AudioTask:
    """CPU task on the packs the model was trained on (scripts/stage_audio.py ``pack`` or
    ``pack-all``). Each entry of ``packs`` is what one training call was given: a pack folder,
    or a list of folders trained on together; each holds out its own ``val_tracks`` with the
    training seed, exactly as that training call did. Validation blocks go round-robin.
    ``train_config`` names the training configuration whose positives (time shifts) the
    validation and the QAT loss use: the one the model was last trained with. ``mel``: the
    deployed model's frontend (``spec.mel_config()``); by default the training config's."""
    from copytrace.models.audio_frontend import MelConfig
    from copytrace.models.audio_net import TorchMelFrontend
    from copytrace.train.audio import CONFIGS, PackSampler, _views
    from copytrace.train.audio_augment import AugmentConfig

    if threads:
        torch.set_num_threads(threads)
    cfg = CONFIGS[train_config]
    mel = mel or MelConfig(f_min=cfg.f_min)
    aug = AugmentConfig(sample_rate=mel.sample_rate, **cfg.augment)
    chunk_n = mel.window_samples + 2 * int(0.35 * mel.sample_rate)  # as train.audio.train
    samplers = [PackSampler([Path(d) for d in p] if isinstance(p, (list, tuple)) else Path(p),
                            chunk_n, torch.device("cpu"), val_tracks, seed) for p in packs]
    frontend = TorchMelFrontend(mel)
    torch.manual_seed(VAL_SEED)  # the degradations draw from the global generator
    blocks_out = []
    with torch.no_grad():
        for i in range(blocks):
            gen = torch.Generator().manual_seed(VAL_SEED + i)
            blocks_out.append(_views(samplers[i % len(samplers)], frontend, cfg, aug, block,
                                     "val", gen))
        # Calibration: train-split windows, half clean, half degraded (what the index and the
        # queries feed the descriptor), never the validation tracks.
        torch.manual_seed(seed + 7)
        gen = torch.Generator().manual_seed(seed + 7)
        calib = []
        for s in samplers:
            n = max(calib_windows // (2 * len(samplers)), 1)
            a, p, _, _ = _views(s, frontend, cfg, aug, n, "train", gen)
            calib += list(torch.cat([a, p]).split(256))
    torch.manual_seed(seed + 17)  # QAT views: fresh, not the training run's sequence
    return AudioTask(samplers, frontend, cfg, aug, blocks_out, calib, qat_batch)


# -- the FP32 model ---------------------------------------------------------------------------

def load_audio_fp32(onnx_path: Path, checkpoint: Path | None = None) -> nn.Module:
    """AudioFingerprintNet with BN folded: from a training checkpoint when given, else from
    the deployed FP32 ONNX (the exporter folded BN into the convolutions)."""
    from copytrace.models.audio_net import AudioFingerprintNet
    from copytrace.models.fold import fold_batchnorm

    if checkpoint is not None:
        blob = torch.load(checkpoint, map_location="cpu", weights_only=False)
        state = blob.get("state_dict", blob) if isinstance(blob, dict) else blob
        model = AudioFingerprintNet(_config_from_shapes(
            [v.shape for k, v in state.items() if k.endswith(".weight") and v.ndim == 4],
            state["head.2.weight"].shape))
        model.load_state_dict(state)
        return fold_batchnorm(model.eval())
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(onnx_path))
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    convs = [n for n in m.graph.node if n.op_type == "Conv"]
    gemm = next(n for n in m.graph.node if n.op_type == "Gemm")
    model = fold_batchnorm(AudioFingerprintNet(_config_from_shapes(
        [inits[n.input[1]].shape for n in convs], inits[gemm.input[1]].shape)).eval())
    tconvs = [c for c in model.modules() if isinstance(c, nn.Conv2d)]
    if len(tconvs) != len(convs):
        raise ValueError(f"{onnx_path}: {len(convs)} convolutions, the net has {len(tconvs)}")
    with torch.no_grad():
        for c, n in zip(tconvs, convs):
            c.weight.copy_(torch.from_numpy(inits[n.input[1]].copy()))
            c.bias = nn.Parameter(torch.from_numpy(inits[n.input[2]].copy()))
        lin = model.head[2]
        w = inits[gemm.input[1]]
        trans_b = next((a.i for a in gemm.attribute if a.name == "transB"), 0)
        lin.weight.copy_(torch.from_numpy((w if trans_b else w.T).copy()))
        lin.bias.copy_(torch.from_numpy(inits[gemm.input[2]].copy()))
    return model


def _config_from_shapes(conv_shapes, head_shape):
    from copytrace.models.audio_net import AudioNetConfig

    widths = tuple(int(s[0]) for s in conv_shapes[::2])  # two convolutions per stage
    return AudioNetConfig(widths=widths, dims=int(min(head_shape)))
