"""
Segmentation metrics of the OS-Net paper as the paper averages them: F-beta (F0.5) and PR-AUC per image.

The paper (Lee et al., Table 1 and 2) scores 2D sections with DICE, Jaccard, F0.5 and the area
under the precision-recall curve, after a sigmoid and a 0.5 threshold, averaged over sections. DICE
and Jaccard are MONAI's own :py:class:`monai.metrics.DiceMetric` / :py:class:`monai.metrics.MeanIoU`
(handlers ``monai.handlers.MeanDice`` / ``monai.handlers.MeanIoUHandler``) and are not re-implemented.

MONAI 1.6 also ships :py:class:`monai.metrics.FBetaScore` and
:py:class:`monai.metrics.AveragePrecisionMetric`, but neither averages per image:
``FBetaScore.aggregate`` averages the confusion matrices first and scores the pooled counts (a
large section outweighs a small one), and ``AveragePrecisionMetric`` is a classification metric
(one score per batch of samples, not per segmentation image). Ours score each image, then take the
mean of the images (``nan`` for empty truth left out, like ``DiceMetric``), and compute PR-AUC for a
whole batch of images in one vectorised pass. On a single image both agree with MONAI's exactly
(``tests/test_metrics.py`` checks it).

F-beta and the paper
--------------------
F-beta is the weighted harmonic mean of precision P and recall R::

    F_beta = (1 + b^2) P R / (b^2 P + R) = (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)

so it can never exceed 1. The paper reports F0.5 values above 1 (e.g. 1.1016), which a correct
F-beta cannot produce. The most likely cause is ``(1 + b)`` instead of ``(1 + b^2)`` in the
numerator, which inflates F0.5 by ``1.5 / 1.25 = 1.2`` (exactly, whatever P and R are). Divide
the paper's F0.5 values by 1.2 to compare them with this metric. :py:class:`FBetaMetric` computes
the correct score.

PR-AUC
------
The area under the precision-recall curve is computed per image as average precision, exactly
like scikit-learn's ``average_precision_score``: ``AP = sum_n (R_n - R_{n-1}) P_n`` over the
distinct score thresholds in decreasing order (tied scores form one threshold, no interpolation).
It needs probabilities, not the thresholded mask.

Bundle wiring
-------------
Dice, Jaccard and F0.5 want the binary mask, PR-AUC wants the sigmoid probabilities. Let the
evaluator's postprocessing keep both, then select the key with ``output_transform``::

    "postprocessing": {
        "_target_": "Compose",
        "transforms": [
            {"_target_": "Activationsd", "keys": "pred", "sigmoid": true},
            {"_target_": "CopyItemsd", "keys": "pred", "times": 1, "names": "prob"},
            {"_target_": "AsDiscreted", "keys": "pred", "threshold": 0.5}
        ]
    },
    "key_metric": {
        "val_mean_dice": {
            "_target_": "MeanDice",
            "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"
        }
    },
    "additional_metrics": {
        "val_jaccard": {
            "_target_": "MeanIoUHandler",
            "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"
        },
        "val_f05": {
            "_target_": "osnet_monai.metrics.FBetaHandler",
            "beta": 0.5,
            "output_transform": "$monai.handlers.from_engine(['pred', 'label'])"
        },
        "val_pr_auc": {
            "_target_": "osnet_monai.metrics.PRAUCHandler",
            "output_transform": "$monai.handlers.from_engine(['prob', 'label'])"
        }
    }

Empty ground truth
------------------
Both metrics follow MONAI's ``DiceMetric(ignore_empty=True)``: an image (channel) whose ground truth
is empty gives ``nan``, and ``nan`` values are left out of the mean (``get_not_nans`` counts the
rest). With ``ignore_empty=False`` F-beta is 1 when the prediction is empty as well and 0
otherwise, as Dice does. PR-AUC is always ``nan`` for empty ground truth: recall is undefined.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from ignite.metrics import Metric
from ignite.metrics.metric import reinit__is_reduced

from monai.handlers.ignite_metric import IgniteMetricHandler
from monai.metrics import CumulativeIterationMetric
from monai.metrics.utils import do_metric_reduction, ignore_background, is_binary_tensor
from monai.utils import MetricReduction

__all__ = [
    "FBetaMetric",
    "compute_fbeta",
    "PRAUCMetric",
    "compute_pr_auc",
    "FBetaHandler",
    "PRAUCHandler",
    "WorstGroupDice",
    "style_of",
]


def _plain(y_pred: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate shapes; drop MetaTensor metadata, which per-image scores do not carry."""
    _check_shapes(y_pred, y)
    return y_pred.as_subclass(torch.Tensor), y.as_subclass(torch.Tensor)  # type: ignore[return-value]


