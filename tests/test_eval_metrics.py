"""The metric protocols: hand-computed cases for every edge case the protocols name, and random
cases checked against the reference formulas as the reference code writes them (TimeLens'
``iou``, nncore's ``temporal_iou`` in torch, moment_detr's numpy AP and R1, torch's ``roll``,
qwen-vl-utils' ``smart_nframes``)."""

from __future__ import annotations

import random

import numpy as np
import pytest

from vidground.evaluation.metrics import (
    QVH_AP_THRESHOLDS,
    qvh_average_precision,
    qvh_r1_iou,
    score_qvhighlights,
    score_timelens,
    score_videomind,
    timelens_iou,
    timelens_sample_iou,
    timelens_summary,
    videomind_iou,
    videomind_postprocess,
    videomind_sample,
    videomind_unit,
)
from vidground.evaluation.protocols import extract_time, linspace_indices, smart_nframes
from vidground.evaluation.records import Prediction, Sample


def sample(spans, duration=None, sid="s"):
    return Sample(sid, f"v-{sid}", "q", tuple(spans), duration)


def pred(spans, scores=(), sid="s", duration=None):
    return Prediction(sid, tuple(spans), tuple(scores), duration=duration)


# ----------------------------------------------------------------------------- TimeLens


def test_timelens_iou_hand_cases() -> None:
    assert timelens_iou((0, 10), (5, 15)) == pytest.approx(5 / 15)
    assert timelens_iou((0, 10), (0, 10)) == 1.0
    assert timelens_iou((0, 10), (20, 30)) == 0.0            # disjoint
    assert timelens_iou((0, 10), (8, 2)) == 0.0              # reversed
    assert timelens_iou((0, 10), (3, 3)) == 0.0              # empty
    assert timelens_iou((5, 5), (5, 5)) == 0.0               # the reference divides by zero


def test_timelens_uses_the_first_span_rounded_to_whole_seconds() -> None:
    assert timelens_sample_iou([(0, 10)], [(50, 60), (0, 10)]) == 0.0   # first span only
    assert timelens_sample_iou([(1, 10)], [(1.4, 9.6)]) == 1.0          # -> (1, 10)
    assert timelens_sample_iou([(2, 4)], [(2.5, 3.5)]) == 1.0           # halves to even: (2, 4)
    assert timelens_sample_iou([(1, 10)], [(1.4, 9.6)], unit=None) == pytest.approx(8.2 / 9)
    assert timelens_sample_iou([(0, 10)], []) == 0.0                    # unparseable answer
    assert timelens_sample_iou([(0, 10), (20, 30)], [(20, 30)]) == 0.0  # first GT span only


def test_timelens_thresholds_are_inclusive() -> None:
    ious = [0.3, 0.5, 0.7, 0.0]
    summary = timelens_summary(ious)
    assert summary == {"R1@0.3": 0.75, "R1@0.5": 0.5, "R1@0.7": 0.25,
                       "mIoU": pytest.approx(1.5 / 4)}
    assert timelens_summary([]) == {"R1@0.3": 0.0, "R1@0.5": 0.0, "R1@0.7": 0.0, "mIoU": 0.0}


def test_score_timelens_counts_failures_as_zero() -> None:
    pairs = [(sample([(0, 10)], sid="a"), pred([(0, 10)], sid="a")),
             (sample([(0, 10)], sid="b"), pred([], sid="b")),
             (sample([(0, 10)], sid="c"), pred([(10, 0)], sid="c"))]
    result = score_timelens(pairs)
    assert result.n == 3 and result.failed == 1
    assert result.metrics["R1@0.7"] == pytest.approx(1 / 3)
    assert result.metrics["mIoU"] == pytest.approx(1 / 3)
    assert result.per_sample["b"]["iou"] == 0.0


def reference_timelens_iou(a, b):
    """timelens/utils.py iou(), as written."""
    max0 = max((a[0]), (b[0]))
    min0 = min((a[0]), (b[0]))
    max1 = max((a[1]), (b[1]))
    min1 = min((a[1]), (b[1]))
    return max(min1 - max0, 0) / (max1 - min0)


def test_timelens_iou_equals_the_reference_formula() -> None:
    rng = random.Random(7)
    for _ in range(2000):
        gt = sorted(rng.uniform(0, 60) for _ in range(2))
        p = (rng.uniform(-5, 70), rng.uniform(-5, 70))  # reversed ones included
        if gt[1] - gt[0] < 1e-9:
            continue
        assert timelens_iou(tuple(gt), p) == pytest.approx(reference_timelens_iou(gt, p))


