"""The distillation loop: phases, AdamW + warm-up/cosine, clipping, EMA, validation, checkpoints, resume.

`train(cfg, resume=False)` runs a `TrainConfig` to the end of its last phase (or until SIGINT, which
saves `last.pt` and returns). Files in `cfg.out_dir`: `last.pt`, `best.pt` (highest mean validation
SSIM), `config.yaml` (the resolved config), `log.jsonl`, `curves.png`. Under torchrun every rank
trains (DistributedDataParallel) and rank 0 alone validates and writes.

Exact resume: the checkpoint holds model, optimizer, EMA, step, phase and RNG states, and samples are
keyed by (seed, epoch, index), so a resumed run repeats the uninterrupted run's losses.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from edgesharp.edge.errors import EdgesharpError
from edgesharp.train import checkpoint, models
from edgesharp.train.config import TrainConfig, save_config, to_dict
from edgesharp.train.data import (
    ResumableSampler,
    batches_per_epoch,
    build_dataset,
    collate,
    find_images,
    worker_init,
)
from edgesharp.train.distributed import Dist, all_reduce_mean, barrier, setup, teardown
from edgesharp.train.losses import RestorationLoss, distillation_loss
from edgesharp.train.schedule import EMA, WarmupCosine, phase_at
from edgesharp.train.teachers import CachedTeacher, build_teacher

log = logging.getLogger(__name__)


class TrainingDiverged(EdgesharpError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


@dataclass
class Result:
    status: str
    step: int
    out_dir: Path
    best_ssim: float | None = None
    losses: list[float] = field(default_factory=list)


class Validator:
    """DESIGN.md SSIM/PSNR of the model on a held-out folder at the configured blur levels."""

    def __init__(self, cfg: TrainConfig, multiple: int):
        from edgesharp.edge.imaging.degrade import degrade_level
        from edgesharp.edge.imaging.io import read_image
        from edgesharp.edge.imaging.splits import downscale, split_of
        from edgesharp.train.builtin import ensure_builtin

        v = cfg.validation
        folder = ensure_builtin("val", max(1, v.max_images)) if v.source == "builtin" else Path(v.source)
        files = [f for f in find_images(folder) if not v.split or split_of(f.name) == v.split][: v.max_images or None]
        if not files:
            raise EdgesharpError(f"validation.source: {folder} holds no images" + (f" in its {v.split} split" if v.split else ""))
        self.items = []  # (name, gt, {level: blurred})
        for f in files:
            img = downscale(read_image(f), v.downscale)
            h, w = img.shape[:2]
            side = max(multiple, v.max_side // multiple * multiple)
            th, tw = min(h, side), min(w, side)
            y, x = (h - th) // 2, (w - tw) // 2
            gt = np.ascontiguousarray(img[y : y + th, x : x + tw])
            self.items.append((f.stem, gt, {lv: degrade_level(gt, lv, f.stem)[0] for lv in v.levels}))
        self.levels, self.multiple = list(v.levels), multiple
        log.info("validation: %d images from %s at %s", len(self.items), folder, ", ".join(self.levels))

    @torch.no_grad()
    def __call__(self, model: torch.nn.Module, device: torch.device) -> dict:
        from edgesharp.edge.imaging.metrics import psnr, ssim

        was, tuned = model.training, torch.backends.cudnn.benchmark
        model.eval()
        torch.backends.cudnn.benchmark = False  # images of many sizes: no kernel search for each
        scores = {lv: {"ssim": [], "psnr": []} for lv in self.levels}
        for _, gt, blurred in self.items:
            for lv, img in blurred.items():
                x = torch.from_numpy(img).permute(2, 0, 1)[None].float().div(255).to(device)
                xp, size = models.pad_to_multiple(x, self.multiple)
                y = models.unpad(model(xp), size)[0].clamp(0, 1)
                out = (y * 255).round().byte().permute(1, 2, 0).cpu().numpy()
                scores[lv]["ssim"].append(ssim(gt, out))
                scores[lv]["psnr"].append(psnr(gt, out))
        model.train(was)
        torch.backends.cudnn.benchmark = tuned
        res = {lv: {k: float(np.mean(v)) for k, v in s.items()} for lv, s in scores.items()}
        res["mean_ssim"] = float(np.mean([res[lv]["ssim"] for lv in self.levels]))
        return res


class SigintFlag:
    """Turns the first Ctrl-C into a flag the loop checks after each step (a second one interrupts)."""

    def __init__(self):
        self.set = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.set:
            raise KeyboardInterrupt
        self.set = True
        log.warning("interrupt received: saving a checkpoint after this step (Ctrl-C again to abort)")

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


def _names(keys: list[str], most: int = 4) -> str:
    return (", ".join(keys[:most]) + (", ..." if len(keys) > most else "")) if keys else "none"


def _append_jsonl(path: Path, record: dict) -> None:
    with path.open("a") as f:
        f.write(json.dumps(record) + "\n")


def fit_budget(phases, done: int, seconds_per_step: float, seconds_left: float) -> float:
    """Scale the steps still to run (in place: the rest of the current phase and every later phase) by one
    factor so that they take `seconds_left`; finished phases and steps stay as they are. Returns the factor."""
    current, k = phase_at(phases, done)
    remaining = max(1, sum(p.steps for p in phases) - done)
    factor = max(seconds_left, 0.0) / max(seconds_per_step, 1e-9) / remaining
    phases[current].steps = k + max(1, round((phases[current].steps - k) * factor))
    for p in phases[current + 1 :]:
        p.steps = max(1, round(p.steps * factor))
    return factor


def _make_loader(dataset, sampler: ResumableSampler, cfg: TrainConfig, device: torch.device) -> DataLoader:
    return DataLoader(
        dataset, batch_size=cfg.data.batch_size, sampler=sampler, num_workers=cfg.data.workers,
        collate_fn=collate, worker_init_fn=worker_init, pin_memory=device.type == "cuda", drop_last=True,
        persistent_workers=False,
    )


def train(cfg: TrainConfig, resume: bool = False, stop_at_step: int | None = None) -> Result:
    """Run `cfg`; `resume` continues from `out_dir/last.pt`; `stop_at_step` ends early (and saves)."""
    d = setup(cfg.device)
    try:
        return _train(cfg, d, resume, stop_at_step)
    finally:
        teardown(d)


def _train(cfg: TrainConfig, d: Dist, resume: bool, stop_at_step: int | None) -> Result:
    out = Path(cfg.out_dir)
    last_path, best_path, log_path = out / "last.pt", out / "best.pt", out / "log.jsonl"
    if not resume and last_path.exists():  # every rank checks, so none waits for a rank that stopped
        raise EdgesharpError(f"{last_path} exists: pass --resume to continue it, or choose another out_dir")
    if d.main:
        out.mkdir(parents=True, exist_ok=True)
    barrier(d)

    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    if d.device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed crop shapes: each convolution's fastest kernel, found once
    model = models.create(cfg.arch, **cfg.arch_config)
    if cfg.init_from and not resume:
        if cfg.init_partial:
            loaded, dropped, fresh = checkpoint.load_matching(model, cfg.init_from)
            log.info("initialised %s from %s: %d tensors loaded, %d of the file not used (%s), %d new (%s)",
                     cfg.arch, cfg.init_from, len(loaded), len(dropped), _names(dropped), len(fresh), _names(fresh))
        else:
            checkpoint.load_weights(model, cfg.init_from)
            log.info("initialised %s from %s", cfg.arch, cfg.init_from)
    model.to(d.device)
    ema = EMA(model, cfg.optim.ema_decay, cfg.optim.ema_warmup) if cfg.optim.ema_decay > 0 else None
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.phases[0].lr, betas=tuple(cfg.optim.betas),
                            weight_decay=cfg.optim.weight_decay)
    sched = WarmupCosine(opt, cfg.phases, cfg.optim.lr_scale)
    step, best, metrics = 0, None, {}
    if resume:
        ckpt = checkpoint.read_checkpoint(last_path)
        model.load_state_dict(ckpt["model"])
        if ema is not None and ckpt.get("ema"):
            ema.module.load_state_dict(ckpt["ema"])
        opt.load_state_dict(ckpt["optimizer"])
        sched.load_state_dict(ckpt["scheduler"])
        step, metrics = int(ckpt["step"]), ckpt.get("metrics") or {}
        best = metrics.get("best_mean_ssim")
        checkpoint.set_rng_state(ckpt["rng"])
        saved_phases = ckpt["config"].get("phases") or []
        if ckpt["config"].get("time_budget_s") and len(saved_phases) == len(cfg.phases):
            for phase, saved in zip(cfg.phases, saved_phases, strict=True):  # as the budget scaled them
                phase.steps = int(saved["steps"])
        changed = sorted(k for k, v in to_dict(cfg).items() if ckpt["config"].get(k) != v)
        if changed:
            log.warning("resuming with a config that differs from the checkpoint's in: %s", ", ".join(changed))
        log.info("resumed %s at step %d", last_path, step)

    teacher = build_teacher(cfg.teacher, d.device)
    dataset = build_dataset(cfg, cfg.teacher.path if isinstance(teacher, CachedTeacher) else None)
    per_epoch = batches_per_epoch(dataset, cfg.data.batch_size, d.world)
    sampler = ResumableSampler(dataset, d.world, d.rank, cfg.seed)
    validator = Validator(cfg, model.size_multiple) if cfg.validation.source and d.main else None
    net = model
    if d.enabled:
        net = torch.nn.parallel.DistributedDataParallel(model, device_ids=[d.device.index] if d.device.type == "cuda" else None)
    loss_fn = RestorationLoss(cfg.loss)
    amp = cfg.optim.amp and d.device.type == "cuda"
    total = sum(p.steps for p in cfg.phases)
    end = min(total, stop_at_step) if stop_at_step is not None else total
    if d.main:
        save_config(cfg, out / "config.yaml")

    def save(path: Path, current: int) -> None:
        if d.main:
            checkpoint.save_checkpoint(path, model, ema=ema.module if ema else None, optimizer=opt, scheduler=sched,
                                       step=current, phase=phase_at(cfg.phases, max(0, current - 1))[0],
                                       config=to_dict(cfg), metrics=metrics)

    bar = None
    if d.main and cfg.progress:
        from tqdm import tqdm

        bar = tqdm(total=total, initial=step, desc=cfg.arch, unit="step", dynamic_ncols=True)
    model.train()
    result = Result("done", step, out, best)
    iterator, iter_key = None, None
    t_last, steps_since = time.perf_counter(), 0
    t_start, first_step, probe_t = t_last, step, None
    with SigintFlag() as sigint:
        while step < end:
            phase_i, _ = phase_at(cfg.phases, step)
            phase = cfg.phases[phase_i]
            epoch, offset = divmod(step, per_epoch)
            if iterator is None or iter_key != (epoch, phase_i):
                dataset.set_epoch(epoch)
                dataset.set_subsets(phase.subsets)
                sampler.set_epoch(epoch)
                sampler.start = offset * cfg.data.batch_size
                iterator, iter_key = iter(_make_loader(dataset, sampler, cfg, d.device)), (epoch, phase_i)
            batch = next(iterator)
            lr = sched.apply(step)
            lq = batch["lq"].to(d.device, non_blocking=True).float().div_(255)
            gt = batch["gt"].to(d.device, non_blocking=True).float().div_(255)
            target_t = None
            if phase.alpha < 1.0:
                if "teacher" in batch:
                    target_t = batch["teacher"].to(d.device, non_blocking=True).float().div_(255)
                else:
                    target_t = teacher(lq, batch["key"])
            with torch.autocast("cuda", dtype=torch.bfloat16) if amp else contextlib.nullcontext():
                pred = net(lq)
            loss, parts = distillation_loss(loss_fn, pred.float(), gt, target_t, phase.alpha)
            # one collective per step: the mean loss, any rank's non-finite loss, any rank's Ctrl-C
            flags = torch.tensor([0.0, float(sigint.set)], device=loss.device)
            flags[0] = (~torch.isfinite(loss.detach())).float()
            check = all_reduce_mean(torch.cat([loss.detach().reshape(1), flags]), d)
            if check[1] > 0 or not math.isfinite(float(check[0])):
                good = f"{last_path} (step {checkpoint.read_checkpoint(last_path)['step']})" if last_path.exists() else "none written yet"
                raise TrainingDiverged(f"non-finite loss ({float(loss.detach()):.4g}) at step {step + 1}; last good checkpoint: {good}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.optim.grad_clip > 0:
                torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.optim.grad_clip)
            opt.step()
            if ema is not None:
                ema.update(model, step)
            step += 1
            steps_since += 1
            if cfg.time_budget_s > 0 and step - first_step in (10, 10 + cfg.budget_probe_steps):
                now = time.perf_counter()
                if probe_t is None:
                    probe_t = now
                else:  # ranks average their clocks, so every rank scales its phases alike
                    timing = torch.tensor([(now - probe_t) / cfg.budget_probe_steps, now - t_start], device=d.device)
                    rate, elapsed = (float(v) for v in all_reduce_mean(timing, d))
                    factor = fit_budget(cfg.phases, step, rate, cfg.time_budget_s - elapsed)
                    total = sum(p.steps for p in cfg.phases)
                    end = min(total, stop_at_step) if stop_at_step is not None else total
                    if bar is not None:
                        bar.total = total
                    if d.main:
                        save_config(cfg, out / "config.yaml")
                    log.info("time budget %.0f s: %.3f s a step, steps scaled by %.3f to %d (phases %s)",
                             cfg.time_budget_s, rate, factor, total, ", ".join(str(p.steps) for p in cfg.phases))
            loss_value = float(check[0])
            result.losses.append(loss_value)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss_value:.4f}", lr=f"{lr:.2e}", phase=phase_i, refresh=False)
            if d.main and (step % cfg.log_every == 0 or step == end):
                now = time.perf_counter()
                record = {"step": step, "phase": phase_i, "loss": loss_value, "lr": lr,
                          "it_s": steps_since / max(now - t_last, 1e-9), "time": time.time()}
                record.update({k: float(v) for k, v in parts.items()})
                _append_jsonl(log_path, record)
                t_last, steps_since = now, 0
            if validator is not None and (step % cfg.validation.every == 0 or step == total):
                scores = validator(ema.module if ema else model, d.device)
                metrics["val"] = scores
                _append_jsonl(log_path, {"step": step, "val": scores, "time": time.time()})
                log.info("step %d: validation mean SSIM %.4f (%s)", step, scores["mean_ssim"],
                         ", ".join(f"{lv} {scores[lv]['ssim']:.4f}/{scores[lv]['psnr']:.2f}dB" for lv in cfg.validation.levels))
                if best is None or scores["mean_ssim"] > best:
                    best = metrics["best_mean_ssim"] = scores["mean_ssim"]
                    metrics["best_step"] = step
                    save(best_path, step)
            interrupted = bool(check[2] > 0)
            if step % cfg.save_every == 0 or interrupted or step == end:
                save(last_path, step)
            if interrupted:
                result.status = "interrupted"
                log.warning("interrupted at step %d; %s saved", step, last_path)
                break
    if bar is not None:
        bar.close()
    barrier(d)
    result.step, result.best_ssim = step, best
    if d.main and step >= total and log_path.exists():
        try:
            from edgesharp.train.curves import plot_curves

            plot_curves(log_path, out / "curves.png")
        except ImportError:
            log.warning("matplotlib is not installed: no curves.png (pip install matplotlib)")
    return result
