"""Model Zoo conformance of bundle/: metadata, network in/out, exports, workflow properties."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from monai.bundle import ConfigParser, ConfigWorkflow, ckpt_export, onnx_export, verify_metadata, verify_net_in_out

import osnet_monai
from osnet_monai.networks import OSNet
from osnet_monai.phantoms import PRESETS, render_field, write_nifti

from helpers import BUNDLE_CONFIGS, REPO_ROOT

SCHEMA = REPO_ROOT / "tests" / "fixtures" / "meta_schema.json"  # the Model Zoo schema, kept offline
META = str(BUNDLE_CONFIGS / "metadata.json")
INFERENCE = str(BUNDLE_CONFIGS / "inference.json")




def test_metadata_passes_the_zoo_schema():
    verify_metadata(meta_file=META, filepath=str(SCHEMA))


def test_metadata_has_every_schema_key_and_a_changelog_entry_for_its_version():
    meta = json.loads(open(META).read())
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["required"]) <= set(meta)
    assert meta["version"] in meta["changelog"]
    pred = meta["network_data_format"]["outputs"]["pred"]
    assert pred["channel_def"]["1"] == "nucleus"
    assert meta["network_data_format"]["inputs"]["image"]["spatial_shape"] == ["16*n", "16*n"]


def test_package_stays_required_when_monai_reads_the_metadata():
    """MONAI 1.6 replaces ``required_packages_version`` by the schema's older ``optional_packages_version``."""
    parser = ConfigParser()
    with pytest.warns(UserWarning, match="optional_packages_version"):
        parser.read_meta(META)
    required = parser["_meta_"]["required_packages_version"]
    assert {"osnet-monai", "nibabel", "pytorch-ignite", "itk-io"} <= set(required)
    assert required["osnet-monai"] == osnet_monai.__version__


def test_every_version_is_the_package_version():
    """The version's home is ``osnet_monai.__version__`` (pyproject reads it); the Model Zoo needs
    literals in metadata.json, so they are checked here instead of copied by hand."""
    meta = json.loads(open(META).read())
    assert meta["version"] == osnet_monai.__version__ and osnet_monai.__version__ in meta["changelog"]
    for key in ("required_packages_version", "optional_packages_version"):
        assert meta[key]["osnet-monai"] == osnet_monai.__version__, key


def test_metadata_rejects_a_broken_copy(tmp_path):
    meta = json.loads(open(META).read())
    del meta["network_data_format"]
    broken = tmp_path / "metadata.json"
    broken.write_text(json.dumps(meta))
    with pytest.raises(Exception):
        verify_metadata(meta_file=str(broken), filepath=str(SCHEMA))


def test_network_input_output_matches_metadata():
    verify_net_in_out(net_id="network_def", meta_file=META, config_file=INFERENCE, n=4)


def test_ckpt_export_torchscript_matches_eager(untrained_checkpoint, tmp_path):
    out = tmp_path / "model.ts"
    ckpt_export(net_id="network_def", filepath=str(out), ckpt_file=str(untrained_checkpoint), meta_file=META, config_file=INFERENCE)
    scripted = torch.jit.load(str(out))
    net = OSNet()
    net.load_state_dict(torch.load(untrained_checkpoint, weights_only=True))
    x = torch.randn(2, 1, 64, 96)
    with torch.no_grad():
        torch.testing.assert_close(scripted.eval()(x), net.eval()(x))


@pytest.mark.slow
def test_onnx_export_dynamic_batch_matches_pytorch(untrained_checkpoint, tmp_path):
    ort = pytest.importorskip("onnxruntime")
    out = tmp_path / "model.onnx"
    onnx_export(
        net_id="network_def", filepath=str(out), ckpt_file=str(untrained_checkpoint), meta_file=META, config_file=INFERENCE,
        use_trace=True, input_shape=[1, 1, 224, 224],
        converter_kwargs={"dynamic_axes": {"x": {0: "batch", 2: "height", 3: "width"}}, "input_names": ["x"], "output_names": ["pred"]},
    )
    session = ort.InferenceSession(str(out))
    net = OSNet()
    net.load_state_dict(torch.load(untrained_checkpoint, weights_only=True))
    for shape in ((1, 1, 224, 224), (3, 1, 96, 160)):
        x = np.random.default_rng(0).normal(size=shape).astype(np.float32)
        with torch.no_grad():
            expected = net.eval()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(session.run(None, {"x": x})[0], expected, atol=1e-4)


def test_train_workflow_properties(ellipsoid_dataset, tmp_path):
    workflow = ConfigWorkflow(
        config_file=str(BUNDLE_CONFIGS / "train.json"), meta_file=META, workflow_type="train", logging_file=False,
        dataset_dir=str(ellipsoid_dataset), ckpt_dir=str(tmp_path), roi_size=[64, 64], num_workers=0,
    )
    workflow.initialize()
    assert workflow.check_properties() == []


