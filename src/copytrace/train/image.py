"""Train the image/frame copy descriptor (SSCD-style) and write weights, ONNX and its spec.

    python -m copytrace.train.image --config h100 --data data/images --out OUTDIR --seed 0

``--data`` holds ``train/`` (tar shards of JPEGs, ``manifest.json``) and ``val/`` (held-out
images from the train packages). Everything after decoding runs on the device: the image set
sits there as one uint8 tensor and every edit is drawn there.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from copytrace.models.resnet import DescriptorNet
from copytrace.train.augment import Editor, normalise
from copytrace.train.config import CONFIGS, TrainConfig
from copytrace.train.loss import koleo, soft_info_nce
from copytrace.train.shards import load_images, manifest_hash
from copytrace.train.sprites import render_sprites
from copytrace.train.valset import ValSet, build_val_set, evaluate

log = logging.getLogger("copytrace.train.image")
MODEL_NAME = "ct-image-r18s"


def _optimizer(model: DescriptorNet, cfg: TrainConfig) -> torch.optim.Optimizer:
    # no weight decay on BN parameters and biases: decaying them only fights the norm layers
    decay = [p for p in model.parameters() if p.ndim > 1]
    other = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": cfg.weight_decay},
              {"params": other, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999),
                             fused=cfg.device == "cuda")


def _lr_at(step: int, cfg: TrainConfig, total_steps: int) -> float:
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    t = (step - cfg.warmup_steps) / max(1, total_steps - cfg.warmup_steps)
    return cfg.lr * 0.5 * (1 + math.cos(math.pi * t))


class Trainer:
    def __init__(self, cfg: TrainConfig, train_images: np.ndarray, val: ValSet, seed: int) -> None:
        self.cfg = cfg
        self.device = torch.device(cfg.device)
        torch.manual_seed(seed)
        self.gen = torch.Generator(self.device).manual_seed(seed)
        self.images = torch.from_numpy(train_images).to(self.device)
        texts, shapes = render_sprites(cfg.n_text_sprites, cfg.n_shape_sprites, seed)
        self.editor = Editor(torch.from_numpy(texts).to(self.device),
                             torch.from_numpy(shapes).to(self.device))
        self.val = val.to(self.device)
        self.model = DescriptorNet(cfg.net).to(self.device).to(memory_format=torch.channels_last)
        self.opt = _optimizer(self.model, cfg)
        self.forward = torch.compile(self.model.embed) if cfg.compile else self.model.embed
        self._order = torch.empty(0, dtype=torch.long, device=self.device)
        self.total_steps = cfg.steps
        self._budget_mark: tuple[int, float] | None = None

    def lr_at(self, step: int) -> float:
        return _lr_at(step, self.cfg, self.total_steps)

    def mark_budget(self, step: int) -> None:
        self._sync()
        self._budget_mark = (step, time.perf_counter())

    def fit_steps_to_budget(self, step: int, elapsed_s: float, budget_s: float) -> None:
        """After warm-up (which includes compilation), size the cosine schedule so training
        ends within ``budget_s``, at the step time measured so far (compile time excluded)."""
        self._sync()
        now = time.perf_counter()
        if self._budget_mark is None:
            return
        mark_step, mark_t = self._budget_mark
        per_step = (now - mark_t) / max(1, step - mark_step)
        fit = step + int(0.97 * (budget_s - elapsed_s) / per_step)  # margin for val passes
        self.total_steps = max(step + 1, min(self.cfg.steps, fit))
        log.info("time budget %.0f s: %.3f s/step -> %d steps", budget_s, per_step,
                 self.total_steps)

    def _next_batch(self) -> torch.Tensor:
        if self._order.numel() < self.cfg.batch:
            n = self.images.shape[0]
            self._order = torch.cat([self._order,
                                     torch.randperm(n, generator=self.gen, device=self.device)])
        idx, self._order = self._order[: self.cfg.batch], self._order[self.cfg.batch :]
        return idx

    def make_views(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(views [2B, 3, S, S] normalised, content [2B, B])."""
        cfg, s, b = self.cfg, self.cfg.train_size, idx.numel()
        first, _ = self.editor.views(self.images, idx, s, cfg.first_edits, self.gen)
        second, content = self.editor.views(self.images, idx, s, cfg.edits, self.gen)
        views = normalise(torch.cat([first, second])).contiguous(memory_format=torch.channels_last)
        content = torch.cat([torch.eye(b, device=self.device), content])
        return views, content

    def step(self, step: int) -> dict:
        cfg = self.cfg
        for g in self.opt.param_groups:
            g["lr"] = self.lr_at(step)
        with torch.no_grad():
            views, content = self.make_views(self._next_batch())
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=cfg.bf16):
            z = self.forward(views)
        z = F.normalize(z.float(), dim=1)
        nce = soft_info_nce(z, content, cfg.temperature)
        ent = koleo(z, content)
        loss = nce + cfg.koleo_weight * ent
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return {"loss": loss, "nce": nce, "koleo": ent}

    def augmentation_rate(self, iters: int) -> float:
        """Views per second of the edit pipeline alone (both views of a batch)."""
        self._sync()
        t0 = time.perf_counter()
        with torch.no_grad():
            for _ in range(iters):
                self.make_views(self._next_batch())
        self._sync()
        return 2 * self.cfg.batch * iters / (time.perf_counter() - t0)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize()


