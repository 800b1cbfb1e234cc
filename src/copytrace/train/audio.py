"""Train the audio fingerprint (NAFP-style contrastive learning, Chang et al. ICASSP 2021).

    python -m copytrace.train.audio --config h100 --data data/audio/train/pack --out ckpt/audio
    python -m copytrace.train.audio --config tiny --data <pack> --out <dir>     # CPU, seconds

Data: a pack from scripts/stage_audio.py (8 kHz mu-law u8 samples + piece table), held
whole on the device. Each step draws B chunks; the anchor is the clean 1 s window, the positive
the same window after speed change, reverb, EQ, a time shift, background noise and codec-like
damage (train/audio_augment.py). NT-Xent over the 2B views, with negatives that overlap the
anchor in time (same piece, < 1 s apart) masked out because they are not really negatives.
With ``hard_frac``, part of each batch is windows and their hardest partners, near-repeats of
the same piece (``mine_partners``); exact repeats are masked out as negatives then.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

log = logging.getLogger("copytrace.train.audio")


@dataclass(frozen=True)
class AudioTrainConfig:
    name: str = "h100"
    batch: int = 1024
    steps: int = 12000
    time_budget_s: float = 370.0  # the schedule is stretched/cut to end within this
    lr: float = 2e-3
    weight_decay: float = 1e-4
    warmup_frac: float = 0.04
    tau: float = 0.05
    max_shift_s: float = 0.2
    widths: tuple[int, ...] = (32, 64, 128, 192, 256)
    dims: int = 128
    f_min: float = 300.0  # lowest frequency the log-mel frontend sees (Hz)
    n_fft: int = 512  # frontend FFT length (8 kHz: 512 = 15.6 Hz bins, 1024 = 7.8 Hz)
    window_frames: int = 76  # frames per window: (frames - 1) * 12.5 ms + n_fft samples
    val_tracks: int = 6
    val_every: int = 500
    device: str = "cuda"
    amp: bool = True
    seed: int = 0
    augment: dict = field(default_factory=dict)
    # Share of each batch drawn as (window, its hardest partner) pairs: the other window of the
    # same 60 s piece, >= 1 s away, whose clean log-mel is most like it short of an exact repeat
    # (``mine_partners``). 0: every window drawn at random.
    hard_frac: float = 0.0

    def __post_init__(self) -> None:
        if self.batch < 4 or self.steps < 1 or self.tau <= 0 or self.lr <= 0:
            raise ValueError("batch >= 4, steps >= 1, tau > 0 and lr > 0 are required")
        if not 0 <= self.max_shift_s < 0.5:
            raise ValueError("max_shift_s must be in [0, 0.5)")
        if not 0 <= self.f_min < 4000:
            raise ValueError("f_min must be in [0, 4000) Hz")
        if not 0 <= self.hard_frac <= 1:
            raise ValueError("hard_frac must be in [0, 1]")
        if self.hard_frac and self.augment.get("source_speed"):
            raise ValueError("hard_frac and source_speed do not mix (partners are mined at rate 1)")


# Version 4: the frontend reaches down to 60 Hz. Version 3 saw 300-4000 Hz only, blind to
# the bass that carries most of some tracks' energy (version 3 on bench/audio.py's 5 dB
# queries of 3-10 s: the 14 eval tracks with >= 80 % of their audible power under 300 Hz
# were found in 66 % of them, the other 29 in 90 %). A new frontend means training from
# scratch: a first stage with positives shifted <= 0.1 s, then sharp stages (<= 0.06 s,
# twice the batch) from its weights.
_BASS = AudioTrainConfig(name="h100-bass", batch=2048, f_min=60.0, max_shift_s=0.1, steps=40000,
                         time_budget_s=510.0, val_every=1000)
_SHARP = {"batch": 4096, "lr": 7e-4, "warmup_frac": 0.02, "max_shift_s": 0.06}
_WIDE = (48, 96, 192, 288, 384)  # 1.5x the channels, 2.25x the multiply-adds: does capacity help?
_BASS_CONFIGS = {
    "h100-bass": _BASS,
    "h100-bass-sharp": replace(_BASS, name="h100-bass-sharp", **_SHARP),
    "h100-bass-wide": replace(_BASS, name="h100-bass-wide", widths=_WIDE),
    "h100-bass-wide-sharp": replace(_BASS, name="h100-bass-wide-sharp", widths=_WIDE, **_SHARP),
    # A fourth stage (--init version 4): version 4 misses 5 dB queries when the background is
    # other music (15 of 62 such 5-10 s queries, against 1 of 58 under coloured noise), so
    # three positives in four get a music background, at -3 to 8 dB. Session 5, 6,426 steps
    # on one H100: validation (with this mix) 0.859 before, 0.859 after; not shipped.
    "h100-bass-mix": replace(_BASS, name="h100-bass-mix", **{**_SHARP, "lr": 3e-4},
                             augment={"p_music_noise": 0.75, "snr_db": (-3.0, 8.0)}),
    # Session 6: more variety from the same music (more training leaves version 4's validation
    # where it was while its train loss keeps falling): each chunk is resampled by up to 15 %
    # either way before the views are cut (new tempo and key). 6,871 steps from version 4 on
    # one H200: validation 0.893 before and after, no clear gain on the dev draw; not shipped.
    "h100-bass-vary": replace(_BASS, name="h100-bass-vary", **{**_SHARP, "lr": 5e-4},
                              augment={"source_speed": 0.15}),
    # The same stage for the wide twin (--init h100-bass-wide-sharp stage 3): 5,664 steps,
    # validation 0.890 -> 0.899; the wide member of session 7's ensemble (not shipped).
    "h100-bass-wide-vary": replace(_BASS, name="h100-bass-wide-vary", widths=_WIDE,
                                   **{**_SHARP, "lr": 5e-4}, augment={"source_speed": 0.15}),
    # Session 8 (--init version 4, the same network: 71 frames end at version 4's 3 columns):
    # 7.8 Hz FFT bins (1024 points, a window of 1.003 s) for bass lines. The near-repeats that
    # version 4 confuses are loops with 38-76 % of their power under 500 Hz, which 15.6 Hz
    # bins resolve coarsely. Two stages: this, then --lr 3e-4 from it.
    "h100-bass-fft1024": replace(_BASS, name="h100-bass-fft1024", n_fft=1024, window_frames=71,
                                 **_SHARP),
    # Session 8 (--init version 4): version 4's misses at 5 dB (+ reverb) are nearly all the
    # right recording at another offset, a near-repeat of the bars in looped music, whose mean
    # similarity beats the truth's by 0.005-0.1. Half of each batch is windows and their
    # hardest same-piece partners, so NT-Xent must tell near-repeats apart under the damage.
    "h100-bass-hard": replace(_BASS, name="h100-bass-hard", **{**_SHARP, "lr": 3e-4},
                              hard_frac=0.5),
}


CONFIGS = {
    "h100": AudioTrainConfig(),
    # Every train track (scripts/stage_audio.py pack-all: ~9.8 h over three ADPCM folders, each
    # carried by its own device call), one long run.
    "h100-all": AudioTrainConfig(name="h100-all", steps=40000, time_budget_s=470.0, val_every=1000),
    # Second stage on the same data (--init the h100-all checkpoint): twice the batch, so twice
    # the negatives per anchor, at half the peak learning rate.
    "h100-all-ft": AudioTrainConfig(name="h100-all-ft", batch=2048, lr=1e-3, warmup_frac=0.02,
                                    steps=40000, time_budget_s=470.0, val_every=1000),
    # Third stage (--init the h100-all-ft checkpoint): positives shifted by at most 0.06 s, not
    # 0.2 s. The offset aligner compares each reference window with the query window closest to
    # it (within half a query hop, 0.05 s), so tolerance to larger shifts only blurs the
    # fingerprint: version 2 read 0.80 on a clean copy misplaced by 0.2 s, 0.96+ within 0.05 s.
    "h100-sharp": AudioTrainConfig(name="h100-sharp", batch=2048, lr=1e-3, warmup_frac=0.02,
                                   max_shift_s=0.06, steps=40000, time_budget_s=520.0,
                                   val_every=1000),
    **_BASS_CONFIGS,
    "tiny": AudioTrainConfig(
        name="tiny", batch=16, steps=12, time_budget_s=40.0, widths=(8, 16, 16, 24, 32),
        dims=32, val_tracks=1, val_every=6, device="cpu", amp=False,
    ),
}


def read_pack(pack_dir: Path) -> tuple[int, np.ndarray, list[dict]]:
    """One pack folder -> (sample rate, float32 samples, pieces with ``offset`` into them).
    Packs are mu-law bytes (``pack``) or 4-bit ADPCM rows (``pack-all``), see stage_audio.py."""
    meta = json.loads((pack_dir / "pieces.json").read_text())
    if meta.get("codec") == "adpcm4":
        from copytrace.train import adpcm

        rows = adpcm.decode(np.load(pack_dir / "audio_adpcm4.npy"))
        n = int(meta["row_samples"])
        pieces = [dict(p, offset=p["row"] * n) for p in meta["pieces"]]
        return int(meta["sample_rate"]), rows.reshape(-1).astype(np.float32) / 32768.0, pieces
    u = np.load(pack_dir / "audio_mulaw_u8.npy").astype(np.float32) / 127.5 - 1.0
    x = np.sign(u) * (256.0 ** np.abs(u) - 1) / 255.0
    return int(meta["sample_rate"]), x.astype(np.float32), meta["pieces"]


class PackSampler:
    """Draws chunks from the packed pieces of one or more pack folders, uniformly over time,
    on the training device (samples held there as float16)."""

    def __init__(self, pack_dirs, chunk_n: int, device, val_tracks: int, rng_seed: int):
        import torch

        dirs = [pack_dirs] if isinstance(pack_dirs, (str, Path)) else list(pack_dirs)
        arrays, pieces, base, rates = [], [], 0, set()
        for d in dirs:
            sr, x, ps = read_pack(Path(d))
            rates.add(sr)
            pieces += [dict(p, offset=p["offset"] + base) for p in ps if p["length"] > chunk_n + 16]
            arrays.append(x)
            base += len(x)
        if len(rates) != 1:
            raise ValueError(f"packs disagree on the sample rate: {sorted(rates)}")
        self.sample_rate = rates.pop()
        tracks = sorted({p["track"] for p in pieces})
        rng = np.random.default_rng(rng_seed)
        val = set(rng.choice(tracks, size=min(val_tracks, len(tracks) - 1), replace=False).tolist())
        self.chunk_n = chunk_n
        self.device = device
        self.data = torch.from_numpy(np.concatenate(arrays)).to(device=device, dtype=torch.float16)
        self.hours = sum(p["length"] for p in pieces) / self.sample_rate / 3600
        self.train = self._table([p for p in pieces if p["track"] not in val])
        self.val = self._table([p for p in pieces if p["track"] in val])
        log.info("packs: %d train pieces, %d val pieces (%d val tracks), %.2f h",
                 len(self.train[0]), len(self.val[0]), len(val),
                 self.hours)

    def _table(self, pieces):
        import torch

        off = torch.tensor([p["offset"] for p in pieces], dtype=torch.long, device=self.device)
        span = torch.tensor([p["length"] - self.chunk_n for p in pieces], dtype=torch.long,
                            device=self.device)
        return off, span

    def draw(self, b: int, split: str = "train", gen=None):
        """-> (chunks [b, chunk_n] float, piece ids [b], start sample within piece [b])."""
        import torch

        off, span = self.train if split == "train" else self.val
        w = span.float()
        piece = torch.multinomial(w / w.sum(), b, replacement=True, generator=gen)
        pos = (torch.rand(b, device=self.device, generator=gen) * span[piece]).long()
        return self._cut(off, piece, pos), piece, pos

    def _cut(self, off, piece, pos):
        """The chunks starting ``pos`` samples into ``piece`` [b] -> [b, chunk_n] float."""
        import torch

        idx = (off[piece] + pos)[:, None] + torch.arange(self.chunk_n, device=self.device)[None]
        return self.data[idx].float()

    def draw_pairs(self, n: int, split: str = "train", gen=None):
        """n chunks and their mined partners (``mine_partners``, set in ``self.partners``):
        -> (chunks [2n, chunk_n], piece ids [2n], starts [2n]), the partners second."""
        import torch

        off, span = self.train if split == "train" else self.val
        first, partner, step = self.partners[split]
        w = span.float()
        piece = torch.multinomial(w / w.sum(), n, replacement=True, generator=gen)
        slots = (span[piece] + step - 1) // step
        k = (torch.rand(n, device=self.device, generator=gen) * slots).long()
        jitter = (torch.rand(n, device=self.device, generator=gen) * step).long()
        top = span[piece] - 1
        pos = torch.cat([torch.minimum(k * step + jitter, top),
                         torch.minimum(partner[first[piece] + k] * step + jitter, top)])
        piece = torch.cat([piece, piece])
        return self._cut(off, piece, pos), piece, pos


REPEAT_CORR = 0.9  # clean log-mel correlation of an exact repeat (bench/audio.py's definition)


def logmel_corr(a):
    """Pearson correlation between the flattened log-mel windows [N, ..., M, T] -> [N, N]."""
    x = a.flatten(1).float()
    x = x - x.mean(1, keepdim=True)
    x = x / (x.norm(dim=1, keepdim=True) + 1e-6)
    return x @ x.T


def mine_partners(sampler, frontend, table, step_n: int, margin_n: int, min_apart_n: int):
    """For every chunk start on a grid of ``step_n`` samples of every piece of ``table``, the
    start of its hardest partner: the other window of the same piece, at least ``min_apart_n``
    samples away, whose clean log-mel correlates best with it below ``REPEAT_CORR`` (an exact
    repeat is not a negative). -> (first grid slot of each piece [P], partner slot [S])."""
    import torch

    cfg = frontend.cfg
    win_n, t = cfg.window_samples, cfg.window_frames
    if step_n % cfg.hop_frames or margin_n % cfg.hop_frames:
        raise ValueError("the mining grid and the window margin must be whole frames")
    off, span = table
    counts = (span + step_n - 1) // step_n
    first = torch.cumsum(counts, 0) - counts
    partner = torch.empty(int(counts.sum()), dtype=torch.long, device=off.device)
    apart = max(1, -(-min_apart_n // step_n))
    for i in range(len(off)):
        n, o = int(counts[i]), int(off[i])
        x = sampler.data[o + margin_n : o + margin_n + (n - 1) * step_n + win_n].float()
        mel = frontend(x[None])[0]  # [M, F]
        f0 = torch.arange(n, device=mel.device) * (step_n // cfg.hop_frames)
        w = mel[:, f0[:, None] + torch.arange(t, device=mel.device)[None]]  # [M, n, T]
        c = logmel_corr(w.permute(1, 0, 2))
        k = torch.arange(n, device=c.device)
        c = c.masked_fill(((k[:, None] - k[None]).abs() < apart) | (c >= REPEAT_CORR), -2.0)
        best = c.argmax(1)
        lone = c.max(1).values <= -2.0  # nothing far enough away (a short piece): itself
        partner[int(first[i]) : int(first[i]) + n] = torch.where(lone, k, best)
    return first, partner


def nt_xent(za, zp, piece, pos, tau: float, overlap_n: int, repeat=None):
    """Symmetric NT-Xent; pairs from the same piece closer than ``overlap_n`` samples, and
    pairs marked in ``repeat`` [B, B] (exact repeats), are not counted as negatives."""
    import torch
    import torch.nn.functional as F

    b = za.shape[0]
    z = torch.cat([za, zp]).float()
    sim = z @ z.T / tau
    same = (piece[:, None] == piece[None]) & ((pos[:, None] - pos[None]).abs() < overlap_n)
    if repeat is not None:
        same = same | repeat
    same = same.repeat(2, 2)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    mask = same.clone()
    mask[torch.arange(2 * b), target] = False
    sim = sim.masked_fill(mask, float("-inf"))
    return F.cross_entropy(sim, target)


def _chunk_n(mel_cfg) -> int:
    """Samples of the chunk a view pair is cut from: the window and 0.35 s either side."""
    return mel_cfg.window_samples + 2 * int(0.35 * mel_cfg.sample_rate)


def _views(sampler, frontend, cfg, aug_cfg, b, split, gen=None, hard_frac: float = 0.0):
    import torch

    from copytrace.train.audio_augment import degrade, vary_source

    sr = sampler.sample_rate
    win_n = frontend.cfg.window_samples
    chunk_n = _chunk_n(frontend.cfg)
    pairs = int(b * hard_frac) // 2
    draws = [sampler.draw(b - 2 * pairs, split, gen)] if b > 2 * pairs else []
    if pairs:
        draws.append(sampler.draw_pairs(pairs, split, gen))
    chunk, piece, pos = (torch.cat(d) for d in zip(*draws))
    music, _, _ = sampler.draw(b, split, gen)
    extra = sampler.chunk_n - chunk_n  # room drawn for source-side resampling
    if extra:
        if split == "train" and aug_cfg.source_speed > 0:
            chunk, music = vary_source(chunk, chunk_n, aug_cfg), vary_source(music, chunk_n, aug_cfg)
        else:
            chunk, music = chunk[:, extra // 2 : extra // 2 + chunk_n], music[:, :chunk_n]
        pos = pos + extra // 2
    margin = (chunk_n - win_n) // 2
    anchor = chunk[:, margin : margin + win_n]
    shift = ((torch.rand(b, device=chunk.device, generator=gen) * 2 - 1) * cfg.max_shift_s * sr).long()
    positive = degrade(chunk, music, margin + shift, win_n, aug_cfg)
    a = frontend(anchor)[:, None]
    p = frontend(positive)[:, None]
    return a, p, piece, pos + margin


def validate(model, sampler, frontend, cfg, aug_cfg, n: int = 2048, hard: bool = False) -> float:
    """Top-1 of each degraded view among n clean held-out windows (fixed seed); ``hard``: the n
    are n/2 windows and their mined partners (near-repeats of the same piece)."""
    import torch

    gen = torch.Generator(device=sampler.device).manual_seed(123)
    model.eval()
    with torch.no_grad(), torch.autocast(sampler.device.type, torch.bfloat16, enabled=cfg.amp):
        a, p, piece, pos = _views(sampler, frontend, cfg, aug_cfg, n, "val", gen,
                                  hard_frac=1.0 if hard else 0.0)
        za, zp = model(a).float(), model(p).float()
    model.train()
    sim = zp @ za.T
    hit = sim.argmax(1) == torch.arange(n, device=sim.device)
    # A neighbour that overlaps in time is also right.
    best = sim.argmax(1)
    near = (piece[best] == piece) & ((pos[best] - pos).abs() < 0.25 * sampler.sample_rate)
    return float((hit | near).float().mean())


def _save(model, cfg: AudioTrainConfig, out_dir: Path, meta: dict) -> None:
    """Weights (float32, CPU) + metadata; called during training too, so a run cut short
    still leaves its latest weights behind."""
    import torch

    out_dir.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().float().cpu() for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "meta": meta}, out_dir / f"audio-{cfg.name}.pt")


def train(cfg: AudioTrainConfig, pack_dir, out_dir: Path, init: Path | None = None) -> dict:
    """``pack_dir``: one pack folder or a list of them."""
    import torch

    from copytrace.models.audio_frontend import MelConfig
    from copytrace.models.audio_net import AudioFingerprintNet, AudioNetConfig, TorchMelFrontend
    from copytrace.train.audio_augment import AugmentConfig

    torch.manual_seed(cfg.seed)
    dev = torch.device(cfg.device if (cfg.device == "cpu" or torch.cuda.is_available()) else "cpu")
    if dev.type == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True
    mel_cfg = MelConfig(f_min=cfg.f_min, n_fft=cfg.n_fft, window_frames=cfg.window_frames)
    aug_cfg = AugmentConfig(sample_rate=mel_cfg.sample_rate, **cfg.augment)
    chunk_n = _chunk_n(mel_cfg)
    if aug_cfg.source_speed > 0:
        chunk_n = math.ceil(chunk_n * (1 + aug_cfg.source_speed)) + 2
    sampler = PackSampler(pack_dir, chunk_n, dev, cfg.val_tracks, cfg.seed)
    frontend = TorchMelFrontend(mel_cfg).to(dev)
    sampler.partners = {}
    if not aug_cfg.source_speed:  # hard partners, to train on (hard_frac) and to validate on
        t_mine = time.time()
        step_n, margin_n = int(0.1 * mel_cfg.sample_rate), (chunk_n - mel_cfg.window_samples) // 2
        with torch.no_grad():
            for split, table in (("train", sampler.train), ("val", sampler.val)):
                sampler.partners[split] = (*mine_partners(sampler, frontend, table, step_n,
                                                          margin_n, mel_cfg.sample_rate), step_n)
        log.info("hard partners mined in %.1f s", time.time() - t_mine)

    def measure() -> dict:
        n = min(2048, 8 * cfg.batch)
        out = {"val_top1": round(validate(model, sampler, frontend, cfg, aug_cfg, n=n), 4)}
        if sampler.partners:
            out["val_hard"] = round(validate(model, sampler, frontend, cfg, aug_cfg, n=n, hard=True), 4)
        return out

    net_cfg = AudioNetConfig(widths=tuple(cfg.widths), dims=cfg.dims, n_mels=mel_cfg.n_mels,
                             window_frames=mel_cfg.window_frames)
    model = AudioFingerprintNet(net_cfg)
    if init is not None:
        model.load_state_dict(torch.load(init, map_location="cpu", weights_only=False)["state_dict"])
        log.info("initialised from %s", init)
    model = model.to(dev).to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    total = cfg.steps
    history = []
    if init is not None:  # the starting point, measured as this configuration measures
        history.append({"step": 0, **measure()})
        log.info("%s", history[-1])
    t0 = time.time()
    step = 0
    while step < total:
        if step == 10:
            t10 = time.time()
        if step == 40:  # fit the schedule into the time budget, measured after warm-up
            per_step = (time.time() - t10) / 30
            total = max(41, min(cfg.steps, int((cfg.time_budget_s - (t10 - t0)) / per_step)))
            log.info("%.1f ms/step -> %d steps", per_step * 1000, total)
        warm = max(1, int(cfg.warmup_frac * total))
        lr = cfg.lr * min(1.0, (step + 1) / warm) * 0.5 * (1 + math.cos(math.pi * min(1.0, step / total)))
        for g in opt.param_groups:
            g["lr"] = lr
        with torch.no_grad():
            a, p, piece, pos = _views(sampler, frontend, cfg, aug_cfg, cfg.batch, "train",
                                      hard_frac=cfg.hard_frac)
            repeat = logmel_corr(a) >= REPEAT_CORR if cfg.hard_frac else None
        with torch.autocast(dev.type, torch.bfloat16, enabled=cfg.amp):
            z = model(torch.cat([a, p]).contiguous(memory_format=torch.channels_last))
        loss = nt_xent(z[: cfg.batch], z[cfg.batch :], piece, pos, cfg.tau, mel_cfg.sample_rate,
                       repeat)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        step += 1
        if step % cfg.val_every == 0 or step == total:
            history.append({"step": step, "loss": round(float(loss.detach()), 4), **measure(),
                            "elapsed_s": round(time.time() - t0, 1)})
            log.info("%s", history[-1])
            _save(model, cfg, out_dir, {"history": history, "partial": step < total})
    result = {
        "config": asdict(cfg), "steps": step, "train_s": round(time.time() - t0, 1),
        "history": history, "mel": asdict(mel_cfg), "net": asdict(net_cfg),
        "pack_hours": round(sampler.hours, 3),
        "packs": [str(p) for p in ([pack_dir] if isinstance(pack_dir, (str, Path)) else pack_dir)],
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "init": str(init) if init else None,
    }
    _save(model, cfg, out_dir, result)
    (out_dir / f"audio-{cfg.name}.json").write_text(json.dumps(result, indent=1))
    return result


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", choices=sorted(CONFIGS), default="tiny")
    ap.add_argument("--data", type=Path, nargs="+", default=[Path("data/audio/train/pack")],
                    help="one or more pack folders (scripts/stage_audio.py pack / pack-all)")
    ap.add_argument("--out", type=Path, default=Path("ckpt/audio"))
    ap.add_argument("--time-budget-s", type=float, default=None)
    ap.add_argument("--batch", type=int, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--init", type=Path, default=None, help="checkpoint to continue from")
    a = ap.parse_args(argv)
    cfg = CONFIGS[a.config]
    if a.time_budget_s is not None:
        cfg = replace(cfg, time_budget_s=a.time_budget_s)
    if a.batch is not None:
        cfg = replace(cfg, batch=a.batch)
    if a.lr is not None:
        cfg = replace(cfg, lr=a.lr)
    train(cfg, a.data, a.out, a.init)


if __name__ == "__main__":
    main()