def _check_shapes(y_pred: torch.Tensor, y: torch.Tensor) -> None:
    if y_pred.ndim < 3:
        raise ValueError(f"y_pred should have at least 3 dimensions (batch, channel, spatial), got {y_pred.ndim}.")
    if y_pred.shape != y.shape:
        raise ValueError(f"y_pred and y should have the same shape, got {tuple(y_pred.shape)} and {tuple(y.shape)}.")


class _PerImageMetric(CumulativeIterationMetric):
    """A score per image and channel, buffered, then reduced with MONAI's ``do_metric_reduction``
    (nan left out): the one aggregation of :class:`FBetaMetric` and :class:`PRAUCMetric`."""

    reduction: MetricReduction | str
    get_not_nans: bool

    def aggregate(
        self, reduction: MetricReduction | str | None = None
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """
        Reduce the buffered per-image scores.

        Args:
            reduction: overrides the ``reduction`` given to the constructor.
        """
        data = self.get_buffer()
        if not isinstance(data, torch.Tensor):
            raise ValueError(f"the data to aggregate must be PyTorch Tensor, got {type(data)}.")
        f, not_nans = do_metric_reduction(data, reduction or self.reduction)
        return (f, not_nans) if self.get_not_nans else f


def compute_fbeta(
    y_pred: torch.Tensor,
    y: torch.Tensor,
    beta: float = 0.5,
    include_background: bool = True,
    ignore_empty: bool = True,
) -> torch.Tensor:
    """
    Per-image, per-channel F-beta score of binary masks.

    ``F = (1 + b^2) TP / ((1 + b^2) TP + b^2 FN + FP)``, computed from the counts so that an empty
    prediction on a non-empty truth gives 0 rather than ``0 / 0``.

    Args:
        y_pred: binarised prediction, shape (B, C, spatial...).
        y: binary ground truth, same shape.
        beta: weight of recall relative to precision; ``beta < 1`` favours precision (the paper's 0.5).
        include_background: whether to keep the first channel when C > 1.
        ignore_empty: if True, empty ground truth gives ``nan``; otherwise 1 if the prediction is also
            empty, else 0 (the convention of :py:class:`monai.metrics.DiceMetric`).

    Returns:
        Tensor of shape (B, C) (C - 1 without the background), float32.

    Examples:
        >>> y = torch.tensor([[[[1, 1, 1, 1, 0, 0]]]])
        >>> p = torch.tensor([[[[1, 1, 0, 0, 0, 0]]]])  # P = 1, R = 0.5
        >>> round(compute_fbeta(p, y).item(), 4)  # 1.25 * 0.5 / (0.25 + 0.5)
        0.8333
    """
    y_pred, y = _plain(y_pred, y)
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}.")
    if not include_background:
        y_pred, y = ignore_background(y_pred, y)
    y_pred, y = y_pred.float(), y.float()
    reduce_dims = tuple(range(2, y_pred.ndim))
    # counts in float64: exact for any realistic image size
    tp = (y_pred * y).sum(dim=reduce_dims, dtype=torch.float64)
    n_pred = y_pred.sum(dim=reduce_dims, dtype=torch.float64)
    n_true = y.sum(dim=reduce_dims, dtype=torch.float64)
    fp, fn = n_pred - tp, n_true - tp
    b2 = float(beta) ** 2
    numer = (1.0 + b2) * tp
    denom = numer + b2 * fn + fp
    # denom == 0 only when prediction and truth are both empty
    f = torch.where(denom > 0, numer / denom.clamp_min(1e-12), torch.ones_like(denom))
    empty_truth = n_true == 0
    if ignore_empty:
        f = torch.where(empty_truth, torch.full_like(f, float("nan")), f)
    else:
        f = torch.where(empty_truth, (n_pred == 0).to(f.dtype), f)
    return f.float()


