"""Ignite handlers MONAI lacks: atomic checkpoints (resumable last epoch, best model) and an EMA of the weights."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from monai.handlers import CheckpointSaver
from monai.utils import min_version, optional_import

from osnet_monai.atomic import atomic_output

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")
BaseSaveHandler, _ = optional_import("ignite.handlers.checkpoint", "0.4.11", min_version, "BaseSaveHandler")

__all__ = [
    "AtomicCheckpointSaver", "AtomicDiskSaver", "ResumeCheckpoint", "EMAUpdate", "GroupMetricsLogger", "ModelCardWriter",
    "centre_input_channels", "warmup_ema", "save_atomically",
]


def save_atomically(obj, path: str | os.PathLike) -> None:
    """``torch.save`` under a temporary name, flushed to disk, then renamed: a kill or a power cut
    leaves the previous checkpoint or the new one, never half of one."""
    with atomic_output(path) as tmp:
        with open(tmp, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())


class AtomicDiskSaver(BaseSaveHandler):
    """ignite save handler writing each checkpoint with :func:`save_atomically`.

    ignite's ``Checkpoint`` removes the file it replaces before saving the new one, and MONAI's
    ``CheckpointSaver`` writes in place (``atomic=False``, for file permissions): a kill between
    the two, or during the write, leaves no ``model.pt`` or half of one. Here a fixed ``filename``
    is never removed, only replaced by the rename of the complete new file.

    Args:
        dirname: folder of the checkpoints.
        filename: a fixed name for every save (MONAI's ``key_metric_filename``); None keeps ignite's.
    """

    def __init__(self, dirname: str | os.PathLike, filename: str | None = None) -> None:
        self.dirname = Path(dirname)
        self.filename = filename

    def __call__(self, checkpoint, filename: str, metadata=None) -> None:
        if torch.distributed.is_available() and torch.distributed.is_initialized() and torch.distributed.get_rank() != 0:
            return  # one writer, as ignite's DiskSaver
        save_atomically(checkpoint, self.dirname / (self.filename or filename))

    def remove(self, filename: str) -> None:
        if self.filename is None:  # a fixed name is replaced by the next save, not removed first
            (self.dirname / filename).unlink(missing_ok=True)


class AtomicCheckpointSaver(CheckpointSaver):
    """MONAI's ``CheckpointSaver`` (same arguments), every file written by :class:`AtomicDiskSaver`."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        for checkpoint in (self._final_checkpoint, self._key_metric_checkpoint, self._interval_checkpoint):
            if checkpoint is not None:
                fixed = getattr(checkpoint.save_handler, "filename", None)
                checkpoint.save_handler = AtomicDiskSaver(self.save_dir, fixed)


def centre_input_channels(state: dict, target: dict) -> tuple[dict, list[str]]:
    """``state`` with each input-layer weight that has fewer input channels than ``target``'s widened
    to them: the old channels in the centre, zeros on either side (an odd count on both sides, as
    2.5D input has: the section and its k neighbours each way). Returns the state and the widened names.

    Only weights that differ in dimension 1 alone and are both odd are widened; any other mismatch
    is left for ``load_state_dict`` to report.
    """
    out, widened = dict(state), []
    for name, weight in state.items():
        new = target.get(name)
        if new is None or weight.dim() < 3 or new.shape == weight.shape:
            continue
        old_c, new_c = weight.shape[1], new.shape[1]
        same_elsewhere = weight.shape[:1] + weight.shape[2:] == new.shape[:1] + new.shape[2:]
        if same_elsewhere and old_c < new_c and old_c % 2 == 1 and new_c % 2 == 1:
            grown = torch.zeros(new.shape, dtype=weight.dtype)
            start = (new_c - old_c) // 2
            grown[:, start : start + old_c] = weight
            out[name] = grown
            widened.append(name)
    return out, widened


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)) else module