def test_inference_workflow_properties(tmp_path, untrained_checkpoint):
    field = render_field(PRESETS["hx1"].replace(name="t", field_shape=(64, 64, 16)), seed=0)
    (tmp_path / "in").mkdir()
    write_nifti(tmp_path / "in" / "a.nii.gz", field.image, (0.15, 0.15, 0.3))
    workflow = ConfigWorkflow(
        config_file=INFERENCE, meta_file=META, workflow_type="infer", logging_file=False,
        dataset_dir=str(tmp_path / "in"), output_dir=str(tmp_path / "out"), ckpt_path=str(untrained_checkpoint),
    )
    workflow.initialize()
    assert workflow.check_properties() == []


def test_bundle_files_present_and_small():
    bundle = REPO_ROOT / "bundle"
    for required in ("configs/metadata.json", "configs/inference.json", "configs/train.json", "configs/evaluate.json",
                     "configs/multi_gpu_train.json", "LICENSE", "docs/README.md", "docs/data_license.txt"):
        assert (bundle / required).is_file(), required
    tracked_large = [p for p in bundle.rglob("*") if p.is_file() and p.stat().st_size > 25 * 2**20
                     and "cache" not in p.parts and "logs" not in p.parts and p.name != "checkpoint_last.pt"]
    assert not tracked_large or (bundle / "large_files.yml").is_file()


def test_train_and_inference_build_the_same_network():
    """network_def lives in both configs because MONAI Label and the Model Zoo read inference.json
    alone; this keeps the two copies from drifting (in_channels comes from the model card there)."""
    train = json.loads((BUNDLE_CONFIGS / "train.json").read_text())["network_def"]
    infer = json.loads(open(INFERENCE).read())["network_def"]
    assert {k: v for k, v in train.items() if k != "in_channels"} == {k: v for k, v in infer.items() if k != "in_channels"}


def test_multi_gpu_overrides_address_nothing_by_position():
    """multi_gpu_train.json changes train.json through named ids (``main_process``), never a list index:
    train.json's handlers stay inline because MONAI's workflow property check reads them there."""
    multi = json.loads((BUNDLE_CONFIGS / "multi_gpu_train.json").read_text())
    train = json.loads((BUNDLE_CONFIGS / "train.json").read_text())
    assert not [key for key in multi if any(part.isdigit() for part in key.split("#"))]
    assert "[" not in multi["train#trainer#train_handlers"].split("for h in")[0].replace("$[", "")
    savers = [h for h in train["train"]["handlers"] if "save" in h]
    assert len(savers) == 2 and all(h["save"] == "@main_process" for h in savers)


@pytest.mark.parametrize("card, expected", [(None, ("medium", 0)), ({"normalisation": "robust"}, ("robust", 0)),
                                            ({"normalisation": "medium", "context": 1, "in_channels": 3}, ("medium", 1))])
def test_training_and_evaluation_see_input_as_the_checkpoint_did(tmp_path, card, expected):
    """Fine-tuning (``pretrained``) and evaluating a checkpoint take its model card's normalisation and
    2.5D context; a fresh run takes the paper's (``medium``, single sections)."""
    from osnet_monai.model_card import write_model_card

    ckpt = tmp_path / "model.pt"
    ckpt.touch()
    if card is not None:
        write_model_card(ckpt, **card)
    train = ConfigParser()
    train.read_config(str(BUNDLE_CONFIGS / "train.json"))
    assert (train.get_parsed_content("normalisation"), train.get_parsed_content("context")) == ("medium", 0)
    train.update({"pretrained": str(ckpt)})
    assert (train.get_parsed_content("normalisation"), train.get_parsed_content("context")) == expected
    evaluate = ConfigParser()
    evaluate.read_config([str(BUNDLE_CONFIGS / "train.json"), str(BUNDLE_CONFIGS / "evaluate.json")])
    evaluate.update({"ckpt_dir": str(tmp_path)})
    assert (evaluate.get_parsed_content("normalisation"), evaluate.get_parsed_content("context")) == expected


@pytest.mark.parametrize("device", ["cpu", "$torch.device('cpu')"])
def test_what_monai_label_builds_resolves_with_device_as_a_string(device, untrained_checkpoint):
    """MONAI Label's bundle task sets ``device`` to a plain string ("cpu") and builds these items
    from inference.json alone; an expression that needs a torch.device broke its /infer (HTTP 500)."""
    parser = ConfigParser()
    parser.read_config(str(BUNDLE_CONFIGS / "inference.json"))
    parser["device"] = device
    parser["ckpt_path"] = str(untrained_checkpoint)
    for key in ("network_def", "preprocessing", "inferer", "postprocessing"):
        assert parser.get_parsed_content(key, instantiate=True) is not None, key
    assert parser.get_parsed_content("inferer").sw_batch_size == 1
    # what MONAI Label returns is the writer's nucleus ids: postprocessing ends with them
    last = parser.get_parsed_content("postprocessing").transforms[-1]
    assert type(last).__name__ == "LabelNucleid"
    assert last.min_volume_um3 == parser.get_parsed_content("writer").min_nucleus_volume_um3 > 0