def test_extract_time_reads_answers_like_timelens() -> None:
    assert extract_time("The event happens in 12.5 - 18.0 seconds.") == [(12.5, 18.0)]
    assert extract_time("The event happens in 3 - 7.5 seconds and 9 - 11") == [(3, 7.5), (9, 11)]
    assert extract_time("From 00:01:02.5 to 00:01:10") == [(62.5, 70.0)]
    # an odd clock time is dropped, and then every number counts, as in the reference
    assert extract_time("at 1:05 it starts") == [(1.0, 5.0)]
    assert extract_time("from 4 to 9 seconds") == [(4.0, 9.0)]
    assert extract_time("Starting time: 0.8 seconds. Ending time: 1.1") == [(0.8, 1.1)]
    assert extract_time("It ends at 20 - 10") == [(20.0, 10.0)]   # kept reversed
    assert extract_time("") == []
    assert extract_time("I cannot tell.") == []


# ----------------------------------------------------------------------------- VideoMind


def test_videomind_postprocess_clamps_rounds_and_swaps() -> None:
    assert videomind_postprocess([(-5, 12)], 10.0) == ([(0.0, 10.0)], True)
    spans, ok = videomind_postprocess([(8, 2)], 10.0)
    assert spans == [(2.0, 8.0)] and ok
    spans, _ = videomind_postprocess([(1.04, 2.06)], 10.0, unit=0.1)
    assert spans == [pytest.approx((1.0, 2.1))]
    assert videomind_postprocess([], 20.0) == ([(0.0, 20.0)], False)   # grounder failed


def test_videomind_swap_reproduces_torch_roll_on_several_reversed_spans() -> None:
    torch = pytest.importorskip("torch")
    rows = [[1.0, 3.0], [8.0, 2.0], [5.0, 6.0], [6.0, 4.0], [9.0, 7.0]]
    reference = torch.tensor(rows)
    inds = (reference[:, 1] - reference[:, 0] < 0).nonzero()[:, 0]
    reference[inds] = reference[inds].roll(1)
    spans, _ = videomind_postprocess([tuple(r) for r in rows], 100.0, unit=0.001)
    assert [v for s in spans for v in s] == pytest.approx(reference.flatten().tolist())


def test_videomind_units_per_dataset() -> None:
    assert videomind_unit("charades-sta") == 0.1
    assert videomind_unit("activitynet") == 0.01
    assert videomind_unit("qvhighlights") == 2.0
    assert videomind_unit("jsonl") == 0.001


def test_videomind_best_over_ground_truth_and_r_at_5() -> None:
    assert videomind_sample([(0, 2), (5, 9)], [(5, 9)]) == [1.0]
    preds = [(20, 21), (22, 23), (24, 25), (26, 27), (0, 10)]
    pairs = [(sample([(0, 10)], duration=30.0), pred(preds))]
    result = score_videomind(pairs, unit=0.001)
    assert result.metrics["R1@0.5"] == 0.0
    assert result.metrics["R3@0.5"] == 0.0
    assert result.metrics["R5@0.5"] == 1.0
    assert result.metrics["mIoU"] == 0.0        # the first prediction's IoU


def test_videomind_failed_answer_falls_back_to_the_whole_video() -> None:
    pairs = [(sample([(0, 10)], duration=20.0, sid="a"), pred([], sid="a"))]
    result = score_videomind(pairs)
    assert result.failed == 1
    assert result.metrics["mIoU"] == pytest.approx(0.5)
    assert result.metrics["R1@0.5"] == 1.0
    # no duration anywhere: a miss
    result = score_videomind([(sample([(0, 10)]), pred([(0, 10)]))])
    assert result.metrics["mIoU"] == 0.0 and result.failed == 1
    # the prediction's (probed) duration is used when the annotation has none
    result = score_videomind([(sample([(0, 10)]), pred([(0, 12)], duration=10.0))])
    assert result.metrics["mIoU"] == 1.0


def test_videomind_iou_equals_nncore_in_torch() -> None:
    torch = pytest.importorskip("torch")
    rng = random.Random(3)
    for _ in range(300):
        preds = torch.tensor([sorted(rng.uniform(0, 50) for _ in range(2)) for _ in range(5)])
        gts = torch.tensor([sorted(rng.uniform(0, 50) for _ in range(2)) for _ in range(3)])
        area1 = preds[:, 1] - preds[:, 0]
        area2 = gts[:, 1] - gts[:, 0]
        s = torch.max(preds[:, None, 0], gts[:, 0])
        e = torch.min(preds[:, None, 1], gts[:, 1])
        inter = (e - s).clamp(0)
        iou = inter / (area1[:, None] + area2 - inter)
        iou = torch.where(iou.isfinite(), iou, 0)
        ours = videomind_sample([tuple(g) for g in gts.tolist()],
                                [tuple(p) for p in preds.tolist()])
        assert ours == pytest.approx(iou.max(dim=1).values.tolist(), abs=1e-5)
    assert videomind_iou((3, 3), (3, 3)) == 0.0   # 0/0 -> 0, as torch.where(isfinite)


