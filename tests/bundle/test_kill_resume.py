"""Training killed with SIGKILL: the same command resumes, losing at most the epoch it was in.

A real process, really killed (no exception handlers run, no ``finally``): the bundle's training
command runs in a subprocess, is killed with ``kill -9`` once its first epoch's checkpoint exists,
and is started again with the same arguments.
"""

from __future__ import annotations

import multiprocessing
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import torch

from helpers import REPO_ROOT, write_ellipsoid_dataset
from osnet_monai.handlers import save_atomically  # imported here, so the forked writer starts at once

EPOCHS, ITERATIONS = 2, 12  # an epoch long enough that the kill lands inside epoch 2 on a busy machine


def training_command(dataset, out) -> list[str]:
    return [
        sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", "bundle/configs/train.json",
        "--dataset_dir", str(dataset), "--ckpt_dir", str(out), "--output_dir", str(out / "logs"),
        "--train#trainer#max_epochs", str(EPOCHS), "--train#trainer#epoch_length", str(ITERATIONS),
        "--val_interval", "1", "--batch_size", "2", "--roi_size", "[64, 64]", "--num_workers", "0",
    ]


def load(path):
    return torch.load(path, map_location="cpu", weights_only=True)


def wait_for_epoch(process: subprocess.Popen, checkpoint, epoch: int, timeout_s: float = 600) -> dict:
    """Polls ``checkpoint`` until it records ``epoch``; every time it exists it must load whole."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if checkpoint.is_file():
            state = load(checkpoint)  # atomic writes: never a half-written file to trip on
            if state["epoch"] >= epoch:
                return state
        assert process.poll() is None, f"training ended (status {process.returncode}) before epoch {epoch}"
        time.sleep(0.05)
    raise TimeoutError(f"no checkpoint of epoch {epoch} after {timeout_s} s")


@pytest.mark.slow
def test_training_killed_with_sigkill_resumes_where_it_stopped(tmp_path):
    dataset = write_ellipsoid_dataset(tmp_path / "data", n=3, frames_first=1)
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = training_command(dataset, out)
    checkpoint = out / "checkpoint_last.pt"

    with open(tmp_path / "first.log", "w") as log:
        first = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            saved = wait_for_epoch(first, checkpoint, 1)
            # wait for the best model too (validation follows the epoch), then kill mid-epoch 2
            while not (out / "model.pt").is_file() and first.poll() is None:
                time.sleep(0.05)
            saved = load(checkpoint)
            os.kill(first.pid, signal.SIGKILL)
        finally:
            first.kill()
            first.wait(timeout=60)
    assert first.returncode == -signal.SIGKILL
    killed_at = load(checkpoint)  # what the killed run left: loadable, weights only
    assert killed_at["epoch"] >= saved["epoch"] >= 1 and killed_at["epoch"] < EPOCHS
    assert set(load(out / "model.pt")) == set(killed_at["network"])  # the best model, whole

    again = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    resumed = re.search(r"Resumed from .*checkpoint_last\.pt after epoch (\d+) \(iteration (\d+)\)", again.stdout + again.stderr)
    assert resumed, (again.stdout + again.stderr)[-3000:]
    # it went on from the last saved epoch: at most the epoch being trained when killed was lost
    assert int(resumed.group(1)) == killed_at["epoch"] and int(resumed.group(2)) == killed_at["iteration"]
    final = load(checkpoint)
    assert final["epoch"] == EPOCHS and final["iteration"] == EPOCHS * ITERATIONS
    assert final["max_epochs"] == EPOCHS
    assert set(load(out / "model.pt")) == set(final["network"])


def _write_forever(path: str) -> None:
    """A checkpoint of 4 MB rewritten as fast as possible, each one's values equal to its step."""
    step = 0
    while True:
        save_atomically({"step": step, "payload": torch.full((1 << 20,), step, dtype=torch.int32)}, path)
        step += 1


@pytest.mark.slow
@pytest.mark.parametrize("delay_s", [0.05, 0.13, 0.29])
def test_checkpoint_survives_sigkill_during_the_write(tmp_path, delay_s):
    """``save_atomically`` killed at some moment of a write loop: the file is always one whole
    checkpoint (the previous one or the new one)."""
    path = tmp_path / "checkpoint_last.pt"
    # spawn, not fork: a forked child of this threaded process can deadlock in torch.save and never write
    writer = multiprocessing.get_context("spawn").Process(target=_write_forever, args=(str(path),))
    writer.start()
    try:
        deadline = time.monotonic() + 120
        while not path.is_file() and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert path.is_file(), f"the writer wrote nothing in 120 s (alive: {writer.is_alive()})"
        time.sleep(delay_s)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.join(timeout=60)
    state = load(path)
    assert state["step"] >= 0 and bool((state["payload"] == state["step"]).all())
