from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from ignite.engine import Engine

from monai.data import decollate_batch
from monai.handlers import MeanDice, from_engine
from monai.metrics import DiceMetric

from osnet_monai.metrics import FBetaHandler, FBetaMetric, PRAUCHandler, PRAUCMetric, compute_fbeta, compute_pr_auc


def _img(values: list[float]) -> torch.Tensor:
    """A (1, 1, 1, N) image from a flat list."""
    return torch.tensor(values, dtype=torch.float32).reshape(1, 1, 1, -1)


def _counts_to_masks(tp: int, fp: int, fn: int, tn: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    pred = [1] * tp + [1] * fp + [0] * fn + [0] * tn
    true = [1] * tp + [0] * fp + [1] * fn + [0] * tn
    return _img(pred), _img(true)


def _paper_fbeta(p: float, r: float, beta: float) -> float:
    """The formula the paper's values imply: (1 + b) instead of (1 + b^2) in the numerator."""
    return (1 + beta) * p * r / (beta**2 * p + r)


def _reference_ap(scores: np.ndarray, truth: np.ndarray) -> float:
    """Average precision by brute force over distinct thresholds (scikit-learn's definition)."""
    n_pos = truth.sum()
    ap, prev_recall = 0.0, 0.0
    for t in np.unique(scores)[::-1]:
        sel = scores >= t
        tp = float((truth[sel] == 1).sum())
        recall, precision = tp / n_pos, tp / sel.sum()
        ap += (recall - prev_recall) * precision
        prev_recall = recall
    return ap


# (tp, fp, fn, beta): precision and recall hand-computed in the test
FBETA_CASES = [
    (3, 1, 1, 0.5),  # P = R = 0.75 -> F = 0.75 for any beta
    (2, 0, 2, 0.5),  # P = 1, R = 0.5
    (3, 0, 1, 0.5),  # P = 1, R = 0.75: the paper's formula gives 1.125 > 1
    (1, 3, 0, 0.5),  # P = 0.25, R = 1
    (1, 3, 0, 2.0),  # beta > 1 favours recall
    (4, 2, 1, 1.0),  # F1 = 2 TP / (2 TP + FP + FN) = 8 / 11
]


@pytest.mark.parametrize("tp,fp,fn,beta", FBETA_CASES)
def test_fbeta_hand_computed(tp, fp, fn, beta):
    pred, true = _counts_to_masks(tp, fp, fn)
    p, r = tp / (tp + fp), tp / (tp + fn)
    expected = (1 + beta**2) * p * r / (beta**2 * p + r)
    metric = FBetaMetric(beta=beta)
    got = metric(pred, true)
    assert got.shape == (1, 1)
    assert got.item() == pytest.approx(expected, abs=1e-6)
    assert metric.aggregate().item() == pytest.approx(expected, abs=1e-6)
    assert got.item() <= 1.0


def test_fbeta_equals_dice_for_beta_one():
    g = torch.Generator().manual_seed(0)
    pred = (torch.rand(4, 1, 16, 16, generator=g) > 0.5).float()
    true = (torch.rand(4, 1, 16, 16, generator=g) > 0.4).float()
    ours = compute_fbeta(pred, true, beta=1.0)
    dice = DiceMetric(reduction="none")(pred, true)
    assert torch.allclose(ours, dice, atol=1e-6)


def test_paper_formula_is_inflated_and_can_exceed_one():
    # P = 1, R = 0.75: correct F0.5 = 0.9375, the (1 + b) numerator gives 1.125
    pred, true = _counts_to_masks(tp=3, fp=0, fn=1)
    ours = compute_fbeta(pred, true, beta=0.5).item()
    paper = _paper_fbeta(1.0, 0.75, 0.5)
    assert ours == pytest.approx(0.9375, abs=1e-6)
    assert paper == pytest.approx(1.125)
    assert paper > 1.0 >= ours
    # P != R (0.25 vs 1): the wrong formula still exceeds the correct value, by exactly 1.5 / 1.25
    pred, true = _counts_to_masks(tp=1, fp=3, fn=0)
    ours = compute_fbeta(pred, true, beta=0.5).item()
    paper = _paper_fbeta(0.25, 1.0, 0.5)
    assert paper > ours
    assert paper / ours == pytest.approx(1.2, rel=1e-5)


def test_fbeta_perfect_and_empty_prediction():
    true = _img([1, 1, 0, 0, 1])
    assert compute_fbeta(true.clone(), true).item() == pytest.approx(1.0)
    assert compute_fbeta(torch.zeros_like(true), true).item() == 0.0


def test_fbeta_empty_truth_ignore_empty():
    pred = torch.cat([_img([1, 1, 0, 0]), _img([0, 1, 0, 0]), _img([0, 0, 0, 0])])
    true = torch.cat([_img([1, 0, 0, 0]), _img([0, 0, 0, 0]), _img([0, 0, 0, 0])])
    metric = FBetaMetric(beta=0.5, reduction="mean", get_not_nans=True)
    per_image = metric(pred, true)
    # image 0: TP 1, FP 1, FN 0 -> P 0.5, R 1 -> 1.25 * 0.5 / (0.125 + 1) = 0.5556
    assert per_image[0, 0].item() == pytest.approx(1.25 * 0.5 / 1.125, abs=1e-6)
    assert torch.isnan(per_image[1:]).all()
    value, not_nans = metric.aggregate()
    assert value.item() == pytest.approx(1.25 * 0.5 / 1.125, abs=1e-6)  # nan images excluded
    assert not_nans.item() == 1
    # MONAI's Dice convention when empty truth is not ignored: 1 if both empty, else 0
    strict = compute_fbeta(pred, true, beta=0.5, ignore_empty=False)
    assert strict[1, 0].item() == 0.0 and strict[2, 0].item() == 1.0
    dice = DiceMetric(ignore_empty=False, reduction="none")(pred, true)
    assert torch.equal(strict[1:], dice[1:])


def test_fbeta_batch_reduction_and_accumulation():
    # two images with known scores, fed in two iterations
    p1, t1 = _counts_to_masks(tp=3, fp=1, fn=1)  # 0.75
    p2, t2 = _counts_to_masks(tp=3, fp=0, fn=1, tn=3)  # 0.9375, same length as p1
    metric = FBetaMetric(beta=0.5, reduction="mean")
    metric(p1, t1)
    metric(p2, t2)
    assert metric.aggregate().item() == pytest.approx((0.75 + 0.9375) / 2, abs=1e-6)
    assert metric.aggregate(reduction="sum").item() == pytest.approx(0.75 + 0.9375, abs=1e-6)
    assert metric.aggregate(reduction="none").shape == (2, 1)
    metric.reset()
    # two channels, list-of-channel-first input, mean_batch keeps channels apart
    pred = [torch.cat([p1[0], p2[0]]), torch.cat([p2[0], p2[0]])]
    true = [torch.cat([t1[0], t2[0]]), torch.cat([t2[0], t2[0]])]
    metric = FBetaMetric(beta=0.5, reduction="mean_batch")
    metric(pred, true)
    per_channel = metric.aggregate()
    assert per_channel.shape == (2,)
    assert per_channel[0].item() == pytest.approx((0.75 + 0.9375) / 2, abs=1e-6)
    assert per_channel[1].item() == pytest.approx(0.9375, abs=1e-6)
    no_bg = compute_fbeta(torch.stack(pred), torch.stack(true), include_background=False)
    assert no_bg.shape == (2, 1)


def test_fbeta_threshold_binarises_probabilities():
    prob = _img([0.9, 0.6, 0.4, 0.1])
    true = _img([1, 0, 1, 0])
    got = FBetaMetric(threshold=0.5)(prob, true).item()
    assert got == pytest.approx(compute_fbeta(_img([1, 1, 0, 0]), true).item())
    assert got == pytest.approx(0.5)


# (scores, truth, expected AP), each hand-computed
PRAUC_CASES = [
    ([0.9, 0.8, 0.7, 0.1], [1, 0, 1, 0], 0.5 * 1 + 0.5 * 2 / 3),
    ([0.7, 0.1, 0.9, 0.3], [1, 0, 1, 0], 1.0),  # perfect ranking, any order in memory
    ([0.1, 0.2, 0.3, 0.4], [1, 0, 0, 0], 0.25),  # positive ranked last
    # ties: the three 0.8 pixels form ONE threshold -> P = 2/3 at R = 1 (no ordering within ties)
    ([0.8, 0.8, 0.8, 0.2], [1, 0, 1, 0], 2 / 3),
    ([0.8, 0.8, 0.8, 0.2], [0, 1, 1, 0], 2 / 3),
    # tie group after a clean hit: R 1/3 at P 1, then +2/3 recall at P 3/4
    ([0.9, 0.5, 0.5, 0.5, 0.1], [1, 1, 0, 1, 0], 1 / 3 + (2 / 3) * 0.75),
    ([0.5, 0.5, 0.5, 0.5], [1, 0, 0, 0], 0.25),  # constant score -> prevalence
]


@pytest.mark.parametrize("scores,truth,expected", PRAUC_CASES)
def test_pr_auc_hand_computed(scores, truth, expected):
    got = PRAUCMetric()(_img(scores), _img(truth)).item()
    assert got == pytest.approx(expected, abs=1e-6)
    assert got == pytest.approx(_reference_ap(np.array(scores), np.array(truth)), abs=1e-6)


def test_pr_auc_matches_brute_force_with_many_ties():
    g = torch.Generator().manual_seed(1)
    # coarse quantisation makes ties common
    scores = torch.round(torch.rand(3, 1, 12, 12, generator=g) * 8) / 8
    truth = (torch.rand(3, 1, 12, 12, generator=g) < 0.3 + 0.4 * scores).float()
    got = compute_pr_auc(scores, truth)
    for i in range(3):
        ref = _reference_ap(scores[i].numpy().ravel(), truth[i].numpy().ravel())
        assert got[i, 0].item() == pytest.approx(ref, abs=1e-6)
    # the value does not depend on pixel order
    perm = torch.randperm(144, generator=g)
    shuffled = compute_pr_auc(scores.reshape(3, 1, -1)[..., perm], truth.reshape(3, 1, -1)[..., perm])
    assert torch.allclose(shuffled, got)


def test_pr_auc_perfect_and_empty_truth():
    truth = torch.zeros(3, 1, 8, 8)
    truth[0, 0, 2:5, 2:5] = 1
    truth[1, 0, :, :4] = 1
    prob = truth * 0.7 + 0.2  # every positive above every negative
    metric = PRAUCMetric(get_not_nans=True)
    per_image = metric(prob, truth)
    assert per_image[0, 0].item() == pytest.approx(1.0)
    assert per_image[1, 0].item() == pytest.approx(1.0)
    assert math.isnan(per_image[2, 0].item())
    value, not_nans = metric.aggregate()
    assert value.item() == pytest.approx(1.0) and not_nans.item() == 2


def test_pr_auc_batch_mean():
    a = PRAUC_CASES[0]
    c = PRAUC_CASES[3]
    prob = torch.cat([_img(a[0]), _img(c[0])])
    truth = torch.cat([_img(a[1]), _img(c[1])])
    metric = PRAUCMetric(reduction="mean")
    metric(prob, truth)
    assert metric.aggregate().item() == pytest.approx((a[2] + c[2]) / 2, abs=1e-6)


def _engine_batches(seed: int = 0, n_batches: int = 3, batch: int = 2) -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(n_batches):
        label = torch.zeros(batch, 1, 16, 16)
        label[:, :, 4:10, 3:12] = 1
        if i == 1:
            label[1] = 0  # one empty-truth image: must be excluded, not counted as 0
        prob = 0.3 * label + 0.7 * torch.rand(batch, 1, 16, 16, generator=g)  # overlapping classes
        out.append({"prob": prob, "pred": (prob > 0.5).float(), "label": label})
    return out


def test_ignite_handlers_match_metrics():
    data = _engine_batches()

    # the evaluator's output after decollation: a list of per-image dicts, as SupervisedEvaluator gives
    def step(engine, batch):
        return decollate_batch(batch)

    engine = Engine(step)
    FBetaHandler(beta=0.5, output_transform=from_engine(["pred", "label"])).attach(engine, "f05")
    PRAUCHandler(output_transform=from_engine(["prob", "label"])).attach(engine, "pr_auc")
    MeanDice(output_transform=from_engine(["pred", "label"])).attach(engine, "dice")
    engine.run(data, max_epochs=1)

    fbeta, prauc = FBetaMetric(beta=0.5), PRAUCMetric()
    for b in data:
        fbeta(b["pred"], b["label"])
        prauc(b["prob"], b["label"])
    assert engine.state.metrics["f05"] == pytest.approx(fbeta.aggregate().item(), abs=1e-6)
    assert engine.state.metrics["pr_auc"] == pytest.approx(prauc.aggregate().item(), abs=1e-6)
    assert 0.0 < engine.state.metrics["f05"] <= 1.0
    # PR-AUC on probabilities must differ from PR-AUC on the binary mask: it really saw `prob`
    binary = PRAUCMetric()
    for b in data:
        binary(b["pred"], b["label"])
    assert engine.state.metrics["pr_auc"] != pytest.approx(binary.aggregate().item(), abs=1e-4)
    details = engine.state.metric_details["f05"]
    assert details.shape == (6, 1) and int(torch.isnan(details).sum()) == 1


def _random_masks(seed: int, batch: int = 3) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    truth = (torch.rand(batch, 1, 12, 12, generator=g) > 0.6).float()
    prob = (0.6 * truth + 0.5 * torch.rand(batch, 1, 12, 12, generator=g)).clamp(0, 1)
    return prob, (prob > 0.5).float(), truth


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0])
def test_fbeta_agrees_with_monai_per_image(seed, beta):
    from monai.metrics import FBetaScore

    _, pred, truth = _random_masks(seed)
    ours = compute_fbeta(pred, truth, beta=beta)
    for i in range(pred.shape[0]):
        theirs = FBetaScore(beta=beta)
        theirs(y_pred=pred[i : i + 1], y=truth[i : i + 1])
        assert ours[i, 0].item() == pytest.approx(theirs.aggregate()[0].item(), abs=1e-6)


def test_fbeta_averages_images_where_monai_pools_counts():
    """One large, perfectly segmented image and one small, missed one: ours is their mean (0.5);
    MONAI's FBetaScore scores the pooled counts, where the large image dominates."""
    from monai.metrics import FBetaScore

    truth = torch.zeros(2, 1, 10, 10)
    truth[0, 0, :8, :8] = 1
    truth[1, 0, 0, 0] = 1
    pred = truth.clone()
    pred[1] = 0
    ours = FBetaMetric(beta=0.5)
    ours(y_pred=pred, y=truth)
    theirs = FBetaScore(beta=0.5)
    theirs(y_pred=pred, y=truth)
    assert ours.aggregate().item() == pytest.approx(0.5)
    assert theirs.aggregate()[0].item() > 0.9


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pr_auc_agrees_with_monai_average_precision_per_image(seed):
    from monai.metrics import compute_average_precision

    prob, _, truth = _random_masks(seed)
    ours = compute_pr_auc(prob, truth)
    for i in range(prob.shape[0]):
        theirs = compute_average_precision(prob[i].flatten(), truth[i].flatten())
        assert ours[i, 0].item() == pytest.approx(float(theirs), abs=1e-6)
