"""End-to-end tests of bundle/configs/train.json, evaluate.json and multi_gpu_train.json on tiny data."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import pytest
import torch

from monai.bundle import ConfigWorkflow

from helpers import BUNDLE_CONFIGS, REPO_ROOT

TRAIN = str(BUNDLE_CONFIGS / "train.json")
TINY = {"val_interval": 1, "batch_size": 4, "roi_size": [64, 64], "num_workers": 0}


def train_workflow(dataset, ckpt_dir, epochs, config=TRAIN, **overrides):
    workflow = ConfigWorkflow(
        config_file=config,
        workflow_type="train",
        logging_file=False,
        dataset_dir=str(dataset),
        ckpt_dir=str(ckpt_dir),
        output_dir=str(ckpt_dir / "logs"),
        **{"train#trainer#max_epochs": epochs, **TINY, **overrides},
    )
    workflow.initialize()
    return workflow


@pytest.mark.slow
def test_train_end_to_end(ellipsoid_dataset, tmp_path):
    workflow = train_workflow(ellipsoid_dataset, tmp_path, epochs=2)
    assert workflow.check_properties() == []
    workflow.run()
    trainer = workflow.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2
    evaluator = workflow.parser.get_parsed_content("validate#evaluator")
    assert set(evaluator.state.metrics) == {"val_worst_style_dice", "val_mean_dice", "val_jaccard", "val_f05", "val_pr_auc"}
    assert all(0.0 <= v <= 1.0 for v in evaluator.state.metrics.values())
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert "down_1.gcn.branch_row_first.0.conv.weight" in state
    assert (tmp_path / "checkpoint_last.pt").is_file()


class Interrupted(Exception):
    pass


def interrupt_after_first_epoch(engine):
    raise Interrupted("power cut")


@pytest.mark.slow
def test_interrupted_run_resumes(ellipsoid_dataset, tmp_path):
    from ignite.engine import Events

    first = train_workflow(ellipsoid_dataset, tmp_path, epochs=2)
    trainer = first.parser.get_parsed_content("train#trainer")
    trainer.add_event_handler(Events.EPOCH_COMPLETED(once=1), interrupt_after_first_epoch)
    with pytest.raises(Exception):
        first.run()
    iterations_one_epoch = trainer.state.iteration
    saved = torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)
    assert saved["epoch"] == 1 and saved["max_epochs"] == 2

    resumed = train_workflow(ellipsoid_dataset, tmp_path, epochs=2)
    network = resumed.parser.get_parsed_content("network")
    resumed.run()
    trainer = resumed.parser.get_parsed_content("train#trainer")
    assert trainer.state.epoch == 2
    assert trainer.state.iteration == 2 * iterations_one_epoch  # one more epoch, not two
    assert torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)["epoch"] == 2
    assert (tmp_path / "model.json").is_file()  # the card, written once (rank 0)
    assert any(not torch.equal(p.detach(), saved["network"][n]) for n, p in network.named_parameters())


@pytest.mark.slow
def test_finished_run_is_not_resumed(ellipsoid_dataset, tmp_path):
    """MONAI Label trains again in the same bundle: a finished run must not swallow the next one."""
    from ignite.engine import Events

    train_workflow(ellipsoid_dataset, tmp_path, epochs=1).run()
    again = train_workflow(ellipsoid_dataset, tmp_path, epochs=1)
    trainer = again.parser.get_parsed_content("train#trainer")
    steps = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda engine: steps.append(engine.state.iteration))
    again.run()
    assert trainer.state.epoch == 1
    assert steps and steps[0] == 1  # it trained a whole epoch, from the first iteration


@pytest.mark.slow
def test_evaluate_writes_per_case_csv(ellipsoid_dataset, tmp_path):
    train_workflow(ellipsoid_dataset, tmp_path, epochs=1).run()
    workflow = ConfigWorkflow(
        config_file=[TRAIN, str(BUNDLE_CONFIGS / "evaluate.json")],
        workflow_type="train",
        logging_file=False,
        dataset_dir=str(ellipsoid_dataset),
        ckpt_dir=str(tmp_path),
        output_dir=str(tmp_path / "eval"),
        **TINY,
    )
    workflow.initialize()
    workflow.run()
    for metric in ("val_mean_dice", "val_jaccard", "val_f05", "val_pr_auc"):
        rows = list(csv.reader(open(tmp_path / "eval" / f"{metric}_raw.csv")))
        names = [r[0] for r in rows[1:]]
        assert names and all("_t" in n and "_z" in n for n in names)
        values = [float(r[1]) for r in rows[1:]]
        assert all(0.0 <= v <= 1.0 for v in values)


@pytest.mark.slow
def test_runs_from_bundle_folder_and_repo_root(ellipsoid_dataset, tmp_path):
    """`python -m monai.bundle run training` answers from both working directories."""
    for cwd, config in ((REPO_ROOT, "bundle/configs/train.json"), (REPO_ROOT / "bundle", "configs/train.json")):
        out = tmp_path / cwd.name
        cmd = [
            sys.executable, "-m", "monai.bundle", "run", "training", "--config_file", config,
            "--dataset_dir", str(ellipsoid_dataset), "--ckpt_dir", str(out), "--output_dir", str(out / "logs"),
            "--train#trainer#max_epochs", "1", "--val_interval", "1", "--batch_size", "4",
            "--roi_size", "[64, 64]", "--num_workers", "0",
        ]
        result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        assert (out / "model.pt").is_file()


@pytest.mark.slow
def test_ddp_two_cpu_processes(ellipsoid_dataset, tmp_path):
    configs = "['bundle/configs/train.json','bundle/configs/multi_gpu_train.json']"
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nnodes=1", "--nproc_per_node=2",
        "-m", "monai.bundle", "run", "--config_file", configs,
        "--dataset_dir", str(ellipsoid_dataset), "--ckpt_dir", str(tmp_path), "--output_dir", str(tmp_path / "logs"),
        "--train#trainer#max_epochs", "2", "--val_interval", "1", "--batch_size", "2",
        "--roi_size", "[64, 64]", "--num_workers", "0",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=600, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    state = torch.load(tmp_path / "model.pt", weights_only=True)
    assert not any(k.startswith("module.") for k in state)  # saved unwrapped, loadable without DDP
    assert torch.load(tmp_path / "checkpoint_last.pt", weights_only=True)["epoch"] == 2
    assert (tmp_path / "model.json").is_file()  # the card, written once (rank 0)


def test_labels_with_nucleus_ids_train_as_nucleus(tmp_path):
    """A label saved from segment's NAME_nucleus.nii.gz (or MONAI Label's /infer) holds one id per
    nucleus; training reads every id as nucleus (BCE needs 0/1 targets)."""
    import nibabel as nib
    import numpy as np
    from monai.bundle import ConfigParser

    from helpers import write_ellipsoid_dataset

    data = write_ellipsoid_dataset(tmp_path / "data", n=1)
    label_path = data / "labels" / "cell0.nii.gz"
    label = nib.load(label_path)
    ids = np.asarray(label.dataobj).astype(np.uint16)
    ids[ids.shape[0] // 2 :] *= 7  # two nuclei: ids 1 and 7
    nib.save(nib.Nifti1Image(ids, label.affine), label_path)
    parser = ConfigParser()
    parser.read_config(TRAIN)
    transforms = parser.get_parsed_content("train#volume_transforms")
    item = transforms({"image": str(data / "images" / "cell0.nii.gz"), "label": str(label_path)})
    assert set(torch.unique(item["label"]).tolist()) == {0.0, 1.0}
    assert item["label"].sum() == int((ids > 0).sum())  # the grid is already 0.196 um: no resampling


def test_augmentation_pipeline_statistics():
    """The config's paper augmentation: flips about half the time on each axis, zoom 1.2-1.4 then a
    crop back to the training size, labels stay binary."""
    from monai.bundle import ConfigParser
    from monai.utils import set_determinism

    set_determinism(seed=0)
    parser = ConfigParser()
    parser.read_config(TRAIN)
    augmentation = parser.get_parsed_content("train#augmentation")
    preprocessing = parser.get_parsed_content("train#preprocessing")
    augmentation.set_random_state(seed=1)
    preprocessing.set_random_state(seed=2)
    image = torch.zeros(1, 224, 224)
    image[0, :112, :56] = 1.0  # a block in one corner shows flips
    label = (image > 0).to(torch.uint8)
    flips_x = flips_y = 0
    n = 200
    for _ in range(n):
        out = preprocessing(augmentation({"image": image.clone(), "label": label.clone()}))
        assert out["image"].shape == (1, 224, 224) and out["label"].shape == (1, 224, 224)
        assert set(torch.unique(out["label"]).tolist()) <= {0.0, 1.0}
        mass = out["label"][0]
        flips_x += int(mass[112:].sum() > mass[:112].sum())
        flips_y += int(mass[:, 112:].sum() > mass[:, :112].sum())
    assert 0.35 < flips_x / n < 0.65 and 0.35 < flips_y / n < 0.65


@pytest.mark.parametrize("wrapped", [False, True])
def test_pretrained_weights_start_a_fresh_run_but_not_a_resumed_one(tmp_path, wrapped):
    """``pretrained`` (fine-tuning) loads at the start of a fresh run; an unfinished run's own
    checkpoint wins over it."""
    from ignite.engine import Engine, Events

    from osnet_monai.handlers import ResumeCheckpoint

    source = torch.nn.Linear(3, 2)
    weights = tmp_path / "model.pt"
    torch.save({"model": source.state_dict()} if wrapped else source.state_dict(), weights)
    seen = {}

    def run(network, max_epochs=1):
        engine = Engine(lambda e, b: None)
        handler = ResumeCheckpoint(tmp_path / "last.pt", network, torch.optim.Adam(network.parameters()), pretrained=weights)
        handler.attach(engine)
        engine.add_event_handler(Events.STARTED, lambda e: seen.update(weight=network.weight.detach().clone()))
        engine.run([0], max_epochs=max_epochs)

    run(torch.nn.Linear(3, 2))
    assert torch.equal(seen["weight"], source.weight)
    # an unfinished run of 3 epochs (stopped after 1) resumes its own weights, not the pretrained ones
    own = torch.nn.Linear(3, 2)
    checkpoint = torch.load(tmp_path / "last.pt", weights_only=True)
    checkpoint.update(network=own.state_dict(), max_epochs=3)
    torch.save(checkpoint, tmp_path / "last.pt")
    run(torch.nn.Linear(3, 2), max_epochs=3)
    assert torch.equal(seen["weight"], own.weight)


def test_pretrained_weights_that_do_not_exist_are_refused(tmp_path):
    from osnet_monai.handlers import ResumeCheckpoint

    network = torch.nn.Linear(3, 2)
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        ResumeCheckpoint(tmp_path / "last.pt", network, torch.optim.Adam(network.parameters()), pretrained=tmp_path / "nope.pt")


def test_a_2d_model_fine_tuned_as_2_5d_starts_from_its_own_output(tmp_path):
    """``pretrained`` with fewer input sections than the network: the first layer keeps the centre
    section's weights and the neighbours start at zero, so the widened model answers as the 2D one."""
    from ignite.engine import Engine

    from osnet_monai.handlers import ResumeCheckpoint, centre_input_channels
    from osnet_monai.networks import OSNet

    torch.manual_seed(0)
    flat = OSNet(in_channels=1, out_channels=1).eval()
    weights = tmp_path / "model.pt"
    torch.save(flat.state_dict(), weights)
    wide = OSNet(in_channels=3, out_channels=1)
    handler = ResumeCheckpoint(tmp_path / "last.pt", wide, torch.optim.Adam(wide.parameters()), resume=False, pretrained=weights)
    handler.load(Engine(lambda e, b: None))
    sections = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(wide.eval()(sections), flat(sections[:, 1:2]))
    # a mismatch that is not a count of input sections is left for load_state_dict to report
    state, widened = centre_input_channels({"w": torch.ones(4, 1, 3, 3)}, {"w": torch.ones(4, 2, 3, 3)})
    assert widened == [] and state["w"].shape == (4, 1, 3, 3)
    other = OSNet(in_channels=3, out_channels=2)
    handler = ResumeCheckpoint(tmp_path / "last.pt", other, torch.optim.Adam(other.parameters()), resume=False, pretrained=weights)
    with pytest.raises(RuntimeError, match="size mismatch"):
        handler.load(Engine(lambda e, b: None))