class ResumeCheckpoint:
    """Saves network, optimizer and epoch counters every ``interval`` epochs to one fixed file, and
    resumes an interrupted run from it when the run starts again. A run that reached its
    ``max_epochs`` is finished: the next run starts afresh (MONAI Label trains again and again in
    the same bundle) and overwrites the file.

    MONAI's ``CheckpointSaver`` writes non-atomically (an interrupted save leaves a corrupt file;
    :class:`AtomicCheckpointSaver` fixes that for the best model) under a name that changes every
    epoch, and ``CheckpointLoader`` fails when the file does not exist yet; an interrupted run needs
    both the other way round. Loads with ``weights_only=True``.

    Args:
        path: checkpoint file, e.g. ``models/checkpoint_last.pt``.
        network: the trained network (DDP-wrapped or not).
        optimizer: its optimizer.
        interval: epochs between saves. Defaults to 1.
        resume: load ``path`` at start when it holds an unfinished run. Defaults to True.
        save: whether this process writes (False on DDP ranks other than 0). Defaults to True.
        best_saver: the validation's key-metric ``CheckpointSaver``; its record of the best score is
            saved and restored too, so a resumed run does not replace the best model with a worse one.
        ema: the exponential moving average of the weights (``torch.optim.swa_utils.AveragedModel``),
            saved and restored with the rest. Optional.
        scheduler: the learning-rate scheduler, saved and restored with the rest. Optional.
        pretrained: weights to start from when no unfinished run is resumed (fine-tuning), e.g. the
            shipped ``models/model.pt``: a state dict, or a dict holding one under ``"model"``. A
            2D model fine-tuned as 2.5D (more input sections than it was trained with) keeps its
            first layer on the centre section and starts the neighbours' weights at zero
            (:func:`centre_input_channels`), so the run starts from the pretrained model's output.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        network: torch.nn.Module,
        optimizer: torch.optim.Optimizer,
        interval: int = 1,
        resume: bool = True,
        save: bool = True,
        best_saver=None,
        ema: torch.nn.Module | None = None,
        scheduler=None,
        pretrained: str | os.PathLike | None = None,
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval}.")
        self.path = Path(path)
        self.network = network
        self.optimizer = optimizer
        self.interval = interval
        self.resume = resume
        self.save = save
        self.best_saver = best_saver
        self.ema = ema
        self.scheduler = scheduler
        self.pretrained = Path(pretrained) if pretrained else None
        if self.pretrained is not None and not self.pretrained.is_file():
            raise FileNotFoundError(f"{self.pretrained}: pretrained weights not found.")
        self.logger = logging.getLogger(__name__)

    def attach(self, engine) -> None:
        if self.resume or self.pretrained is not None:
            engine.add_event_handler(Events.STARTED, self.load)
        if self.save:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self.write)
            engine.add_event_handler(Events.COMPLETED, self.write)

    def load(self, engine) -> None:
        if not (self.resume and self._resume(engine)) and self.pretrained is not None:
            state = torch.load(self.pretrained, map_location="cpu", weights_only=True)
            state = state.get("model", state) if isinstance(state.get("model"), dict) else state
            network = _unwrap(self.network)
            state, widened = centre_input_channels(state, network.state_dict())
            network.load_state_dict(state)
            extra = f"; {', '.join(widened)} widened to the new input sections, neighbours at zero" if widened else ""
            self.logger.info(f"Starting from the weights of {self.pretrained}{extra}.")

    def _resume(self, engine) -> bool:
        """Restores an unfinished run from ``path``; False when there is none."""
        if not self.path.is_file():
            return False
        checkpoint = torch.load(self.path, map_location="cpu", weights_only=True)
        if int(checkpoint["epoch"]) >= int(checkpoint.get("max_epochs", engine.state.max_epochs)):
            self.logger.info(f"{self.path}: a finished run ({checkpoint['epoch']} epochs); starting afresh.")
            return False
        _unwrap(self.network).load_state_dict(checkpoint["network"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        if self.ema is not None and "ema" in checkpoint:
            self.ema.load_state_dict(checkpoint["ema"])
        if self.scheduler is not None and "scheduler" in checkpoint:
            self.scheduler.load_state_dict(checkpoint["scheduler"])
        best = self._best_checkpoint()
        if best is not None and checkpoint.get("best"):
            best.load_state_dict(checkpoint["best"])
        epoch, iteration = int(checkpoint["epoch"]), int(checkpoint["iteration"])
        engine.state.epoch, engine.state.iteration = epoch, iteration
        self.logger.info(f"Resumed from {self.path} after epoch {epoch} (iteration {iteration}).")
        return True

    def _best_checkpoint(self):
        """The ignite ``Checkpoint`` inside MONAI's ``CheckpointSaver`` that keeps the best model."""
        return getattr(self.best_saver, "_key_metric_checkpoint", None) if self.best_saver is not None else None

    def write(self, engine) -> None:
        state = {
            "network": _unwrap(self.network).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "epoch": engine.state.epoch,
            "iteration": engine.state.iteration,
            "max_epochs": engine.state.max_epochs,
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        best = self._best_checkpoint()
        if best is not None:
            state["best"] = best.state_dict()
        save_atomically(state, self.path)


def warmup_ema(decay: float):
    """``avg_fn`` for ``torch.optim.swa_utils.AveragedModel``: an EMA whose decay warms up.

    The decay is ``min(decay, (1 + n) / (10 + n))`` after n updates (as TensorFlow's and timm's
    EMA), so a short run's average is not dominated by the random initial weights; torch's own
    ``get_ema_multi_avg_fn`` uses the full decay from the first step. ``decay=0`` copies the weights.
    """
    if not 0 <= decay < 1:
        raise ValueError(f"decay must lie in [0, 1), got {decay}.")

    def avg_fn(averaged: torch.Tensor, current: torch.Tensor, num_averaged) -> torch.Tensor:
        n = float(num_averaged)
        d = min(decay, (1 + n) / (10 + n))
        return averaged * d + current * (1 - d)

    return avg_fn


class EMAUpdate:
    """Updates an exponential moving average of the weights after every training iteration.

    Validation and the shipped model use the average: it smooths the epoch-to-epoch swings of a
    small-batch CPU run. ``ema`` is ``torch.optim.swa_utils.AveragedModel(network,
    avg_fn=warmup_ema(decay), use_buffers=True)``; decay 0 makes it a copy of the current weights
    (the paper's plain training).

    Args:
        ema: the averaged model.
        network: the trained network.
    """

    def __init__(self, ema: torch.nn.Module, network: torch.nn.Module) -> None:
        self.ema = ema
        self.network = network

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)

    def __call__(self, engine) -> None:
        self.ema.update_parameters(_unwrap(self.network))


