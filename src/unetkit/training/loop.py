"""The training loop of one process (rank): the original UNet V2 schedule plus AMP, DDP, non-finite guard,
resume and logs. :func:`unetkit.training.train` launches it.

Original behaviour: docs/original-behaviour.md, "ValidationSchedule", "LR policy" and "Logs and checkpoints".
"""

from __future__ import annotations

import logging
import math
import os
import time

import torch
from torch import nn

from unetkit.errors import ConfigError, UnetkitError
from unetkit.inference_config import InferenceConfig
from unetkit.models import create_model
from unetkit.models.card import ModelCard, Provenance
from unetkit.models.checkpoint import load_state_dict_flexible, load_state_file, save_checkpoint
from unetkit.models.numerics import choose_compile, compile_module, resolve_numerics
from unetkit.training import ddp, init_weights
from unetkit.training.data import (
    CorruptionTracker,
    SegmentationDataset,
    ShardSampler,
    make_loader,
    tile_refs,
)
from unetkit.training.losses import batch_metrics, build_criterion
from unetkit.training.lr_policy import LRPolicyWithPatience, decay_progress, schedule_factor
from unetkit.training.run_dir import STATE_VERSION, RunDir
from unetkit.training.run_log import RunLog
from unetkit.training.setup import Job, Prepared, class_weights, creation_options, prepare, setup_determinism
from unetkit.training.validation import ValidationPreview, run_validation
from unetkit.training.validation_schedule import ValidationSchedule

log = logging.getLogger("unetkit.training")


class TrainingDiverged(UnetkitError):
    """The loss stayed non-finite for ``max_nonfinite_steps`` steps in a row."""