# ----------------------------------------------------------------------------- QVHighlights


def test_qvh_r1_takes_the_best_overlapping_window() -> None:
    assert qvh_r1_iou([(21, 30)], [(0, 10), (20, 30)]) == pytest.approx(0.9)
    assert qvh_r1_iou([(21, 30), (0, 10)], [(0, 10)]) == 0.0   # only the first window
    assert qvh_r1_iou([], [(0, 10)]) == 0.0                   # nothing predicted
    assert qvh_r1_iou([(8, 2)], [(0, 10)]) == 0.0             # reversed


def test_qvh_average_precision_hand_cases() -> None:
    ones = [1.0] * len(QVH_AP_THRESHOLDS)
    gts = [(0, 10), (20, 30)]
    assert qvh_average_precision(gts, [(0, 10), (20, 30)], [0.9, 0.8]) == ones
    # a duplicate cannot match the same window twice: recall stays 0.5
    assert qvh_average_precision(gts, [(0, 10), (0, 10)], [0.9, 0.8]) == [0.5] * 10
    # a wrong window ranked first halves the precision of the right one
    assert qvh_average_precision([(0, 10)], [(50, 60), (0, 10)], [0.9, 0.5]) == [0.5] * 10
    # ...unless its score puts it second
    assert qvh_average_precision([(0, 10)], [(50, 60), (0, 10)], [0.1, 0.5]) == ones
    # thresholds 0.5..0.95: IoU 0.8 passes the first seven
    aps = qvh_average_precision([(0, 10)], [(0, 8)], [1.0])
    assert aps == [1.0] * 7 + [0.0] * 3
    assert qvh_average_precision([(0, 10)], [], []) == [0.0] * 10


def test_qvh_scores_use_at_most_ten_windows_and_the_order_as_ranking() -> None:
    windows = [(100 + 2 * i, 101 + 2 * i) for i in range(10)] + [(0, 10)]
    result = score_qvhighlights([(sample([(0, 10)]), pred(windows))])
    assert result.metrics["mAP"] == 0.0               # the 11th window is never looked at
    result = score_qvhighlights([(sample([(0, 10)]), pred([(50, 60), (0, 10)]))])
    assert result.metrics["mAP"] == pytest.approx(0.5)  # without scores, first = most sure
    result = score_qvhighlights([(sample([(0, 10)]), pred([(50, 60), (0, 10)], [0.1, 0.9]))])
    assert result.metrics["mAP"] == 1.0
    assert result.metrics["R1@0.7"] == 0.0            # R1 takes the first window as listed


def reference_cross_iou(spans1, spans2):
    areas1 = spans1[:, 1] - spans1[:, 0]
    areas2 = spans2[:, 1] - spans2[:, 0]
    left = np.maximum(spans1[:, None, 0], spans2[None, :, 0])
    right = np.minimum(spans1[:, None, 1], spans2[None, :, 1])
    inter = np.clip(right - left, 0, None)
    union = areas1[:, None] + areas2[None, :] - inter
    return inter / union


def reference_ap(gt, preds, thresholds):
    """compute_average_precision_detection + interpolated_precision_recall, as written."""
    num_gts, num_preds = len(gt), len(preds)
    ap = np.zeros(len(thresholds))
    if num_preds == 0:
        return ap
    lock_gt = np.ones((len(thresholds), num_gts)) * -1
    preds = sorted(preds, key=lambda x: -x[2])
    tp = np.zeros((len(thresholds), num_preds))
    fp = np.zeros((len(thresholds), num_preds))
    for idx, p in enumerate(preds):
        tiou_arr = reference_cross_iou(np.array([p[:2]]), np.array(gt))[0].reshape(-1)
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for t_idx, thr in enumerate(thresholds):
            for j_idx in tiou_sorted_idx:
                if tiou_arr[j_idx] < thr:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, j_idx] >= 0:
                    continue
                tp[t_idx, idx] = 1
                lock_gt[t_idx, j_idx] = idx
                break
            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1
    tp_c = np.cumsum(tp, axis=1).astype(float)
    fp_c = np.cumsum(fp, axis=1).astype(float)
    rec = tp_c / num_gts
    prec = tp_c / (tp_c + fp_c)
    for t_idx in range(len(thresholds)):
        mp = np.hstack([[0], prec[t_idx], [0]])
        mr = np.hstack([[0], rec[t_idx], [1]])
        for i in range(len(mp) - 1)[::-1]:
            mp[i] = max(mp[i], mp[i + 1])
        ids = np.where(mr[1::] != mr[0:-1])[0] + 1
        ap[t_idx] = np.sum((mr[ids] - mr[ids - 1]) * mp[ids])
    return ap