class ModelCardWriter:
    """Writes a new model card (``model.pt`` -> ``model.json``) when training starts.

    The card tells inference how the model sees its input (normalisation, 2.5D context), so a
    checkpoint runs correctly wherever it goes; a threshold calibrated for an earlier model is
    dropped (``scripts/calibrate.py`` adds the new one).

    Args:
        checkpoint: path of the best-model checkpoint the run writes.
        fields: what the card says, e.g. ``{"normalisation": "robust", "context": 0}``.
        save: whether this process writes (False on DDP ranks other than 0).
    """

    def __init__(self, checkpoint: str | os.PathLike, fields: dict, save: bool = True) -> None:
        self.checkpoint = checkpoint
        self.fields = dict(fields)
        self.save = save

    def attach(self, engine) -> None:
        if self.save:
            engine.add_event_handler(Events.STARTED, self)

    def __call__(self, engine) -> None:
        from osnet_monai.model_card import write_model_card

        context = int(self.fields.get("context", 0))
        write_model_card(self.checkpoint, replace=True, in_channels=2 * context + 1, **self.fields)


class GroupMetricsLogger:
    """Logs a grouped metric's per-group values after each evaluation (``WorstGroupDice`` keeps them in
    ``engine.state.metric_details``), so the training log shows every style, not only the worst.

    One line per epoch, e.g. ``Epoch[3] val_worst_style_dice by group -- beam: 0.4123 classic: 0.7012 ... mean: 0.6001``.

    Args:
        name: the metric's name in the evaluator.
        logger_name: the logger written to (MONAI's StatsHandler default).
    """

    def __init__(self, name: str, logger_name: str = "StatsHandler") -> None:
        self.name = name
        self.logger = logging.getLogger(logger_name)

    def attach(self, engine) -> None:
        engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def __call__(self, engine) -> None:
        groups = (getattr(engine.state, "metric_details", None) or {}).get(self.name)
        if not groups:
            return
        mean = sum(groups.values()) / len(groups)
        values = " ".join(f"{group}: {value:.4f}" for group, value in groups.items())
        self.logger.info(f"Epoch[{engine.state.epoch}] {self.name} by group -- {values} mean: {mean:.4f}")
