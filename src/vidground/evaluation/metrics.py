"""Grounding metrics, each reproducing one published evaluation protocol.

Numbers are only comparable with a paper's when they are computed the way the paper's code
computes them, edge cases included. Each function below names the reference file it reproduces
and writes down what that code does with the awkward inputs:

``timelens``
    TencentARC/TimeLens, ``evaluation/compute_metrics.py`` with ``iou`` and the rounding of
    ``evaluation/eval_dataloader.py``. The first predicted span against the (one) ground-truth
    span; IoU is ``max(min(ends) - max(starts), 0) / (max(ends) - min(starts))``; thresholds are
    ``>=``; no parsed span counts IoU 0 (the reference substitutes ``(-100, -100)``); a reversed
    or empty prediction (start >= end) gets IoU 0 from that same formula. Predictions are first
    rounded to the dataset's ``UNIT``; TimeLens' datasets define none, so the script's default,
    whole seconds, applies (Python ``round``: halves go to the even number).
``videomind``
    yeliudev/VideoMind, ``videomind/eval/eval_auto.py`` (the Moment-DETR style R@k table) with
    the post-processing of ``videomind/eval/infer_auto.py``: predictions clamped to
    ``[0, duration]``, rounded to the dataset's ``UNIT`` (Charades-STA 0.1 s, ActivityNet 0.01 s,
    QVHighlights 2 s, else 0.001 s), reversed spans swapped back; an answer with no span falls
    back to the whole video ``[0, duration]`` (the reference's "grounder failed" case, counted in
    ``failed``). IoU is nncore's ``inter / (len_a + len_b - inter)`` with 0 where that is not
    finite; ``R{k}@t`` asks whether any of the first ``k`` predictions reaches IoU ``>= t`` with
    any ground-truth span; ``mIoU`` is the first prediction's best IoU.
``qvhighlights``
    jayleicn/moment_detr, ``standalone_eval/eval.py`` (``compute_mr_r1``, ``compute_mr_ap``) and
    ``standalone_eval/utils.py`` (from MMAction2). R1@t: the first window against the ground-
    truth window it overlaps most; mAP: at most 10 windows, sorted by score, greedily matched to
    unmatched ground truth, VOC-interpolated AP at IoU 0.5:0.05:0.95, averaged over queries and
    then thresholds. Where the reference is undefined we choose, and say so: a query with no
    predicted window scores IoU 0 and AP 0 (the reference crashes in R1 and leaves the query out
    of mAP), a reversed window overlaps nothing.

Scores are fractions in [0, 1]; the report prints them as percentages, like the papers.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from .records import Pair, Prediction, Sample

TIMELENS_THRESHOLDS = (0.3, 0.5, 0.7)
#: ``getattr(dataset_class, "UNIT", 1.0)`` in TimeLens' eval_dataloader.py; no dataset sets one.
TIMELENS_UNIT = 1.0

VIDEOMIND_THRESHOLDS = (0.3, 0.5, 0.7)
VIDEOMIND_TOP_K = (1, 3, 5)
#: ``UNIT`` of VideoMind's dataset classes; ``infer_auto.py`` defaults to 0.001.
VIDEOMIND_UNITS = {"charades-sta": 0.1, "activitynet": 0.01, "qvhighlights": 2.0}
VIDEOMIND_DEFAULT_UNIT = 0.001

#: ``np.linspace(0.5, 0.95, 10)`` printed with two decimals, as ``compute_mr_ap`` does.
QVH_AP_THRESHOLDS = tuple(round(0.5 + 0.05 * i, 2) for i in range(10))
QVH_R1_THRESHOLDS = (0.5, 0.7)
QVH_MAX_PRED_WINDOWS = 10

PROTOCOLS = ("timelens", "videomind", "qvhighlights")


@dataclass
class ProtocolScores:
    """One protocol's scores over a set of samples, and what each sample contributed."""

    protocol: str
    metrics: dict[str, float]
    n: int
    failed: int = 0
    per_sample: dict[str, dict[str, Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "n": self.n, "failed": self.failed,
                "metrics": dict(self.metrics)}


# --------------------------------------------------------------------------------- TimeLens


def timelens_iou(gt: Pair, pred: Pair) -> float:
    """TimeLens' ``iou(a, b)`` (timelens/utils.py): ``max(min1 - max0, 0) / (max1 - min0)``.

    ``max1``/``min1`` are the larger/smaller *end*, ``max0``/``min0`` the larger/smaller
    *start*, so a reversed or zero-length prediction scores 0. Where the reference would divide
    by zero (both spans one and the same instant) this returns 0.

    >>> timelens_iou((0.0, 10.0), (5.0, 15.0))
    0.3333333333333333
    >>> timelens_iou((0.0, 10.0), (8.0, 2.0))
    0.0
    """
    inter = min(gt[1], pred[1]) - max(gt[0], pred[0])
    union = max(gt[1], pred[1]) - min(gt[0], pred[0])
    if union <= 0:
        return 0.0
    return max(inter, 0.0) / union


def timelens_round(pred: Pair, unit: float | None = TIMELENS_UNIT) -> Pair:
    """``round(t / unit) * unit`` on both ends, as TimeLens' eval_dataloader.py stores them."""
    if not unit:
        return (float(pred[0]), float(pred[1]))
    return (round(pred[0] / unit) * unit, round(pred[1] / unit) * unit)


def timelens_sample_iou(gt_spans: Sequence[Pair], pred_spans: Sequence[Pair],
                        unit: float | None = TIMELENS_UNIT) -> float:
    """IoU of the first predicted span (rounded to ``unit``) with the first ground-truth span
    (TimeLens keeps ``span[0]``); 0 when nothing was predicted."""
    if not pred_spans or not gt_spans:
        return 0.0
    return timelens_iou(gt_spans[0], timelens_round(pred_spans[0], unit))


def timelens_summary(ious: Sequence[float]) -> dict[str, float]:
    """``R1@0.3/0.5/0.7`` (share with IoU ``>=`` the threshold) and ``mIoU``, as
    compute_metrics.py prints them (there times 100)."""
    n = len(ious)
    out = {f"R1@{t}": (sum(1 for v in ious if v >= t) / n if n else 0.0)
           for t in TIMELENS_THRESHOLDS}
    out["mIoU"] = sum(ious) / n if n else 0.0
    return out


def score_timelens(pairs: Iterable[tuple[Sample, Prediction]],
                   unit: float | None = TIMELENS_UNIT) -> ProtocolScores:
    """The TimeLens protocol over (sample, prediction) pairs."""
    ious: list[float] = []
    per_sample: dict[str, dict[str, Any]] = {}
    failed = 0
    for sample, pred in pairs:
        value = timelens_sample_iou(sample.spans, pred.spans, unit)
        failed += not pred.spans
        ious.append(value)
        per_sample[sample.id] = {"iou": value}
    return ProtocolScores("timelens", timelens_summary(ious), len(ious), failed, per_sample)


# --------------------------------------------------------------------------------- VideoMind


def videomind_unit(dataset: str | None) -> float:
    """The ``UNIT`` VideoMind rounds predictions to for this dataset."""
    return VIDEOMIND_UNITS.get(dataset or "", VIDEOMIND_DEFAULT_UNIT)


def videomind_postprocess(pred_spans: Sequence[Pair], duration: float,
                          unit: float = VIDEOMIND_DEFAULT_UNIT) -> tuple[list[Pair], bool]:
    """Predictions as VideoMind's infer_auto.py stores them, and whether the grounder
    succeeded: clamped to ``[0, duration]``, rounded to ``unit``, reversed spans put back with
    ``pred[inds] = pred[inds].roll(1)``; no span gives ``[(0, duration)]`` and ``False``.

    ``roll(1)`` without a dimension rolls the flattened rows: one reversed span is swapped, but
    several reversed spans trade ends with each other (``[[8, 2], [6, 4]] -> [[4, 8], [2, 6]]``).
    That is what the reference does, so it is what this does.
    """
    if not pred_spans:
        return [(0.0, float(duration))], False
    rows = []
    for start, end in pred_spans:
        s = min(max(float(start), 0.0), duration)
        e = min(max(float(end), 0.0), duration)
        rows.append([round(s / unit) * unit, round(e / unit) * unit])
    reversed_rows = [i for i, (s, e) in enumerate(rows) if e - s < 0]
    if reversed_rows:
        flat = [v for i in reversed_rows for v in rows[i]]
        flat = flat[-1:] + flat[:-1]
        for k, i in enumerate(reversed_rows):
            rows[i] = flat[2 * k:2 * k + 2]
    return [(s, e) for s, e in rows], True


def videomind_iou(pred: Pair, gt: Pair) -> float:
    """nncore's ``temporal_iou``: ``inter / (len_a + len_b - inter)``, 0 where not finite
    (VideoMind's ``torch.where(iou.isfinite(), iou, 0)``)."""
    inter = max(min(pred[1], gt[1]) - max(pred[0], gt[0]), 0.0)
    union = (pred[1] - pred[0]) + (gt[1] - gt[0]) - inter
    if union == 0:
        return 0.0
    value = inter / union
    return value if math.isfinite(value) else 0.0


def videomind_sample(gt_spans: Sequence[Pair], pred_spans: Sequence[Pair]) -> list[float]:
    """For each prediction (in order), its best IoU over the ground-truth spans."""
    return [max((videomind_iou(p, g) for g in gt_spans), default=0.0) for p in pred_spans]


def videomind_summary(best: Sequence[Sequence[float]]) -> dict[str, float]:
    """``R{k}@t`` for k in 1, 3, 5 and t in 0.3, 0.5, 0.7, and ``mIoU`` (first prediction)."""
    n = len(best)
    out: dict[str, float] = {}
    for k in VIDEOMIND_TOP_K:
        for t in VIDEOMIND_THRESHOLDS:
            hits = sum(1 for row in best if row and max(row[:k]) >= t)
            out[f"R{k}@{t}"] = hits / n if n else 0.0
    out["mIoU"] = sum(row[0] if row else 0.0 for row in best) / n if n else 0.0
    return out


def score_videomind(pairs: Iterable[tuple[Sample, Prediction]],
                    unit: float = VIDEOMIND_DEFAULT_UNIT) -> ProtocolScores:
    """The VideoMind protocol. The duration is the annotated one, else the prediction's
    (probed) one; a sample with neither is a miss."""
    best_rows: list[list[float]] = []
    per_sample: dict[str, dict[str, Any]] = {}
    failed = 0
    for sample, pred in pairs:
        duration = sample.duration if sample.duration is not None else pred.duration
        if duration is None:
            spans, ok = [], False
            row = [0.0]
        else:
            spans, ok = videomind_postprocess(pred.spans, duration, unit)
            row = videomind_sample(sample.spans, spans)
        failed += not ok
        best_rows.append(row)
        per_sample[sample.id] = {"iou": row[0], "pred": [list(s) for s in spans]}
    return ProtocolScores("videomind", videomind_summary(best_rows), len(best_rows), failed,
                          per_sample)


# ------------------------------------------------------------------------------ QVHighlights


def qvh_paired_iou(a: Pair, b: Pair) -> float:
    """``compute_temporal_iou_batch_paired``: the union is ``max(ends) - min(starts)`` ("not the
    correct union though", says the reference; equal to it whenever the windows overlap) and a
    zero union gives 0."""
    if a[1] < a[0] or b[1] < b[0]:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union != 0 else 0.0


def qvh_cross_iou(a: Pair, b: Pair) -> float:
    """``compute_temporal_iou_batch_cross``: ``inter / (len_a + len_b - inter)``; 0 for a
    reversed window or a zero union (where the reference would give nan or a negative area)."""
    if a[1] < a[0] or b[1] < b[0]:
        return 0.0
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = (a[1] - a[0]) + (b[1] - b[0]) - inter
    return inter / union if union > 0 else 0.0


def qvh_r1_iou(pred_spans: Sequence[Pair], gt_windows: Sequence[Pair]) -> float:
    """``compute_mr_r1`` for one query: the first predicted window against the ground-truth
    window with the highest cross IoU (the first of equals, as ``np.argmax``)."""
    if not pred_spans or not gt_windows:
        return 0.0
    first = pred_spans[0]
    ious = [qvh_cross_iou(first, g) for g in gt_windows]
    best = max(range(len(ious)), key=lambda i: (ious[i], -i))
    return qvh_paired_iou(first, gt_windows[best])


def qvh_average_precision(gt_windows: Sequence[Pair], pred_windows: Sequence[Pair],
                          scores: Sequence[float],
                          thresholds: Sequence[float] = QVH_AP_THRESHOLDS) -> list[float]:
    """MMAction2's ``compute_average_precision_detection`` (moment_detr standalone_eval/utils.py)
    for one query: AP at each IoU threshold.

    Predictions are sorted by decreasing score (stable), each is matched to the still unmatched
    ground-truth window it overlaps most (ties: the later window first, as
    ``argsort()[::-1]``) when that IoU reaches the threshold; AP is the VOC-interpolated area
    under the precision/recall steps. No prediction gives zeros.
    """
    if not pred_windows:
        return [0.0] * len(thresholds)
    num_gts = len(gt_windows)
    if num_gts == 0:
        return [0.0] * len(thresholds)
    order = sorted(range(len(pred_windows)), key=lambda i: -scores[i])
    aps = []
    for threshold in thresholds:
        locked = [False] * num_gts
        tp: list[int] = []
        for idx in order:
            ious = [qvh_cross_iou(pred_windows[idx], g) for g in gt_windows]
            ranked = sorted(range(num_gts), key=lambda j: (ious[j], j), reverse=True)
            hit = 0
            for j in ranked:
                if ious[j] < threshold:
                    break
                if locked[j]:
                    continue
                locked[j] = True
                hit = 1
                break
            tp.append(hit)
        aps.append(_interpolated_ap(tp, num_gts))
    return aps


def _interpolated_ap(tp: Sequence[int], num_gts: int) -> float:
    """VOC 2011 interpolated AP from the true-positive flags of score-ordered predictions."""
    precision, recall = [], []
    hits = 0
    for i, flag in enumerate(tp, start=1):
        hits += flag
        precision.append(hits / i)
        recall.append(hits / num_gts)
    mprec = [0.0, *precision, 0.0]
    mrec = [0.0, *recall, 1.0]
    for i in range(len(mprec) - 2, -1, -1):
        mprec[i] = max(mprec[i], mprec[i + 1])
    return sum((mrec[i] - mrec[i - 1]) * mprec[i]
               for i in range(1, len(mrec)) if mrec[i] != mrec[i - 1])


def qvh_windows(pred: Prediction) -> tuple[list[Pair], list[float]]:
    """At most 10 windows in the order given (``pred_relevant_windows[:10]``) with their
    scores; without scores, the order is the ranking (first = most confident)."""
    windows = list(pred.spans[:QVH_MAX_PRED_WINDOWS])
    given = list(pred.scores[:len(windows)])
    if len(given) == len(windows) and all(s is not None for s in given):
        scores = [float(s) for s in given]  # type: ignore[arg-type]
    else:
        scores = [float(len(windows) - i) for i in range(len(windows))]
    return windows, scores


def score_qvhighlights(pairs: Iterable[tuple[Sample, Prediction]]) -> ProtocolScores:
    """The QVHighlights moment-retrieval protocol: ``R1@0.5``, ``R1@0.7``, ``mAP`` (average
    over 0.5:0.05:0.95), ``mAP@0.5``, ``mAP@0.75`` (the "full" length range)."""
    r1: list[float] = []
    ap_rows: list[list[float]] = []
    per_sample: dict[str, dict[str, Any]] = {}
    failed = 0
    for sample, pred in pairs:
        windows, scores = qvh_windows(pred)
        failed += not windows
        iou = qvh_r1_iou(windows, sample.spans)
        aps = qvh_average_precision(sample.spans, windows, scores)
        r1.append(iou)
        ap_rows.append(aps)
        per_sample[sample.id] = {"iou": iou, "ap": sum(aps) / len(aps)}
    n = len(r1)
    metrics = {f"R1@{t}": (sum(1 for v in r1 if v >= t) / n if n else 0.0)
               for t in QVH_R1_THRESHOLDS}
    per_threshold = [sum(row[i] for row in ap_rows) / n if n else 0.0
                     for i in range(len(QVH_AP_THRESHOLDS))]
    metrics["mAP"] = sum(per_threshold) / len(per_threshold)
    metrics["mAP@0.5"] = per_threshold[QVH_AP_THRESHOLDS.index(0.5)]
    metrics["mAP@0.75"] = per_threshold[QVH_AP_THRESHOLDS.index(0.75)]
    return ProtocolScores("qvhighlights", metrics, n, failed, per_sample)


# ----------------------------------------------------------------------------------- entry


def score(protocol: str, pairs: Sequence[tuple[Sample, Prediction]], *,
          dataset: str | None = None) -> ProtocolScores:
    """Scores of ``protocol`` (``timelens``, ``videomind`` or ``qvhighlights``)."""
    if protocol == "timelens":
        return score_timelens(pairs)
    if protocol == "videomind":
        return score_videomind(pairs, videomind_unit(dataset))
    if protocol == "qvhighlights":
        return score_qvhighlights(pairs)
    raise ValueError(f"unknown metric protocol {protocol!r}; use one of {', '.join(PROTOCOLS)}")


#: The columns each protocol's table shows, in order.
TABLE_COLUMNS = {
    "timelens": ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU"),
    "videomind": ("R1@0.3", "R1@0.5", "R1@0.7", "mIoU", "R5@0.5", "R5@0.7"),
    "qvhighlights": ("R1@0.5", "R1@0.7", "mAP", "mAP@0.5", "mAP@0.75"),
}