class Trainer:
    def __init__(self, job: Job, layout: ddp.DeviceLayout, local_rank: int, prepared: Prepared | None = None):
        self.job, self.cfg, self.layout = job, job.cfg, layout
        self.rank, self.world = ddp.rank(), ddp.world_size()
        self.device = layout.device(local_rank)
        self.is_main = self.rank == 0
        self.run = RunDir(job.run_dir)
        cfg = self.cfg
        if self.device.type == "cuda":
            torch.cuda.set_device(self.device)
        elif self.world > 1:
            torch.set_num_threads(max(1, (os.cpu_count() or 1) // self.world))
        setup_determinism(cfg, job.seed, self.rank, self.device)

        prep = prepared or prepare(job)
        self.project, self.indexing = prep.project, prep.indexing
        self.num_classes = self.indexing.num_classes
        self.neutral = self.indexing.neutral_index
        self.multilabel = self.indexing.multilabel  # sigmoid channels, packed targets
        self.binary = self.num_classes == 2 and not self.multilabel
        crop = cfg.unetkit.patch_sampling.mode == "random_crop"
        val_refs = prep.splits["val"]
        if crop:
            val_refs = tile_refs(val_refs, cfg.input_size.height, cfg.input_size.width)
        workers = cfg.data_workers
        cache = cfg.unetkit.cache_mb * 2**20
        meta = self.project.meta
        self.prep_splits = prep.splits
        self.train_set = SegmentationDataset(prep.splits["train"], meta, self.indexing, cfg, prep.preprocessing,
                                             in_channels=prep.in_channels, train=True,
                                             seed=job.seed, cache_bytes=cache // max(1, workers.train))  # fmt: skip
        self.val_set = SegmentationDataset(val_refs, meta, self.indexing, cfg, prep.preprocessing,
                                           in_channels=prep.in_channels, train=False,
                                           seed=job.seed,
                                           cache_bytes=cache // max(1, workers.val))  # fmt: skip
        self.train_sampler = ShardSampler(len(self.train_set), shuffle=True, seed=job.seed, rank=self.rank,
                                          world=self.world, batch_size=layout.batch_train)  # fmt: skip
        self.val_sampler = ShardSampler(len(self.val_set), shuffle=False, seed=job.seed, rank=self.rank,
                                        world=self.world, batch_size=layout.batch_val)  # fmt: skip
        pin = self.device.type == "cuda"
        self.train_loader = make_loader(self.train_set, self.train_sampler, workers.train, pin)
        self.val_loader = make_loader(self.val_set, self.val_sampler, workers.val, pin)
        self.iters_per_epoch = self.train_sampler.batches_per_epoch()
        self.epochs = cfg.epochs  # a Refit may change it once
        self.total_iters = cfg.epochs * self.iters_per_epoch
        self.train_errors = CorruptionTracker("train", cfg.allow_corrupted_samples.train)
        self.val_errors = CorruptionTracker("val", cfg.allow_corrupted_samples.val)

        self.model_name = cfg.unetkit.model
        self.state = self.run.load_state() if job.resume else None
        options = creation_options(cfg)
        if self.state is not None or (job.init is not None and cfg.weights_init_type == "continue_training"):
            options.pop("encoder_weights", None)  # every weight comes from the checkpoint
        options.setdefault("in_channels", prep.in_channels)
        self.model = create_model(self.model_name, self.num_classes, **options)
        self.card = ModelCard(
            model=self.model_name,
            model_options=cfg.unetkit.model_options,
            in_channels=getattr(self.model, "in_channels", 3),
            classes=self.indexing,
            preprocessing=prep.preprocessing,
            inference=InferenceConfig(),  # what a plain run implies: the original's full_image at the input size
            settings=cfg.settings(),
        )
        if self.state is not None:
            ckpt = self.run.checkpoint_dir(int(self.state["checkpoint"]))
            load_state_dict_flexible(self.model, load_state_file(ckpt / "model.pt"), strict=True)
        elif job.init is not None:
            if cfg.weights_init_type == "continue_training":
                init_weights.continue_training(self.model, job.init)
            else:
                init_weights.transfer_learning(self.model, job.init)
        else:
            if cfg.weights_init_type == "continue_training":
                raise ConfigError("Unable to continue_training, config for previous training wasn't found.")
            log.info("Weights will not be inited.")
        self.model.to(self.device)
        self.numerics = resolve_numerics(cfg.unetkit.amp, self.device)
        self.numerics.prepare_model(self.model)
        self.net: nn.Module = self.model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            shape = (2, 3, cfg.input_size.height, cfg.input_size.width)
            frozen = ddp.freeze_unused_parameters(self.model, shape, self.device)
            if frozen and self.is_main:
                log.info(
                    "%d parameters never get a gradient (e.g. %s); excluded from DDP", len(frozen), frozen[0]
                )
            self.net = nn.parallel.DistributedDataParallel(self.model, device_ids=ids)
        if self._want_compile(layout.batch_train):
            self.net = compile_module(self.net)

        lc = cfg.unetkit.loss
        self.criterion, self.loss_name = build_criterion(
            lc.name, self.num_classes, self.neutral, w_bce=cfg.loss_weights.bce, w_dice=cfg.loss_weights.dice,
            class_weights=class_weights(cfg, self.indexing), focal_gamma=lc.focal_gamma, multilabel=self.multilabel,
        )  # fmt: skip
        self.policy = LRPolicyWithPatience(cfg.lr, cfg.lr_decreasing.patience, cfg.lr_decreasing.lr_divisor)
        self.optimizer = self._new_optimizer(cfg.lr)
        self.planner = ValidationSchedule(cfg.epochs, cfg.val_every)
        self.scaler = torch.amp.GradScaler("cuda") if self.numerics.needs_grad_scaler else None
        self.checkpoints: list[dict] = []
        self.global_iter = 0
        self.start_epoch, self.start_batch = 0, 0
        self.nonfinite_streak = 0
        self.images_seen = 0
        self.data_wait_s = 0.0  # the time the step waited for its batch (decoding, cropping, augmenting)
        sc = cfg.unetkit.scheduler
        self.stretch = (sc.stretch_at, sc.stretch_from)  # where a second refit re-anchored the decay
        self._again_iter: int | None = None  # the second refit's iteration (set by the first)
        self._refit_mark: tuple[float, int, float] | None = None  # perf_counter, iteration, validation_s
        self.validation_s = (
            0.0  # the time spent validating and checkpointing (left out of a refit's step time)
        )
        self._validation_s_at_first_epoch_end = 0.0
        self._first_epoch_end: float | None = None
        self.elapsed_before = 0.0
        if self.state is not None:
            self._restore(self.state)
        self.log = None
        self.preview = ValidationPreview.for_classes(self.indexing) if self.is_main else None
        if self.is_main:
            offset = int(self.state["metrics_offset"]) if self.state is not None else None
            self.log = RunLog(self.run.path, resume_offset=offset,
                              purge_step=self.global_iter + 1 if self.state else None, progress=job.progress,
                              quiet=job.quiet)  # fmt: skip

    # ------------------------------------------------------------------ setup helpers
    def _new_optimizer(self, lr: float) -> torch.optim.Optimizer:
        opt = self.cfg.unetkit.optimizer
        if opt.name == "sgd":
            return torch.optim.SGD(self.model.parameters(), lr=lr, momentum=opt.momentum,
                                   nesterov=opt.nesterov and opt.momentum > 0, weight_decay=opt.weight_decay)  # fmt: skip
        return torch.optim.Adam(self.model.parameters(), lr=lr, weight_decay=opt.weight_decay)

    def _want_compile(self, batch: int) -> bool:
        """``compile``: on; off; auto = a short forward+backward probe at the training batch shape shows a gain."""
        mode = self.cfg.unetkit.compile
        if mode != "auto":
            return mode == "on"
        size = self.cfg.input_size
        example = torch.randn(batch, getattr(self.model, "in_channels", 3), size.height, size.width,
                              device=self.device)  # fmt: skip
        return choose_compile(self.model, example, self.numerics, train=True)

    def _restore(self, s: dict) -> None:
        if int(s["world"]) != self.world:
            raise ConfigError(
                f"cannot resume: the run used {s['world']} processes, this one has {self.world}"
            )
        self.optimizer.load_state_dict(s["optimizer"])
        if self.scaler is not None and s.get("scaler"):
            self.scaler.load_state_dict(s["scaler"])
        self.epochs = int(s.get("epochs", self.epochs))
        self.total_iters = self.epochs * self.iters_per_epoch
        self.planner = ValidationSchedule(self.epochs, float(s.get("val_every", self.cfg.val_every)))
        self.planner.load_state_dict(s["planner"])
        self.policy.load_state_dict(s["lr_policy"])
        self.checkpoints = list(s["checkpoints"])
        self.global_iter = int(s["global_iter"])
        self.start_epoch, self.start_batch = int(s["epoch"]), int(s["batches_done"])
        if self.start_batch >= self.iters_per_epoch:
            self.start_epoch, self.start_batch = self.start_epoch + 1, 0
        self.nonfinite_streak = int(s["nonfinite_streak"])
        self.images_seen = int(s["images_seen"])
        self.elapsed_before = float(s["elapsed"])
        self.data_wait_s = float(s.get("data_wait_s", 0.0))
        self.stretch = tuple(s.get("stretch", self.stretch))
        self.train_errors.failed = dict(s["corrupted"]["train"])
        self.val_errors.failed = dict(s["corrupted"]["val"])
        rng = s["rng"][self.rank]
        torch.set_rng_state(rng["torch"])
        if self.device.type == "cuda" and rng.get("cuda") is not None:
            torch.cuda.set_rng_state(rng["cuda"], self.device)

    def _rng_state(self) -> dict:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"torch": torch.get_rng_state(), "cuda": cuda}

    def _lr_now(self) -> float:
        sc = self.cfg.unetkit.scheduler
        factor = schedule_factor(sc.name, self.global_iter, self.total_iters, warmup_iters=sc.warmup_iters,
                                 min_lr_ratio=sc.min_lr_ratio, power=sc.power, hold_iters=sc.hold_iters,
                                 stretch_at=self.stretch[0], stretch_from=self.stretch[1])  # fmt: skip
        return self.policy.lr * factor

    # ------------------------------------------------------------------ steps
    def _forward_loss(self, x: torch.Tensor, y: torch.Tensor, net: nn.Module):
        with self.numerics.autocast():
            out = net(self.numerics.prepare_input(x))
        outs = out if isinstance(out, (tuple, list)) else (out,)
        # deep supervision: the model's weights (U-Net: nnU-Net's 1, ½, ¼ …), else equal ones (U²-Net)
        weighs = getattr(self.model, "output_weights", None)
        weights = weighs(len(outs)) if weighs is not None else [1.0] * len(outs)
        loss = sum(w * self.criterion(o.float(), y) for w, o in zip(weights, outs))
        return loss, outs[0]

    def _train_step(self, batch: dict) -> tuple[torch.Tensor, dict, bool]:
        x = batch["image"].to(self.device, non_blocking=True)
        y = batch["target"].to(self.device, non_blocking=True)
        lr = self._lr_now()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        loss, logits = self._forward_loss(x, y, self.net)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
        else:
            loss.backward()
        m = batch_metrics(logits.float(), y, self.neutral, self.binary, multilabel=self.multilabel)
        vec = torch.stack([torch.isfinite(loss.detach()).float(), loss.detach(), m["accuracy"],
                           m.get("dice", torch.zeros((), device=self.device))]).float()  # fmt: skip
        vec = ddp.all_reduce_sum(vec)
        finite = bool(vec[0].item() == self.world)
        if finite:
            if self.cfg.unetkit.grad_clip:
                if self.scaler is not None:
                    self.scaler.unscale_(self.optimizer)
                nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.unetkit.grad_clip)
            if self.scaler is not None:
                self.scaler.step(self.optimizer)
                self.scaler.update()
            else:
                self.optimizer.step()
        else:
            self.optimizer.zero_grad(set_to_none=True)
        self.train_errors.update(batch["failed"])
        metrics = {"loss": vec[1] / self.world, "accuracy": vec[2] / self.world}
        if self.binary:
            metrics["dice"] = vec[3] / self.world
        return x.shape[0], metrics, finite

    def validate(self) -> dict:
        # the plain module: no DDP collectives inside the (uneven) validation loop
        return run_validation(
            self.model, self.val_loader, lambda x, y: self._forward_loss(x, y, self.model), device=self.device,
            num_classes=self.num_classes, neutral=self.neutral, binary=self.binary, multilabel=self.multilabel,
            class_title_to_idx=self.indexing.class_title_to_idx, tracker=self.val_errors,
            eval_mode=self.cfg.validate_with_model_eval, preview=self.preview,
        )  # fmt: skip

    # ------------------------------------------------------------------ checkpoints
    def _validate_and_checkpoint(
        self, epoch: int, batches_done: int, epoch_flt: float, t_start: float
    ) -> None:
        started = time.perf_counter()
        try:
            self._validate_and_checkpoint_now(epoch, batches_done, epoch_flt, t_start)
        finally:
            self.validation_s += time.perf_counter() - started  # a refit times the steps without it

    def _validate_and_checkpoint_now(
        self, epoch: int, batches_done: int, epoch_flt: float, t_start: float
    ) -> None:
        if self.log:
            self.log.message(f"Validation in progress (epoch {epoch_flt:.3f})")
        metrics = self.validate()
        if self.policy.step(metrics["loss"]):
            self.optimizer = self._new_optimizer(self.policy.lr)  # the original re-creates its optimiser
            if self.log:
                self.log.write(
                    {"type": "lr", "epoch": epoch_flt, "iteration": self.global_iter, "lr": self.policy.lr}
                )
                self.log.message(f"Learning Rate has been updated: {self.policy.lr:g}")
        idx = len(self.checkpoints)
        best_now = not self.checkpoints or metrics["loss"] < min(c["val_loss"] for c in self.checkpoints)
        self.checkpoints.append(
            {"id": idx, "epoch": epoch_flt, "val_loss": metrics["loss"], "iteration": self.global_iter}
        )
        rngs = [self._rng_state()]
        if self.world > 1:
            rngs = [None] * self.world
            torch.distributed.all_gather_object(rngs, self._rng_state())
        if not self.is_main:
            return
        self.log.write({"type": "val", "epoch": epoch_flt, "iteration": self.global_iter, "metrics": metrics,
                        "time": round(self.elapsed_before + time.perf_counter() - t_start, 4)})  # fmt: skip
        grid = self.preview.grid()  # input | ground truth | prediction of the first validation images
        if grid is not None:
            self.log.preview(grid, self.global_iter)
        provenance = Provenance(
            epoch=epoch_flt,
            iteration=self.global_iter,
            val_metrics=metrics,
            best_now=best_now,
            seed=self.job.seed,
        )
        card = self.card.model_copy(update={"provenance": provenance})
        ckpt = save_checkpoint(self.run.checkpoint_dir(idx), self.model, card)
        size = sum(f.stat().st_size for f in ckpt.iterdir())
        self.log.write({"type": "checkpoint", "epoch": epoch_flt, "iteration": self.global_iter, "id": idx,
                        "subdir": ckpt.name, "sizeb": size, "best_now": best_now})  # fmt: skip
        offset = self.log.flush()
        state = {
            "format_version": STATE_VERSION, "checkpoint": idx, "epoch": epoch, "batches_done": batches_done,
            "global_iter": self.global_iter, "optimizer": self.optimizer.state_dict(),
            "scaler": self.scaler.state_dict() if self.scaler is not None else None,
            "planner": self.planner.state_dict(), "epochs": self.epochs, "val_every": self.planner.val_every,
            "lr_policy": self.policy.state_dict(),
            "checkpoints": self.checkpoints, "nonfinite_streak": self.nonfinite_streak, "seed": self.job.seed,
            "metrics_offset": offset, "rng": rngs, "world": self.world, "images_seen": self.images_seen,
            "elapsed": self.elapsed_before + time.perf_counter() - t_start, "data_wait_s": self.data_wait_s,
            "stretch": list(self.stretch),
            "class_title_to_idx": self.indexing.class_title_to_idx,
            "corrupted": {"train": self.train_errors.failed, "val": self.val_errors.failed},
        }  # fmt: skip
        self.run.save_state(state)
        info = {"epoch": epoch_flt, "iteration": self.global_iter, "val_metrics": metrics}
        self.run.write_pointer("last", idx, info)
        if best_now:
            self.run.write_pointer("best", idx, info)
        self.log.charts(force=False)
        self.log.message(
            f"checkpoint {ckpt.name}: epoch {epoch_flt:.3f} val loss {metrics['loss']:.4f} accuracy "
            f"{metrics['accuracy']:.4f}"
            + (f" dice {metrics['dice']:.4f}" if "dice" in metrics else "")
            + (" (no foreground predicted yet)" if metrics.get("dice", 1.0) == 0 else "")
            + (" (best)" if best_now else "")
        )

    # ------------------------------------------------------------------ main loop
    def _past_deadline(self) -> bool:
        """True once the job's wall-clock deadline (``time.time()``; single-process runs) has passed."""
        return self.job.deadline is not None and self.world == 1 and time.time() >= self.job.deadline

    def _refit(self, epoch_flt: float, t_start: float) -> None:
        """Job.refit: the number of steps (whole epochs) that ends training at ``refit.end`` at the speed measured
        so far (the first epoch, which fills the caches, left out when there is more); validations re-spread."""
        r, ipe = self.job.refit, self.iters_per_epoch
        if self.world != 1 or self.state is not None:
            return
        now = time.perf_counter()
        if self.global_iter >= 2 * ipe and self._first_epoch_end is not None:
            validating = self.validation_s - self._validation_s_at_first_epoch_end
            step_s = (now - self._first_epoch_end - validating) / (self.global_iter - ipe)
        elif r.step_s is not None:  # still in the first epochs: their time holds one-off costs
            step_s = r.step_s
        else:
            step_s = (now - t_start) / self.global_iter
        self._resize(step_s, r.reserve_s, epoch_flt)
        self._refit_mark = (now, self.global_iter, self.validation_s)
        if r.again_at is not None:
            again = max(self.global_iter + ipe, int(r.again_at * self.total_iters))
            self._again_iter = again if again < self.total_iters - ipe else None

    def _refit_again(self, epoch_flt: float) -> None:
        """The second refit: the speed since the first sizes the rest; the decay goes on from where it is."""
        mark_t, mark_iter, mark_val = self._refit_mark
        validating = self.validation_s - mark_val  # the validations' own time is in the reserve
        step_s = (time.perf_counter() - mark_t - validating) / max(1, self.global_iter - mark_iter)
        sc = self.cfg.unetkit.scheduler
        start = max(sc.warmup_iters, sc.hold_iters)
        reached = decay_progress(self.global_iter, self.total_iters, start, *self.stretch)
        left_share = 1.0 - self.global_iter / max(1, self.total_iters)  # of the validations still to come
        self.stretch = (self.global_iter, reached)
        self._resize(step_s, self.job.refit.reserve_s * left_share, epoch_flt, stretch_from=reached)

    def _resize(
        self, step_s: float, reserve_s: float, epoch_flt: float, stretch_from: float | None = None
    ) -> None:
        r, ipe = self.job.refit, self.iters_per_epoch
        left = r.end - time.time() - reserve_s
        total = self.global_iter + max(ipe, int(left / max(step_s, 1e-9)))
        self.epochs = max(1, math.ceil(total / ipe))
        self.total_iters = self.epochs * ipe
        self.planner = ValidationSchedule(self.epochs, max(self.epochs / r.validations, 1 / ipe))
        self.planner.performed = self.planner.required(epoch_flt - 1 / ipe)  # those due before this step
        if self.log:
            record = {"type": "refit", "iteration": self.global_iter, "step_s": round(step_s, 5),
                      "total_iterations": self.total_iters, "epochs": self.epochs}  # fmt: skip
            if stretch_from is not None:
                record["stretch_from"] = stretch_from
            self.log.write(record)
            self.log.set_total(self.total_iters)
            self.log.message(
                f"refit at iteration {self.global_iter}: {step_s * 1e3:.1f} ms per step, "
                f"{self.total_iters} iterations ({self.epochs} epochs) end at the planned time"
            )

    def fit(self) -> None:
        """Train to the end (or raise); the progress bar and log files are closed in any case."""
        try:
            self._fit()
        finally:
            if self.log:
                self.log.close()

    def _samples_text(self) -> str:
        """``N train / M val samples``, and where they come from when the counts are not the images'."""
        images = {k: len({r.item.image_path for r in self.prep_splits[k]}) for k in ("train", "val")}
        text = f"{len(self.train_set)} train / {len(self.val_set)} val samples"
        if (len(self.train_set), len(self.val_set)) == (images["train"], images["val"]):
            return text
        return (
            f"{text} from {images['train']} / {images['val']} images (an image listed several times gives a "
            "sample each, a random crop per epoch; a validation image is split into input-size tiles)"
        )

    def _fit(self) -> None:
        cfg, ipe = self.cfg, self.iters_per_epoch
        if self.log:
            self.log.message(
                f"{self.loss_name} loss ({'multi-label' if self.multilabel else 'binary' if self.binary else 'multiclass'}: {self.num_classes} classes), "
                f"model {self.model_name}, {self._samples_text()}, "
                f"{ipe} iterations per epoch, {self.world} process(es) on {self.device.type}, batch "
                f"{self.layout.batch_train}×{self.world}"
            )
            self.log.start_progress(self.total_iters, self.global_iter)
        t_start = time.perf_counter()
        self.model.train()
        validated_last = self.state is not None and self.start_batch == 0 and self.global_iter > 0
        epoch = self.start_epoch - 1
        while epoch + 1 < self.epochs:  # a Refit may change self.epochs
            epoch += 1
            self.train_sampler.epoch = epoch
            self.train_sampler.start_batch = self.start_batch if epoch == self.start_epoch else 0
            ready = time.perf_counter()
            for it, batch in enumerate(self.train_loader, start=self.train_sampler.start_batch):
                self.data_wait_s += time.perf_counter() - ready
                n, metrics, finite = self._train_step(batch)
                self.global_iter += 1
                if self.global_iter == self.iters_per_epoch:
                    self._first_epoch_end = time.perf_counter()
                    self._validation_s_at_first_epoch_end = self.validation_s
                self.images_seen += n * self.world
                epoch_flt = epoch + (it + 1) / ipe
                values = {k: v.item() for k, v in metrics.items()}
                if not finite:
                    self.nonfinite_streak += 1
                    if self.log:
                        self.log.write({"type": "nonfinite", "epoch": epoch_flt, "iteration": self.global_iter,
                                        "streak": self.nonfinite_streak})  # fmt: skip
                        self.log.message(f"non-finite loss at iteration {self.global_iter}: step skipped")
                    if self.nonfinite_streak >= cfg.unetkit.max_nonfinite_steps:
                        raise TrainingDiverged(
                            f"the loss was non-finite for {self.nonfinite_streak} iterations in a row (iteration "
                            f"{self.global_iter}); stopping. Lower lr, disable amp or check the data; the last "
                            "checkpoint is kept"
                        )
                else:
                    self.nonfinite_streak = 0
                if self.log:
                    if self.global_iter % cfg.unetkit.log_every == 0 or it + 1 == ipe:
                        self.log.write({"type": "train", "epoch": epoch_flt, "iteration": self.global_iter,
                                        "lr": self.optimizer.param_groups[0]["lr"], "metrics": values,
                                        "time": round(self.elapsed_before + time.perf_counter() - t_start, 4),
                                        "data_s": round(self.data_wait_s, 4)})  # fmt: skip
                    self.log.advance(epoch_flt, n * self.world, values["loss"])
                validated_last = False
                if self.job.refit is not None and self.global_iter == self.job.refit.at_iteration:
                    self._refit(epoch_flt, t_start)
                elif self.global_iter == self._again_iter:
                    self._refit_again(epoch_flt)
                if self.planner.need_validation(epoch_flt):
                    self.planner.validation_performed()
                    self._validate_and_checkpoint(epoch, it + 1, epoch_flt, t_start)
                    validated_last = True
                if self._past_deadline():
                    break
                ready = time.perf_counter()
            else:
                continue
            if self.log:
                self.log.message(f"time budget reached at iteration {self.global_iter}: stopping")
            if not validated_last:
                self._validate_and_checkpoint(epoch, it + 1, epoch_flt, t_start)
                validated_last = True
            break
        if not validated_last and self.global_iter > 0:
            # the original dropped the iterations after the last validation; unetkit checkpoints them
            self._validate_and_checkpoint(self.epochs - 1, ipe, float(self.epochs), t_start)
        if self.log:
            elapsed = self.elapsed_before + time.perf_counter() - t_start
            self.log.close()
            self._summary(elapsed)
            self.log.charts()

    def _summary(self, elapsed: float) -> None:
        best = self.run.read_pointer("best")
        last = self.run.read_pointer("last")
        best_info = min(self.checkpoints, key=lambda c: c["val_loss"]) if self.checkpoints else None
        self.log.summary(
            {
                "model": f"{self.model_name} ({sum(p.numel() for p in self.model.parameters()) / 1e6:.2f} M params)",
                "iterations": self.global_iter,
                "epochs": self.epochs,
                "time": f"{elapsed:.1f} s",
                "images/s": f"{self.images_seen / elapsed:.1f}" if elapsed > 0 else "-",
                "waiting for data": f"{self.data_wait_s:.1f} s ({self.data_wait_s / elapsed:.0%})"
                if elapsed > 0
                else "-",
                "best checkpoint": f"{best} (val loss {best_info['val_loss']:.4f}, epoch {best_info['epoch']:.2f})"
                if best_info
                else "-",
                "last checkpoint": str(last),
                "metrics": str(self.run.path / "metrics.jsonl"),
                "charts": str(self.run.path / "charts.png"),
                "tensorboard": f"tensorboard --logdir {self.run.path / 'tensorboard'}",
            }
        )


def run_process(
    local_rank: int,
    job: Job,
    layout: ddp.DeviceLayout,
    port: int | None,
    errors=None,
    prepared: Prepared | None = None,
) -> None:
    """Entry point of one training process (spawned or torchrun); re-raises user errors in the parent.
    Global torch settings changed for the run (determinism, cuDNN, threads) are restored afterwards."""
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        torch.backends.cudnn.deterministic,
        torch.backends.cudnn.benchmark,
        torch.get_num_threads(),
    )
    try:
        if layout.world > 1:
            ddp.init_process_group(layout, local_rank, port)
        local = int(os.environ["LOCAL_RANK"]) if layout.torchrun else local_rank
        Trainer(job, layout, local, prepared).fit()
        ddp.barrier()
    except UnetkitError as exc:
        if errors is not None:
            errors.put((type(exc).__name__, exc.message, exc.file, exc.json_path))
            raise SystemExit(2) from None
        raise
    finally:
        ddp.cleanup()
        torch.use_deterministic_algorithms(saved[0], warn_only=saved[1])
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = saved[2], saved[3]
        torch.set_num_threads(saved[4])