def test_qvh_metrics_equal_the_reference_formulas_on_random_queries() -> None:
    rng = random.Random(11)
    thresholds = [float(f"{e:.2f}") for e in np.linspace(0.5, 0.95, 10)]
    assert tuple(thresholds) == QVH_AP_THRESHOLDS
    for _ in range(300):
        gts = []
        for _ in range(rng.randint(1, 4)):
            s = rng.randrange(0, 140, 2)
            gts.append((float(s), float(s + rng.randrange(2, 30, 2))))
        preds = []
        for _ in range(rng.randint(1, 10)):
            s = rng.choice([g[0] for g in gts] + [rng.uniform(0, 140)])
            preds.append((s, s + rng.uniform(1, 30), round(rng.random(), 3)))
        ours = qvh_average_precision(gts, [p[:2] for p in preds], [p[2] for p in preds])
        assert ours == pytest.approx(reference_ap(gts, preds, thresholds).tolist())
        # compute_mr_r1: argmax of the cross IoU, then the paired IoU
        first = np.array([preds[0][:2]])
        best = int(np.argmax(reference_cross_iou(first, np.array(gts))[0]))
        g = gts[best]
        inter = max(0, min(first[0, 1], g[1]) - max(first[0, 0], g[0]))
        union = max(first[0, 1], g[1]) - min(first[0, 0], g[0])
        assert qvh_r1_iou([p[:2] for p in preds], gts) == pytest.approx(inter / union)


# ---------------------------------------------------------------------- TimeLens sampling


def test_timelens_frame_count_and_indices_match_qwen_vl_utils() -> None:
    vision = pytest.importorskip("qwen_vl_utils.vision_process")
    torch = pytest.importorskip("torch")
    for total, fps in [(30, 30.0), (750, 25.0), (900, 29.97), (5, 25.0), (60000, 30.0),
                       (241, 24.0), (3, 30.0), (1001, 23.976)]:
        theirs = vision.smart_nframes({"fps": 2.0}, total_frames=total, video_fps=fps)
        assert smart_nframes(total, fps) == theirs, (total, fps)
        idx = torch.linspace(0, total - 1, theirs).round().long().tolist()
        assert linspace_indices(total, theirs) == idx, (total, fps)


@pytest.mark.parametrize(("name", "rate"), [("timelens", 32), ("timelens-legacy", 28)])
def test_timelens_frame_size_matches_qwen_vl_utils_fetch_video(name: str, rate: int) -> None:
    """TimeLens' utils.py budgets ``min_tokens``/``total_tokens`` with ``downsample_rate`` 32
    (Qwen3-VL / TimeLens-8B, since d8db2908 of 2026-02-02) or 28 (the first release)."""
    vision = pytest.importorskip("qwen_vl_utils.vision_process")
    from vidground.evaluation.protocols import make_protocol
    from vidground.video.probe import VideoInfo

    proto = make_protocol(name)
    cases = [(480, 360, 30.0, 900), (854, 480, 25.0, 4500), (1920, 1080, 29.97, 60000),
             (320, 240, 24.0, 48), (854, 480, 30.0, 900)]
    for width, height, fps, frames in cases:
        info = VideoInfo(path="x.mp4", duration=frames / fps, fps=fps, frame_count=frames,
                         width=width, height=height, codec="h264", container="mp4")
        times, size = proto.frame_plan(info)  # type: ignore[attr-defined]
        n = len(times)
        # fetch_video with TimeLens' min_pixels / total_pixels and image_patch_size=16
        min_pixels = 64 * rate * rate
        total_pixels = 14336 * rate * rate
        max_pixels = max(min(768 * 32 * 32, total_pixels / n * 2), int(min_pixels * 1.05))
        h, w = vision.smart_resize(height, width, factor=32, min_pixels=min_pixels,
                                   max_pixels=max_pixels)
        assert size == (w, h), (width, height, n)
        assert times[0] == 0.0 and times[-1] == pytest.approx((frames - 1) / fps, abs=1 / fps)


def test_report_settings_hide_secrets() -> None:
    from vidground.evaluation.report import redact

    clean = redact({"openai_api_key": "sk-123", "api_key": None, "model": "m",
                    "job_store": "postgresql://bob:hunter2@db/jobs", "port": 7860})
    assert clean == {"openai_api_key": "***", "api_key": None, "model": "m",
                     "job_store": "postgresql://***@db/jobs", "port": 7860}