def train(cfg: TrainConfig, data: Path, out: Path, seed: int, command: str,
          init: Path | None = None) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    train_images, _ = load_images(data / "train", cfg.data_size)
    val_images, _ = load_images(data / "val", cfg.data_size)
    t_decode = time.perf_counter() - t_start
    log.info("decoded %d train and %d val images in %.1f s", len(train_images), len(val_images),
             t_decode)
    # the val edits draw their own sprites (another seed), fixed whatever the training seed
    cpu_texts, cpu_shapes = render_sprites(cfg.n_text_sprites, cfg.n_shape_sprites, 4321)
    cpu_editor = Editor(torch.from_numpy(cpu_texts), torch.from_numpy(cpu_shapes))
    val = build_val_set(val_images, cpu_editor, cfg.val_queries_per_image, seed=1234)
    if cfg.device == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True
    trainer = Trainer(cfg, train_images, val, seed)
    if init is not None:  # continue from earlier weights (a new schedule, same recipe)
        state = torch.load(init, map_location=trainer.device, weights_only=True)
        trainer.model.load_state_dict(state)
        log.info("initialised from %s", init)
    aug_rate = trainer.augmentation_rate(3 if cfg.device == "cpu" else 20)
    log.info("augmentation alone: %.0f views/s", aug_rate)

    curve: list[dict] = []
    losses: list[float] = []
    t_train = time.perf_counter()
    t_log, step_log = t_train, 0
    step = 0
    while step < trainer.total_steps:
        if cfg.time_budget_s and step == cfg.warmup_steps // 2:
            trainer.mark_budget(step)
        if cfg.time_budget_s and step == cfg.warmup_steps:
            trainer.fit_steps_to_budget(step, time.perf_counter() - t_train, cfg.time_budget_s)
        stats = trainer.step(step)
        last = step == trainer.total_steps - 1
        if (step + 1) % cfg.log_every == 0 or last:
            trainer._sync()
            now = time.perf_counter()
            rate = 2 * cfg.batch * (step + 1 - step_log) / (now - t_log)
            t_log, step_log = now, step + 1
            row = {k: float(v.detach()) for k, v in stats.items()}
            losses.append(row["loss"])
            log.info("step %d loss %.4f nce %.4f koleo %.4f lr %.2e %.0f views/s", step + 1,
                     row["loss"], row["nce"], row["koleo"], trainer.lr_at(step), rate)
            curve.append({"step": step + 1, "time_s": round(now - t_train, 2), **row,
                          "views_per_s": round(rate)})
        if (step + 1) % cfg.val_every == 0 or last:
            res = evaluate(trainer.model, trainer.val, cfg.train_size)
            log.info("val step %d: µAP %.4f R@P90 %.4f rank1 %.4f", step + 1, res["uap"],
                     res["recall_at_p90"], res["rank1"])
            curve.append({"step": step + 1, "time_s": round(time.perf_counter() - t_train, 2),
                          "val_uap": res["uap"], "val_recall_at_p90": res["recall_at_p90"],
                          "val_rank1": res["rank1"]})
        step += 1
    trainer._sync()
    train_s = time.perf_counter() - t_train

    model = trainer.model.float()
    finals = [evaluate(model, trainer.val, s) for s in cfg.eval_sizes]
    for r in finals:
        log.info("final @%d: µAP %.4f R@P90 %.4f rank1 %.4f thr %.3f (P %.3f)", r["size"],
                 r["uap"], r["recall_at_p90"], r["rank1"], r["threshold_similarity"],
                 r["threshold_precision"])
    best = _choose_size(finals)
    state = {k: v.detach().float().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, out / f"{MODEL_NAME}.pt")
    manifest_dir = data / "train" if (data / "train" / "manifest.json").is_file() else data
    summary = {
        "config": cfg.name, "seed": seed, "command": command,
        "init": str(init) if init is not None else None,
        "data_manifest": manifest_hash(manifest_dir), "n_train_images": int(len(train_images)),
        "n_val_images": int(len(val_images)), "steps": trainer.total_steps,
        "train_wall_s": round(train_s, 1), "total_wall_s": round(time.perf_counter() - t_start, 1),
        "decode_s": round(t_decode, 1), "augment_views_per_s": round(aug_rate),
        "train_views_per_s": round(2 * cfg.batch * trainer.total_steps / train_s),
        "device": torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu",
        "torch": torch.__version__, "net": asdict(cfg.net), "train_config": _jsonable(cfg),
        "final": finals, "chosen_size": best["size"], "curve": curve, "losses": losses,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    spec = spec_from_summary(summary)
    (out / f"{MODEL_NAME}.json").write_text(json.dumps(spec, indent=1))
    return summary


def _choose_size(finals: list[dict]) -> dict:
    """Best val µAP, but prefer a smaller (cheaper on CPU) size within 0.005 of it."""
    top = max(r["uap"] for r in finals)
    return min((r for r in finals if r["uap"] >= top - 0.005), key=lambda r: r["size"])


def spec_from_summary(summary: dict, version: str = "1.0.0") -> dict:
    """The DescriptorSpec JSON (models/registry.py) for the chosen input size."""
    from copytrace.train.augment import IMAGENET_MEAN, IMAGENET_STD

    r = next(f for f in summary["final"] if f["size"] == summary["chosen_size"])
    return {
        "name": MODEL_NAME, "version": version, "media": "image", "file": f"{MODEL_NAME}.onnx",
        "input_size": [r["size"], r["size"]], "resize": "squash",
        "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD), "dims": summary["net"]["dims"],
        "metric": "cosine", "normalise": "l2",
        "threshold_similarity": round(r["threshold_similarity"], 4),
        "score_slope": round(r["score_slope"], 3),
        "threshold_precision": round(r["threshold_precision"], 4),
        "calibration": "val (train packages)",
        "training": {
            "command": summary["command"], "seed": summary["seed"],
            "data_manifest": summary["data_manifest"], "steps": summary["steps"],
            "wall_time_s": summary["train_wall_s"], "device": summary["device"],
            "val_uap": round(r["uap"], 4), "val_recall_at_p90": round(r["recall_at_p90"], 4),
            "net": summary["net"],
        },
    }


def _jsonable(cfg: TrainConfig) -> dict:
    return json.loads(json.dumps(asdict(cfg), default=list))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m copytrace.train.image", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", choices=sorted(CONFIGS), required=True)
    p.add_argument("--data", type=Path, required=True, help="folder with train/ and val/")
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=None, help="override the config's steps")
    p.add_argument("--koleo-weight", type=float, default=None, help="override for tuning")
    p.add_argument("--init", type=Path, default=None,
                   help="start from this fp32 state_dict (e.g. weights/ct-image-r18s.pt)")
    p.add_argument("--lr", type=float, default=None, help="override the peak learning rate")
    p.add_argument("--no-compile", action="store_true", help="run the network eagerly")
    p.add_argument("--time-budget-s", type=float, default=None,
                   help="fit the schedule to this many seconds of training (at most --steps)")
    p.add_argument("--onnx", action="store_true", help="also export the FP32 ONNX file")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stdout)
    cfg = CONFIGS[args.config]
    overrides = {}
    if args.steps is not None:
        overrides["steps"] = args.steps
        overrides["warmup_steps"] = min(cfg.warmup_steps, args.steps // 10)
        overrides["val_every"] = min(cfg.val_every, max(1, args.steps // 4))
    if args.koleo_weight is not None:
        overrides["koleo_weight"] = args.koleo_weight
    if args.time_budget_s is not None:
        overrides["time_budget_s"] = args.time_budget_s
    if args.lr is not None:
        overrides["lr"] = args.lr
    if args.no_compile:
        overrides["compile"] = False
    if overrides:
        from dataclasses import replace

        cfg = replace(cfg, **overrides)
    command = "python -m copytrace.train.image " + " ".join(argv if argv is not None else sys.argv[1:])
    summary = train(cfg, args.data, args.out, args.seed, command, init=args.init)
    if args.onnx:
        from copytrace.train.ship import export_checked

        size = summary["chosen_size"]
        err = export_checked(args.out / f"{MODEL_NAME}.pt", cfg.net, args.out / f"{MODEL_NAME}.onnx",
                             size)
        log.info("ONNX written at %d px, max |torch - onnxruntime| = %.2e", size, err)
    return 0


if __name__ == "__main__":
    sys.exit(main())
