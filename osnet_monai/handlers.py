"""Ignite handlers MONAI lacks: an atomic, resumable last-epoch checkpoint."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from monai.utils import min_version, optional_import

from osnet_monai.atomic import atomic_output

Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["ResumeCheckpoint", "save_atomically"]


def save_atomically(obj, path: str | os.PathLike) -> None:
    """``torch.save`` under a temporary name, then rename: never a half-written checkpoint."""
    with atomic_output(path) as tmp:
        torch.save(obj, tmp)


def _unwrap(module: torch.nn.Module) -> torch.nn.Module:
    return module.module if isinstance(module, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)) else module


class ResumeCheckpoint:
    """Saves network, optimizer and epoch counters every ``interval`` epochs to one fixed file, and
    resumes an interrupted run from it when the run starts again. A run that reached its
    ``max_epochs`` is finished: the next run starts afresh (MONAI Label trains again and again in
    the same bundle) and overwrites the file.

    MONAI's ``CheckpointSaver`` writes non-atomically (an interrupted save leaves a corrupt file)
    under a name that changes every epoch, and ``CheckpointLoader`` fails when the file does not
    exist yet; an interrupted run needs both the other way round. Loads with ``weights_only=True``.

    Args:
        path: checkpoint file, e.g. ``models/checkpoint_last.pt``.
        network: the trained network (DDP-wrapped or not).
        optimizer: its optimizer.
        interval: epochs between saves. Defaults to 1.
        resume: load ``path`` at start when it holds an unfinished run. Defaults to True.
        save: whether this process writes (False on DDP ranks other than 0). Defaults to True.
        best_saver: the validation's key-metric ``CheckpointSaver``; its record of the best score is
            saved and restored too, so a resumed run does not replace the best model with a worse one.
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
        self.logger = logging.getLogger(__name__)

    def attach(self, engine) -> None:
        if self.resume:
            engine.add_event_handler(Events.STARTED, self.load)
        if self.save:
            engine.add_event_handler(Events.EPOCH_COMPLETED(every=self.interval), self.write)
            engine.add_event_handler(Events.COMPLETED, self.write)

    def load(self, engine) -> None:
        if not self.path.is_file():
            return
        checkpoint = torch.load(self.path, map_location="cpu", weights_only=True)
        if int(checkpoint["epoch"]) >= int(checkpoint.get("max_epochs", engine.state.max_epochs)):
            self.logger.info(f"{self.path}: a finished run ({checkpoint['epoch']} epochs); starting afresh.")
            return
        _unwrap(self.network).load_state_dict(checkpoint["network"])
        self.optimizer.load_state_dict(checkpoint["optimizer"])
        best = self._best_checkpoint()
        if best is not None and checkpoint.get("best"):
            best.load_state_dict(checkpoint["best"])
        epoch, iteration = int(checkpoint["epoch"]), int(checkpoint["iteration"])
        engine.state.epoch, engine.state.iteration = epoch, iteration
        self.logger.info(f"Resumed from {self.path} after epoch {epoch} (iteration {iteration}).")

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
        best = self._best_checkpoint()
        if best is not None:
            state["best"] = best.state_dict()
        save_atomically(state, self.path)
