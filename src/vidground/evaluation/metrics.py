"""Grounding metrics, each reproducing one published evaluation protocol, digit for digit.

Numbers are only comparable with a paper's when they are computed the way the paper's code
computes them: edge cases, dtype and rounding included. Each function below names the reference
file it reproduces (``REFERENCES`` holds the commit read) and writes down what that code does
with the awkward inputs. ``tests/test_eval_reference.py`` runs the reference functions
themselves (copied verbatim, credited) against these on prediction sets full of edge cases.

``timelens``
    TencentARC/TimeLens, ``evaluation/compute_metrics.py`` with ``iou`` (``timelens/utils.py``)
    and the rounding of ``evaluation/eval_dataloader.py``. The first predicted span against the
    (one) ground-truth span; IoU is ``max(min(ends) - max(starts), 0) / (max(ends) -
    min(starts))``; thresholds are ``>=``; no parsed span counts IoU 0 (the reference
    substitutes ``(-100, -100)``); a reversed or empty prediction (start >= end) gets IoU 0 from
    that same formula. Our predictions are first rounded to the dataset's ``UNIT`` as
    eval_dataloader.py stores them; TimeLens' datasets define none, so the script's default,
    whole seconds, applies (Python ``round``: halves go to the even number). A TimeLens dump is
    scored as written (it was rounded when it was made). compute_metrics.py keys predictions by
    ``video>>>query>>>span`` in one dict: samples with the same video, query *and* span count
    once (the last one), as there.
``videomind``
    yeliudev/VideoMind, ``videomind/eval/eval_auto.py`` (the Moment-DETR style R@k table) with
    the post-processing of ``videomind/eval/infer_auto.py``, in **float32** as VideoMind's torch
    code computes it: predictions clamped to ``[0, duration]``, rounded to the dataset's
    ``UNIT`` (Charades-STA 0.1 s, ActivityNet 0.01 s, QVHighlights 2 s, else 0.001 s) with
    ``torch.round(pred / unit).long() * unit``, reversed spans put back with ``roll(1)``; an
    answer with no span falls back to the whole video ``[0, duration]`` (the reference's
    "grounder failed" case, counted in ``failed``). IoU is nncore's ``inter / (len_a + len_b -
    inter)`` on float32 tensors, 0 where that is not finite; ``R{k}@t`` asks whether any of the
    first ``k`` predictions reaches IoU ``>= t`` (compared in float32) with any ground-truth
    span; ``mIoU`` is the first prediction's best IoU. So a prediction exactly at a threshold in
    decimal (truth [0, 3.4], prediction [0, 1.7]: IoU 0.49999997) misses, as there. numpy's
    float32 gives the same bits as torch's here (checked against torch in the tests).
``qvhighlights``
    jayleicn/moment_detr, ``standalone_eval/eval.py`` (``compute_mr_r1``, ``compute_mr_ap``) and
    ``standalone_eval/utils.py`` (from MMAction2); line/lighthouse's copy computes the same
    "full" numbers (it keeps only ground-truth windows of length in (0, 1500]). R1@t: the first
    window against the ground-truth window it overlaps most; mAP: at most 10 windows, sorted by
    score, greedily matched to unmatched ground truth, VOC-interpolated AP at IoU
    0.5:0.05:0.95, averaged over queries and then thresholds. Reproduced with the reference's
    numpy arithmetic, its quirks included: a reversed window as long as a ground-truth window
    (or a zero-length window against a zero-length one) has IoU 0/0 = NaN, which numpy's
    ``argsort`` puts first and ``NaN < threshold`` never rejects, so it is a true positive at
    every threshold. A query with no predicted window is left out of mAP (the reference never
    sees it) and scores IoU 0 in R1 (where the reference crashes). ``mAP_strict`` is our second
    figure, clearly not the reference's: degenerate windows (reversed or zero-length) overlap
    nothing and a query with no window has AP 0, every query counted.

Scores are fractions in [0, 1]; the report prints them as percentages, like the papers.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .records import TIMELENS_DUMP, Pair, Prediction, Sample

#: The reference code each protocol reproduces, and the commit it was read at.
REFERENCES = {
    "timelens": "TencentARC/TimeLens evaluation/compute_metrics.py + eval_dataloader.py "
                "@ 5d90c067 (2026-04-21)",
    "videomind": "yeliudev/VideoMind videomind/eval/eval_auto.py + infer_auto.py @ 6721d256 "
                 "(2026-02-08), nncore 0.4.7 temporal_iou",
    "qvhighlights": "jayleicn/moment_detr standalone_eval/eval.py + utils.py @ b7e553ac "
                    "(2026-03-08)",
}

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

_F32 = np.float32


@dataclass
class ProtocolScores:
    """One protocol's scores over a set of samples, and what each sample contributed.

    ``counts`` holds what a reader needs to know about the edge cases met (samples merged,
    left out, or without a duration), by name."""

    protocol: str
    metrics: dict[str, float]
    n: int
    failed: int = 0
    per_sample: dict[str, dict[str, Any]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"protocol": self.protocol, "reference": REFERENCES[self.protocol], "n": self.n,
                "failed": self.failed, **self.counts, "metrics": dict(self.metrics)}


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
    if union == 0:
        return 0.0
    return max(inter, 0) / union


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


def timelens_key(sample: Sample) -> tuple[str, str, Pair | None]:
    """What compute_metrics.py keys a prediction by: video, query and ground-truth span."""
    return (sample.video, sample.query, sample.spans[0] if sample.spans else None)


def score_timelens(pairs: Iterable[tuple[Sample, Prediction]],
                   unit: float | None = TIMELENS_UNIT) -> ProtocolScores:
    """The TimeLens protocol over (sample, prediction) pairs; pairs whose sample has the same
    video, query and span as an earlier one replace it (compute_metrics.py's dict)."""
    kept: dict[tuple[str, str, Pair | None], tuple[Sample, Prediction]] = {}
    total = 0
    for sample, pred in pairs:
        total += 1
        kept[timelens_key(sample)] = (sample, pred)
    ious: list[float] = []
    per_sample: dict[str, dict[str, Any]] = {}
    failed = 0
    for sample, pred in kept.values():
        rounding = None if pred.source == TIMELENS_DUMP else unit
        value = timelens_sample_iou(sample.spans, pred.spans, rounding)
        failed += not pred.spans
        ious.append(value)
        per_sample[sample.id] = {"iou": value}
    return ProtocolScores("timelens", timelens_summary(ious), len(ious), failed, per_sample,
                          {"merged_duplicates": total - len(kept)})


# --------------------------------------------------------------------------------- VideoMind


def videomind_unit(dataset: str | None) -> float:
    """The ``UNIT`` VideoMind rounds predictions to for this dataset."""
    return VIDEOMIND_UNITS.get(dataset or "", VIDEOMIND_DEFAULT_UNIT)


def videomind_postprocess(pred_spans: Sequence[Pair], duration: float,
                          unit: float = VIDEOMIND_DEFAULT_UNIT) -> tuple[list[Pair], bool]:
    """Predictions as VideoMind's infer_auto.py stores them, and whether the grounder
    succeeded. In float32, as its torch code runs: ``pred.clamp(min=0, max=duration)``,
    ``torch.round(pred / unit).long() * unit``, then reversed spans put back with
    ``pred[inds] = pred[inds].roll(1)``; no span gives ``[(0, duration)]`` and ``False``.

    ``roll(1)`` without a dimension rolls the flattened rows: one reversed span is swapped, but
    several reversed spans trade ends with each other (``[[8, 2], [6, 4]] -> [[4, 8], [2, 6]]``).
    That is what the reference does, so it is what this does.

    >>> videomind_postprocess([(5.15, 9.0)], 30.0, 0.1)[0]   # float32: 51.500001 -> 52
    [(5.200000286102295, 9.0)]
    """
    if not pred_spans:
        return [(0.0, float(duration))], False
    pred = np.asarray(pred_spans, dtype=_F32).reshape(-1, 2)
    pred = np.minimum(np.maximum(pred, _F32(0)), _F32(duration))
    pred = np.round(pred / _F32(unit)).astype(np.int64).astype(_F32) * _F32(unit)
    reversed_rows = np.nonzero(pred[:, 1] - pred[:, 0] < 0)[0]
    if reversed_rows.size:
        pred[reversed_rows] = np.roll(pred[reversed_rows], 1)
    return [(float(s), float(e)) for s, e in pred.tolist()], True


def videomind_ious(pred_spans: Sequence[Pair], gt_spans: Sequence[Pair]) -> np.ndarray:
    """nncore's ``temporal_iou`` on float32 tensors, ``(N, M)``, with VideoMind's
    ``torch.where(iou.isfinite(), iou, 0)``."""
    p = np.asarray(pred_spans, dtype=_F32).reshape(-1, 2)
    g = np.asarray(gt_spans, dtype=_F32).reshape(-1, 2)
    area1 = p[:, 1] - p[:, 0]
    area2 = g[:, 1] - g[:, 0]
    start = np.maximum(p[:, None, 0], g[:, 0])
    end = np.minimum(p[:, None, 1], g[:, 1])
    inter = np.maximum(end - start, _F32(0))
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = inter / (area1[:, None] + area2 - inter)
    return np.where(np.isfinite(iou), iou, _F32(0)).astype(_F32)


def videomind_iou(pred: Pair, gt: Pair) -> float:
    """One float32 IoU (see :func:`videomind_ious`), as a Python float."""
    return float(videomind_ious([pred], [gt])[0, 0])


def videomind_sample(gt_spans: Sequence[Pair], pred_spans: Sequence[Pair]) -> list[float]:
    """For each prediction (in order), its best IoU over the ground-truth spans (float32
    values, as Python floats: exact)."""
    if not pred_spans or not gt_spans:
        return [0.0] * max(1, len(pred_spans))
    return [float(v) for v in videomind_ious(pred_spans, gt_spans).max(axis=1)]


def videomind_summary(best: Sequence[Sequence[float]]) -> dict[str, float]:
    """``R{k}@t`` for k in 1, 3, 5 and t in 0.3, 0.5, 0.7 (``iou[:k].max() >= t`` in float32,
    as torch compares a float32 tensor with a Python number), and ``mIoU`` (first
    prediction's ``.item()``, summed in Python)."""
    n = len(best)
    out: dict[str, float] = {}
    for k in VIDEOMIND_TOP_K:
        for t in VIDEOMIND_THRESHOLDS:
            hits = sum(1 for row in best if row and _F32(max(row[:k])) >= _F32(t))
            out[f"R{k}@{t}"] = hits / n if n else 0.0
    total = 0.0
    for row in best:
        total += row[0] if row else 0.0
    out["mIoU"] = total / n if n else 0.0
    return out


def score_videomind(pairs: Iterable[tuple[Sample, Prediction]],
                    unit: float = VIDEOMIND_DEFAULT_UNIT) -> ProtocolScores:
    """The VideoMind protocol. The duration is the annotated one, else the prediction's
    (probed) one. A sample with neither is a miss (the reference would probe its video, which
    scoring cannot): they are counted in ``counts["missing_duration"]``, and ``vidground eval
    score`` refuses to print VideoMind figures while any is missing."""
    best_rows: list[list[float]] = []
    per_sample: dict[str, dict[str, Any]] = {}
    failed = missing = 0
    for sample, pred in pairs:
        duration = sample.duration if sample.duration is not None else pred.duration
        spans: list[Pair]
        if duration is None:
            spans, ok = [], False
            row = [0.0]
            missing += 1
        else:
            spans, ok = videomind_postprocess(pred.spans, duration, unit)
            row = videomind_sample(sample.spans, spans)
        failed += not ok
        best_rows.append(row)
        per_sample[sample.id] = {"iou": row[0], "pred": [list(s) for s in spans]}
    return ProtocolScores("videomind", videomind_summary(best_rows), len(best_rows), failed,
                          per_sample, {"missing_duration": missing})


# ------------------------------------------------------------------------------ QVHighlights


def qvh_paired_iou(a: Pair, b: Pair) -> float:
    """``compute_temporal_iou_batch_paired`` for one pair: the union is ``max(ends) -
    min(starts)`` ("not the correct union though", says the reference; equal to it whenever
    the windows overlap) and a zero union gives 0. A reversed window's intersection is 0."""
    inter = max(0.0, min(a[1], b[1]) - max(a[0], b[0]))
    union = max(a[1], b[1]) - min(a[0], b[0])
    return inter / union if union != 0 else 0.0


def qvh_cross_ious(pred: Pair, gt_windows: Sequence[Pair], *, strict: bool = False
                   ) -> np.ndarray:
    """``compute_temporal_iou_batch_cross`` of one window against the ground truth, in numpy
    float64 as the reference: ``inter / (len_a + len_b - inter)``, NaN where that is 0/0 and
    -0.0 or 0 for a reversed window. ``strict``: degenerate windows (reversed or zero-length,
    on either side) and non-positive unions give 0."""
    p = np.asarray([pred], dtype=float)
    g = np.asarray(gt_windows, dtype=float).reshape(-1, 2)
    areas1 = p[:, 1] - p[:, 0]
    areas2 = g[:, 1] - g[:, 0]
    left = np.maximum(p[:, None, 0], g[None, :, 0])
    right = np.minimum(p[:, None, 1], g[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[:, None] + areas2[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = (inter / union)[0]
    if strict:
        valid = (areas1[0] > 0) & (areas2 > 0) & (union[0] > 0)
        iou = np.where(valid, iou, 0.0)
    return iou


def qvh_r1_iou(pred_spans: Sequence[Pair], gt_windows: Sequence[Pair]) -> float:
    """``compute_mr_r1`` for one query: the first predicted window against the ground-truth
    window with the highest cross IoU (``np.argmax``: the first of equals, the first NaN
    before anything); 0 with no predicted window (the reference raises ``IndexError``)."""
    if not pred_spans or not gt_windows:
        return 0.0
    first = (float(pred_spans[0][0]), float(pred_spans[0][1]))
    best = int(np.argmax(qvh_cross_ious(first, gt_windows)))
    return qvh_paired_iou(first, gt_windows[best])


def qvh_average_precision(gt_windows: Sequence[Pair], pred_windows: Sequence[Pair],
                          scores: Sequence[float],
                          thresholds: Sequence[float] = QVH_AP_THRESHOLDS, *,
                          strict: bool = False) -> list[float]:
    """MMAction2's ``compute_average_precision_detection`` (moment_detr standalone_eval/utils.py)
    for one query: AP at each IoU threshold.

    Predictions are sorted by decreasing score (Python's stable sort), each is matched to the
    still unmatched ground-truth window it overlaps most, in the order of numpy's
    ``tiou_arr.argsort()[::-1]`` (ties: the later window first; NaN first), when that IoU is
    not ``< threshold`` (so NaN matches); AP is the VOC-interpolated area under the
    precision/recall steps. No prediction gives zeros. ``strict`` uses
    :func:`qvh_cross_ious`' strict IoU (no NaN).
    """
    num_thresholds = len(thresholds)
    num_gts = len(gt_windows)
    if not pred_windows:
        return [0.0] * num_thresholds
    order = sorted(range(len(pred_windows)), key=lambda i: -scores[i])
    lock_gt = np.ones((num_thresholds, num_gts)) * -1
    tp = np.zeros((num_thresholds, len(order)))
    fp = np.zeros((num_thresholds, len(order)))
    for idx, i in enumerate(order):
        window = (float(pred_windows[i][0]), float(pred_windows[i][1]))
        tiou_arr = qvh_cross_ious(window, gt_windows, strict=strict) if num_gts else \
            np.zeros(0)
        ranked = tiou_arr.argsort()[::-1]
        for t_idx, threshold in enumerate(thresholds):
            for j in ranked:
                if tiou_arr[j] < threshold:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, j] >= 0:
                    continue
                tp[t_idx, idx] = 1
                lock_gt[t_idx, j] = idx
                break
            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1
    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        recall = tp_cumsum / float(num_gts)
    precision = tp_cumsum / (tp_cumsum + fp_cumsum)
    return [_interpolated_ap(precision[t], recall[t]) for t in range(num_thresholds)]


def _interpolated_ap(precision: np.ndarray, recall: np.ndarray) -> float:
    """VOC 2011 interpolated AP (``interpolated_precision_recall``), numpy as the reference."""
    mprecision = np.hstack([[0], precision, [0]])
    mrecall = np.hstack([[0], recall, [1]])
    for i in range(len(mprecision) - 1)[::-1]:
        mprecision[i] = max(mprecision[i], mprecision[i + 1])
    idx = np.where(mrecall[1::] != mrecall[0:-1])[0] + 1
    return float(np.sum((mrecall[idx] - mrecall[idx - 1]) * mprecision[idx]))


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


def _mean_ap(rows: Sequence[Sequence[float]]) -> list[float]:
    """``np.array(rows).mean(0)``: the AP at each threshold averaged over queries."""
    if not rows:
        return [0.0] * len(QVH_AP_THRESHOLDS)
    return [float(v) for v in np.array(rows).mean(0)]


def score_qvhighlights(pairs: Iterable[tuple[Sample, Prediction]]) -> ProtocolScores:
    """The QVHighlights moment-retrieval protocol: ``R1@0.5``, ``R1@0.7``, ``mAP`` (average
    over 0.5:0.05:0.95), ``mAP@0.5``, ``mAP@0.75`` (the "full" length range) as the reference
    computes them, and ``mAP_strict`` (see the module docstring)."""
    r1: list[float] = []
    ap_rows: list[list[float]] = []
    strict_rows: list[list[float]] = []
    per_sample: dict[str, dict[str, Any]] = {}
    failed = 0
    for sample, pred in pairs:
        windows, scores = qvh_windows(pred)
        failed += not windows
        iou = qvh_r1_iou(windows, sample.spans)
        strict = qvh_average_precision(sample.spans, windows, scores, strict=True)
        r1.append(iou)
        strict_rows.append(strict)
        row: dict[str, Any] = {"iou": iou, "ap_strict": sum(strict) / len(strict)}
        if windows:
            aps = qvh_average_precision(sample.spans, windows, scores)
            ap_rows.append(aps)
            row["ap"] = sum(aps) / len(aps)
        per_sample[sample.id] = row
    n = len(r1)
    r1_array = np.array(r1, dtype=float)
    metrics = {f"R1@{t}": (float(np.mean(r1_array >= t)) if n else 0.0)
               for t in QVH_R1_THRESHOLDS}
    per_threshold = _mean_ap(ap_rows)
    metrics["mAP"] = float(np.mean(per_threshold))
    metrics["mAP@0.5"] = per_threshold[QVH_AP_THRESHOLDS.index(0.5)]
    metrics["mAP@0.75"] = per_threshold[QVH_AP_THRESHOLDS.index(0.75)]
    metrics["mAP_strict"] = float(np.mean(_mean_ap(strict_rows)))
    return ProtocolScores("qvhighlights", metrics, n, failed, per_sample,
                          {"map_queries": len(ap_rows), "no_window": n - len(ap_rows)})


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
    "qvhighlights": ("R1@0.5", "R1@0.7", "mAP", "mAP@0.5", "mAP@0.75", "mAP_strict"),
}