def compute_pr_auc(y_pred: torch.Tensor, y: torch.Tensor, include_background: bool = True) -> torch.Tensor:
    """
    Per-image, per-channel area under the precision-recall curve, as average precision.

    ``AP = sum_n (R_n - R_{n-1}) P_n`` over the distinct thresholds in decreasing order, the same
    value as scikit-learn's ``average_precision_score`` (step-wise, no interpolation). Pixels with
    equal scores are one threshold: they enter the curve together. Vectorised over batch and
    channel with one sort.

    Args:
        y_pred: probabilities (or any score, larger = more likely foreground), shape (B, C, spatial...).
        y: binary ground truth, same shape.
        include_background: whether to keep the first channel when C > 1.

    Returns:
        Tensor of shape (B, C) (C - 1 without the background), float32; ``nan`` where the ground
        truth is empty (recall undefined).

    Examples:
        >>> y = torch.tensor([[[[1, 0, 1, 0]]]])
        >>> p = torch.tensor([[[[0.9, 0.8, 0.7, 0.1]]]])
        >>> round(compute_pr_auc(p, y).item(), 4)  # 0.5 * 1 + 0.5 * 2/3
        0.8333
    """
    y_pred, y = _plain(y_pred, y)
    if not include_background:
        y_pred, y = ignore_background(y_pred, y)
    b, c = y_pred.shape[:2]
    scores = y_pred.reshape(b * c, -1)
    if not torch.is_floating_point(scores):
        scores = scores.float()
    # sort in the input precision (ties stay ties), accumulate counts in float64
    truth = y.reshape(b * c, -1).to(torch.float64)
    n = scores.shape[1]

    scores, order = torch.sort(scores, dim=1, descending=True, stable=True)
    truth = torch.gather(truth, 1, order)
    tps = torch.cumsum(truth, dim=1)
    rank = torch.arange(1, n + 1, dtype=torch.float64, device=scores.device)
    precision = tps / rank  # precision if the threshold were put right after this pixel

    # a threshold only exists at the last pixel of each run of tied scores
    is_end = torch.ones_like(scores, dtype=torch.bool)
    is_end[:, :-1] = scores[:, :-1] != scores[:, 1:]
    # index of the end of each pixel's tie run: reversed running minimum of the end positions
    idx = torch.arange(n, device=scores.device).expand(b * c, n)
    end_pos = torch.where(is_end, idx, torch.full_like(idx, n - 1))
    end_pos = torch.flip(torch.cummin(torch.flip(end_pos, dims=[1]), dim=1).values, dims=[1])
    # every positive pixel raises recall by 1/P at its run's threshold, where precision is read
    run_precision = torch.gather(precision, 1, end_pos)
    n_pos = truth.sum(dim=1)
    ap = (truth * run_precision).sum(dim=1) / n_pos.clamp_min(1.0)
    ap = torch.where(n_pos > 0, ap, torch.full_like(ap, float("nan")))
    return ap.reshape(b, c).float()


class FBetaMetric(_PerImageMetric):
    """
    F-beta score (default F0.5, as in the OS-Net paper) of binarised segmentations.

    Inputs are batch-first tensors (B, C, H, W[, D]) or lists of channel-first tensors. ``y_pred``
    must be binary (e.g. ``AsDiscreted(threshold=0.5)`` after the sigmoid), or pass ``threshold``
    to binarise probabilities here. This is the correct F-beta, bounded by 1; see the module
    docstring for why the paper's values exceed 1.

    Args:
        beta: relative weight of recall; 0.5 weighs precision higher, 1 gives Dice/F1.
        include_background: whether to include the first channel when C > 1.
        reduction: mode of reduction over (batch, channel) on not-nan values, see
            :py:class:`monai.utils.enums.MetricReduction`. ``"none"`` keeps all values.
        get_not_nans: whether ``aggregate()`` also returns the count of not-nan values.
        ignore_empty: empty ground truth gives ``nan`` (excluded from the mean) if True; otherwise
            1 if the prediction is empty as well, else 0. Same as ``DiceMetric``.
        threshold: if given, ``y_pred > threshold`` is used; otherwise ``y_pred`` must be binary.

    Examples:
        .. code-block:: python

            metric = FBetaMetric(beta=0.5)
            for batch in loader:
                prob = torch.sigmoid(model(batch["image"]))
                metric(y_pred=(prob > 0.5).float(), y=batch["label"])
            f05 = metric.aggregate().item()
            metric.reset()
    """

    def __init__(
        self,
        beta: float = 0.5,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
        ignore_empty: bool = True,
        threshold: float | None = None,
    ) -> None:
        super().__init__()
        if beta <= 0:
            raise ValueError(f"beta must be positive, got {beta}.")
        self.beta = beta
        self.include_background = include_background
        self.reduction = reduction
        self.get_not_nans = get_not_nans
        self.ignore_empty = ignore_empty
        self.threshold = threshold

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """
        Args:
            y_pred: binary prediction (or probabilities when ``threshold`` is set), (B, C, spatial...).
            y: binary ground truth, same shape.

        Returns:
            F-beta per image and channel, shape (B, C).
        """
        if self.threshold is not None:
            y_pred = (y_pred > self.threshold).float()
        else:
            is_binary_tensor(y_pred, "y_pred")
        is_binary_tensor(y, "y")
        return compute_fbeta(
            y_pred, y, beta=self.beta, include_background=self.include_background, ignore_empty=self.ignore_empty
        )


