"""Tests for the OS-Net family: Table 1 counts, shapes, TorchScript, gradients, errors."""

from __future__ import annotations

import pytest
import torch

from monai.networks import eval_mode

from osnet_monai.networks import GCN, OSNet, TABLE1_EXPERIMENTS, TABLE1_NETWORKS, count_parameters, table1_model

# (printed name, expected count with the Table 1 configuration)
COUNT_CASES = [
    ("Unet16", 2_159_648),
    ("Unet16 + GCN", 2_770_848),
    ("Unet16 + GCN + SSC", 2_770_848),
    ("OS-Net", 2_770_848),
    ("FusionNet", 4_913_344),
    ("FusionNet v2", 5_524_544),
    ("FusionNet + Aug", 4_913_344),
    ("FusionNet + GCN + SSC + Aug (FusionNet v2)", 5_524_544),
    ("Unet16 + GCN + Aug", 2_770_848),
    ("Unet64", 34_517_120),  # the paper's text (64..1024); its printed 8,638,592 matches no network
]

UNET16_MODULE_COUNTS = {
    "down_1": 2_512,
    "down_2": 13_952,
    "down_3": 55_552,
    "down_4": 221_696,
    "bridge": 885_760,
    "up_4.upsample": 294_912,
    "up_3.upsample": 73_728,
    "up_2.upsample": 18_432,
    "up_1.upsample": 4_608,
    "up_4.conv": 442_880,
    "up_3.conv": 110_848,
    "up_2.conv": 27_776,
    "up_1.conv": 6_976,
    "head": 16,
}

GCN_COUNTS = [(16, 7_296), (32, 28_928), (64, 115_200), (128, 459_776)]

# (kwargs, input shape, expected output shape)
SHAPE_CASES = [
    ({}, (2, 1, 64, 64), (2, 1, 64, 64)),
    ({}, (1, 1, 48, 80), (1, 1, 48, 80)),
    ({"out_channels": 2}, (3, 1, 32, 96), (3, 2, 32, 96)),
    ({"up_kernel_size": 4}, (1, 1, 64, 32), (1, 1, 64, 32)),
    ({"style": "fusionnet", "out_channels": 2}, (2, 1, 32, 32), (2, 2, 32, 32)),
    ({"gcn_kernel_size": 5, "short_skip": False, "in_channels": 2}, (1, 2, 16, 16), (1, 1, 16, 16)),
]


def get_module(net, dotted):
    for part in dotted.split("."):
        net = getattr(net, part)
    return net


@pytest.mark.parametrize("name, expected", COUNT_CASES)
def test_table1_parameter_counts(name, expected):
    assert count_parameters(table1_model(name)) == expected


def test_default_osnet_is_the_published_model():
    assert count_parameters(OSNet()) == 2_770_848
    net = OSNet()
    assert all(getattr(net, f"down_{i}").gcn.short_skip for i in range(1, 5))


def test_printed_counts_reproduced_except_unet64():
    for name, row in TABLE1_NETWORKS.items():
        ours = count_parameters(table1_model(name))
        assert (ours == row.paper_parameters) == (name != "Unet64"), name


def test_every_experiment_row_builds():
    for printed, network, _augment in TABLE1_EXPERIMENTS:
        assert count_parameters(table1_model(printed)) == count_parameters(table1_model(network))


@pytest.mark.parametrize("module, expected", sorted(UNET16_MODULE_COUNTS.items()))
def test_unet16_module_counts(module, expected):
    assert count_parameters(get_module(table1_model("Unet16"), module)) == expected


@pytest.mark.parametrize("channels, expected", GCN_COUNTS)
def test_gcn_counts(channels, expected):
    assert count_parameters(GCN(2, channels)) == expected == 28 * channels**2 + 8 * channels


@pytest.mark.parametrize("name, expected", [("Unet16", 2_464_288), ("OS-Net", 3_075_488)])
def test_text_kernel_4_counts(name, expected):
    assert count_parameters(table1_model(name, up_kernel_size=4)) == expected


@pytest.mark.parametrize("kwargs, input_shape, expected_shape", SHAPE_CASES)
def test_output_shape(kwargs, input_shape, expected_shape):
    net = OSNet(**kwargs)
    with eval_mode(net):
        assert net(torch.randn(input_shape)).shape == expected_shape


def test_short_skip_changes_output():
    torch.manual_seed(0)
    with_ssc = GCN(2, 4, short_skip=True)
    without = GCN(2, 4, short_skip=False)
    without.load_state_dict(with_ssc.state_dict())
    x = torch.randn(1, 4, 16, 16)
    with eval_mode(with_ssc, without):
        torch.testing.assert_close(with_ssc(x), without(x) + x)


@pytest.mark.parametrize("kwargs", [{}, {"style": "fusionnet", "up_kernel_size": 4, "out_channels": 2}])
def test_torchscript_matches_eager(kwargs):
    torch.manual_seed(0)
    net = OSNet(**kwargs)
    x = torch.randn(2, 1, 32, 48)
    with eval_mode(net):
        scripted = torch.jit.script(net)
        torch.testing.assert_close(scripted(x), net(x))


@pytest.mark.parametrize("name", ["OS-Net", "FusionNet v2", "Unet16"])
def test_every_parameter_gets_a_gradient(name):
    torch.manual_seed(0)
    net = table1_model(name)
    loss = torch.nn.functional.binary_cross_entropy_with_logits(
        net(torch.randn(2, 1, 32, 32)), torch.randint(0, 2, (2, 1, 32, 32)).float()
    )
    loss.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert not missing


BAD_ARGUMENTS = [
    ({"spatial_dims": 3}, "spatial_dims"),
    ({"features": (16, 32, 64, 128)}, "features"),
    ({"gcn_kernel_size": 6}, "odd"),
    ({"gcn_kernel_size": None, "short_skip": True}, "short_skip"),
    ({"up_kernel_size": 2}, "up_kernel_size"),
    ({"style": "resnet"}, "style"),
    ({"out_channels": 0}, "out_channels"),
]


@pytest.mark.parametrize("kwargs, message", BAD_ARGUMENTS)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        OSNet(**kwargs)


@pytest.mark.parametrize("style", ["unet", "fusionnet"])
@pytest.mark.parametrize("features", [(16, 32, 64, 128, 200), (8, 8, 8, 8, 8), (32, 24, 48, 16, 64)])
def test_any_five_widths_run(style, features):
    net = OSNet(features=features, style=style)
    with eval_mode(net):
        assert net(torch.randn(1, 1, 32, 32)).shape == (1, 1, 32, 32)


def test_unknown_table1_name():
    with pytest.raises(ValueError, match="Unknown Table 1 model"):
        table1_model("Unet32")


@pytest.mark.parametrize("shape", [(1, 1, 40, 64), (1, 1, 64, 50), (1, 64, 64)])
def test_bad_input_sizes(shape):
    net = OSNet()
    with eval_mode(net), pytest.raises(ValueError, match="divisible by 16|dims"):
        net(torch.randn(shape))


def test_scripted_net_rejects_bad_sizes_too():
    scripted = torch.jit.script(OSNet().eval())
    with pytest.raises(Exception, match="divisible by 16"):
        scripted(torch.randn(1, 1, 40, 40))