class PRAUCMetric(_PerImageMetric):
    """
    Area under the precision-recall curve per image, computed as average precision.

    Inputs are batch-first tensors (B, C, H, W[, D]) or lists of channel-first tensors. ``y_pred``
    holds probabilities (the sigmoid output, before thresholding), ``y`` the binary truth. Images
    with empty ground truth give ``nan`` and are left out of the mean. Per-image values are averaged,
    as the paper averages metrics over 2D sections (this is not one curve pooled over all pixels).

    Args:
        include_background: whether to include the first channel when C > 1.
        reduction: mode of reduction over (batch, channel) on not-nan values, see
            :py:class:`monai.utils.enums.MetricReduction`.
        get_not_nans: whether ``aggregate()`` also returns the count of not-nan values.

    Examples:
        .. code-block:: python

            metric = PRAUCMetric()
            for batch in loader:
                metric(y_pred=torch.sigmoid(model(batch["image"])), y=batch["label"])
            pr_auc = metric.aggregate().item()
            metric.reset()
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        get_not_nans: bool = False,
    ) -> None:
        super().__init__()
        self.include_background = include_background
        self.reduction = reduction
        self.get_not_nans = get_not_nans

    def _compute_tensor(self, y_pred: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        """
        Args:
            y_pred: probabilities, (B, C, spatial...).
            y: binary ground truth, same shape.

        Returns:
            average precision per image and channel, shape (B, C).
        """
        is_binary_tensor(y, "y")
        return compute_pr_auc(y_pred, y, include_background=self.include_background)


class FBetaHandler(IgniteMetricHandler):
    """
    Ignite handler of :py:class:`FBetaMetric`, used like ``monai.handlers.MeanDice`` (named apart
    from MONAI's metric class ``monai.metrics.FBetaScore``, which pools the counts).

    Args:
        beta: relative weight of recall (0.5 in the paper).
        include_background: whether to include the first channel when C > 1.
        reduction: mode of reduction on not-nan values, default ``"mean"``.
        ignore_empty: see :py:class:`FBetaMetric`.
        threshold: binarise ``y_pred > threshold`` first; None expects binary input.
        output_transform: callable extracting ``(y_pred, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["pred", "label"])``.
        save_details: whether to save per-image values to ``engine.state.metric_details``.

    Examples:
        .. code-block:: python

            FBetaHandler(output_transform=from_engine(["pred", "label"])).attach(evaluator, "val_f05")
    """

    def __init__(
        self,
        beta: float = 0.5,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        ignore_empty: bool = True,
        threshold: float | None = None,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = FBetaMetric(
            beta=beta,
            include_background=include_background,
            reduction=reduction,
            ignore_empty=ignore_empty,
            threshold=threshold,
        )
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


class PRAUCHandler(IgniteMetricHandler):
    """
    Ignite handler of :py:class:`PRAUCMetric`. Feed it probabilities, not the thresholded mask.

    Args:
        include_background: whether to include the first channel when C > 1.
        reduction: mode of reduction on not-nan values, default ``"mean"``.
        output_transform: callable extracting ``(y_prob, y)`` from ``engine.state.output``, e.g.
            ``monai.handlers.from_engine(["prob", "label"])`` when postprocessing copies the sigmoid
            output to ``prob`` before thresholding ``pred`` (see the module docstring).
        save_details: whether to save per-image values to ``engine.state.metric_details``.

    Examples:
        .. code-block:: python

            PRAUCHandler(output_transform=from_engine(["prob", "label"])).attach(evaluator, "val_pr_auc")
    """

    def __init__(
        self,
        include_background: bool = True,
        reduction: MetricReduction | str = MetricReduction.MEAN,
        output_transform: Callable = lambda x: x,
        save_details: bool = True,
    ) -> None:
        metric_fn = PRAUCMetric(include_background=include_background, reduction=reduction)
        super().__init__(metric_fn=metric_fn, output_transform=output_transform, save_details=save_details)


def style_of(cell_id: str) -> str:
    """The style (or preset) a phantom file belongs to: its name up to the first ``-``."""
    return str(cell_id).split("-", 1)[0]


class WorstGroupDice(Metric):
    """Mean Dice per group (per phantom style), reduced to the worst group: model selection by the
    worst instrument, not by the mean.

    Feed ``(y_pred, y, ids)``: binary ``(B, 1, ...)`` tensors (or lists of ``(1, ...)``) and one
    id per image (e.g. its ``cell_id``), which ``group_fn`` maps to its group. By default each image
    is scored on its own and an image with empty ground truth is left out (as
    ``DiceMetric(ignore_empty=True)``). With ``per_volume`` the images are sections and the counts of
    all sections with one id are pooled: each volume's 3D Dice (fed every section of it, see
    ``SectionDataset(whole_volumes=True)``, false alarms in nucleus-free sections count), then the
    mean per group over volumes with nucleus. ``compute()`` returns the lowest per-group mean; the
    per-group means are kept in ``self.per_group`` and, when attached, in
    ``engine.state.metric_details[name]``.

    Args:
        group_fn: maps an id to its group. Defaults to :func:`style_of`.
        output_transform: e.g. ``monai.handlers.from_engine(["pred", "label", "group"])``.
        per_volume: pool the counts per id (3D Dice per volume) instead of scoring each image.
    """

    def __init__(
        self, group_fn: Callable[[str], str] = style_of, output_transform: Callable = lambda x: x, per_volume: bool = False
    ) -> None:
        self.group_fn = group_fn
        self.per_volume = per_volume
        self.per_group: dict[str, float] = {}
        super().__init__(output_transform=output_transform)

    @reinit__is_reduced
    def reset(self) -> None:
        self._dice: dict[str, list[float]] = {}
        self._volumes: dict[str, list[float]] = {}  # id -> [intersection, predicted + true, true]

    @reinit__is_reduced
    def update(self, output) -> None:
        y_pred, y, ids = output
        if isinstance(y_pred, (list, tuple)):
            y_pred, y = torch.stack([torch.as_tensor(p) for p in y_pred]), torch.stack([torch.as_tensor(t) for t in y])
        ids = [ids] if isinstance(ids, str) else list(ids)
        p = (y_pred > 0.5).flatten(1).float()
        t = (y > 0.5).flatten(1).float()
        counts = zip(ids, (p * t).sum(1).tolist(), (p.sum(1) + t.sum(1)).tolist(), t.sum(1).tolist())
        for name, inter, total, true in counts:
            if self.per_volume:
                acc = self._volumes.setdefault(str(name), [0.0, 0.0, 0.0])
                acc[0], acc[1], acc[2] = acc[0] + inter, acc[1] + total, acc[2] + true
            elif true > 0:
                self._dice.setdefault(self.group_fn(name), []).append(2 * inter / total)

    def compute(self) -> float:
        dice = self._dice
        if self.per_volume:
            dice = {}
            for name, (inter, total, true) in self._volumes.items():
                if true > 0:
                    dice.setdefault(self.group_fn(name), []).append(2 * inter / total)
        self.per_group = {k: sum(v) / len(v) for k, v in sorted(dice.items())}
        return min(self.per_group.values()) if self.per_group else float("nan")

    def completed(self, engine, name: str) -> None:
        super().completed(engine, name)
        details = getattr(engine.state, "metric_details", None)
        if details is None:
            engine.state.metric_details = details = {}
        details[name] = dict(self.per_group)
