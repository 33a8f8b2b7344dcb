# The reference functions are copied verbatim, so their style is theirs:
# ruff: noqa: E501, UP015, B905, SIM108
"""``vidground eval score`` against the reference scripts themselves, to the last digit.

Each reference function below is copied verbatim from the repository and commit named above it
(their licences: TimeLens BSD-3-Clause, VideoMind BSD-3-Clause, nncore MIT, moment_detr MIT);
where a script's ``__main__`` body is needed it is wrapped in a function, and every change is
said in a comment. Prediction sets are drawn at random with every edge case the protocols name
(thresholds met exactly in decimal, half-unit roundings, reversed, zero-length, empty, out of
range, repeated sentences, several reversed spans, NaN IoUs), written to files in the formats
the tools read and write, and scored by vidground through its library and its CLI. Done means
at most 1e-9 points of difference on every figure.
"""

from __future__ import annotations

import json
import os
import random
import re
import subprocess
import sys
from collections import defaultdict
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vidground.evaluation import score_predictions
from vidground.evaluation.loaders import read_annotations
from vidground.evaluation.protocols import linspace_indices

torch = pytest.importorskip("torch")

TOLERANCE = 1e-9  # points (the figures are percentages)


# =========================================================================================
# TencentARC/TimeLens @ 5d90c067246ddb11db3203adbb0085bdc48d9e5e (2026-04-21), BSD-3-Clause
# =========================================================================================

# timelens/utils.py, verbatim
def iou(a, b):
    max0 = max((a[0]), (b[0]))
    min0 = min((a[0]), (b[0]))
    max1 = max((a[1]), (b[1]))
    min1 = min((a[1]), (b[1]))
    return max(min1 - max0, 0) / (max1 - min0)


# timelens/utils.py, verbatim
def extract_time(paragraph):
    paragraph = paragraph.lower()

    timestamps = []

    # Check for HH:MM:SS and MM:SS formats FIRST (before checking individual numbers)
    # Also handle formats with optional milliseconds like MM:SS.xxx and HH:MM:SS.xx
    time_regex = re.compile(
        r"\b(\d{1,2}:\d{2}:\d{2}(?:\.\d+)?|\d{1,2}:\d{2}(?:\.\d+)?)\b"
    )
    time_matches = re.findall(time_regex, paragraph)
    time_matches = time_matches[: len(time_matches) // 2 * 2]

    if time_matches:
        # convert to seconds
        time_matches_converted = []
        for t in time_matches:
            parts = t.split(":")
            if len(parts) == 3:  # HH:MM:SS.xx format
                h, m = map(int, parts[:2])
                s = float(parts[2])
                time_in_sec = h * 3600 + m * 60 + s
            elif len(parts) == 2:  # MM:SS.xxx format
                m = int(parts[0])
                s = float(parts[1])
                time_in_sec = m * 60 + s
            time_matches_converted.append(float(time_in_sec))
        timestamps = [
            (time_matches_converted[i], time_matches_converted[i + 1])
            for i in range(0, len(time_matches_converted), 2)
        ]

    # Check for The given query happens in m - n (seconds)
    if len(timestamps) == 0:
        patterns = [
            r"(\d+\.?\d*)\s*-\s*(\d+\.?\d*)",  # 18.5 - 23.0
            r"(\d+\.?\d*)\s+to\s+(\d+\.?\d*)",  # 18.5 to 23.0
        ]
        for time_pattern in patterns:
            time_matches = re.findall(time_pattern, paragraph)
            if time_matches:
                timestamps = [(float(start), float(end)) for start, end in time_matches]
                break

    # Check for other formats e.g.:
    # 1. Starting time: 0.8 seconds. Ending time: 1.1 seconds
    # 2. The start time for this event is 0 seconds, and the end time is 12 seconds.
    if len(timestamps) == 0:
        time_regex = re.compile(r"\b(\d+\.\d+|\d+)\b")  # time formats (e.g., 18, 18.5)
        time_matches = re.findall(time_regex, paragraph)
        time_matches = time_matches[: len(time_matches) // 2 * 2]
        timestamps = [
            (float(time_matches[i]), float(time_matches[i + 1]))
            for i in range(0, len(time_matches), 2)
        ]

    timestamps = [(start, end) for start, end in timestamps]
    return timestamps


# evaluation/compute_metrics.py, verbatim
def read_jsonl_return_dict(file_path):
    """Read JSONL file and merge into a single dictionary"""
    data = {}
    with open(file_path, "r") as reader:
        for line in reader:
            item = json.loads(line)
            if isinstance(item, dict):
                data.update(item)
            else:
                raise ValueError("Each line in the JSONL file should be a dictionary.")
    return data


def timelens_compute_metrics(path: str) -> dict[str, float]:
    """evaluation/compute_metrics.py's ``__main__``, verbatim from ``datas = ...`` to the
    recall counts (prints dropped); returns the four numbers RESULT_STR formats."""
    datas = read_jsonl_return_dict(path)

    num_annos = len(datas)
    ious = []
    for key, pred in datas.items():
        video_id, query, gt_span = key.split(">>>")
        gt_span = eval(gt_span)

        if type(pred) is dict:
            if "timestamps" in pred:
                timestamps = pred["timestamps"]
            elif "answers" in pred:  # parse the raw answer
                timestamps = extract_time(pred["answers"])
            else:
                raise ValueError(f"Unexpected key in prediction: {pred}")
        else:
            raise ValueError(
                f"Unexpected type for prediction: {type(pred)}. Expected dict or str."
            )

        if len(timestamps) > 1:
            pass
        elif len(timestamps) == 0:
            timestamps = [(-100, -100)]

        timestamps = timestamps[0]  # only use the first pair of timestamps
        ious.append(iou(gt_span, timestamps))

    recall = {0.3: 0, 0.5: 0, 0.7: 0}
    for iou_threshold in [0.3, 0.5, 0.7]:
        for cur_iou in ious:
            if cur_iou >= iou_threshold:
                recall[iou_threshold] += 1

    return {"R1@0.3": recall[0.3] * 100 / num_annos, "R1@0.5": recall[0.5] * 100 / num_annos,
            "R1@0.7": recall[0.7] * 100 / num_annos, "mIoU": sum(ious) * 100 / num_annos}


def timelens_dump(anno: dict[str, Any], answers: str, timestamps: list) -> dict[str, Any]:
    """evaluation/eval_dataloader.py's loop body from ``# Parse the answer``, verbatim, with
    the answer already parsed into ``timestamps`` (prints dropped; ``dataset_class`` is a
    TimeLens-Bench class, which sets no UNIT)."""
    video_path = anno["video_path"]
    query = anno["query"]
    duration = anno["duration"]
    span = anno["span"]
    if len(timestamps) != 0:
        pass
    else:
        timestamps = [[duration + 10, duration + 20]]

    # Round timestamps to units
    unit = getattr(object, "UNIT", 1.0)
    timestamps = [
        [
            round(start / unit) * unit,
            round(end / unit) * unit,
        ]
        for start, end in timestamps
    ]

    # Save the inference results
    video_name = os.path.basename(video_path)
    if type(span[0]) is list or type(span[0]) is tuple:
        span = span[0]

    dump = {
        f"{video_name}>>>{query}>>>{span}": {
            "timestamps": timestamps,  # the extracted time span prediction from the model
            "answers": answers,  # the full answer from the model
            "duration": duration,  # save the video duration
        }
    }
    return dump


def parse_query(query):
    """timelens/dataset/timelens_data.py, verbatim."""
    return re.sub(r"\s+", " ", query).strip().strip(".").strip()


def timelens_load_annos(raw_annos: dict[str, Any]) -> list[dict[str, Any]]:
    """timelens/dataset/timelens_data.py ``ActivitynetTimeLensDataset.load_annos``, verbatim
    from the loop (the file already read; VIDEO_ROOT ``videos``)."""
    annos = []
    for vid, raw_anno in raw_annos.items():
        video_path = os.path.join("videos", vid + ".mp4")
        for span, query in zip(raw_anno["spans"], raw_anno["queries"]):
            anno = dict(
                source="ActivityNet-TimeLens",
                data_type="grounding",
                video_path=video_path,
                duration=raw_anno["duration"],
                query=parse_query(query),
                span=[span],
            )

            annos.append(anno)

    return annos


# =========================================================================================
# yeliudev/VideoMind @ 6721d2564eeb9ea8ab6c0ab8eaa39bd231ee8927 (2026-02-08), BSD-3-Clause,
# and nncore 0.4.7 (nncore/ops/temporal.py, MIT), which it calls
# =========================================================================================

# nncore/ops/temporal.py, verbatim (docstrings dropped)
def temporal_area(windows):
    return windows[:, 1] - windows[:, 0]


def temporal_intersection(windows1, windows2, aligned=False):
    if aligned:
        s = torch.max(windows1[:, 0], windows2[:, 0])
        e = torch.min(windows1[:, 1], windows2[:, 1])
    else:
        s = torch.max(windows1[:, None, 0], windows2[:, 0])
        e = torch.min(windows1[:, None, 1], windows2[:, 1])

    inter = (e - s).clamp(0)
    return inter


def temporal_iou(windows1, windows2, aligned=False):
    area1 = temporal_area(windows1)
    area2 = temporal_area(windows2)

    inter = temporal_intersection(windows1, windows2, aligned=aligned)

    if aligned:
        iou = inter / (area1 + area2 - inter)
    else:
        iou = inter / (area1[:, None] + area2 - inter)

    return iou


# videomind/eval/eval_auto.py, verbatim
def compute_iou(pred, span, conf, cgbench_mode, conf_thr):
    pred_tensor = torch.Tensor(pred)
    span_tensor = torch.Tensor(span)

    if cgbench_mode:
        raise NotImplementedError  # (the CG-Bench branch is not used by grounding benchmarks)
    else:
        iou = temporal_iou(pred_tensor, span_tensor)

    iou = torch.where(iou.isfinite(), iou, 0)
    return iou


def videomind_infer_postprocess(spans: list, duration: float, unit: float) -> dict[str, Any]:
    """videomind/eval/infer_auto.py, verbatim from ``if dump['grounder_success']:`` to
    ``dump['conf'] = conf`` (no verifier). One change: our models answer in seconds, so the
    tensor starts as ``torch.Tensor(spans)`` where infer_auto has ``model.reg[0] *
    duration``."""
    dump: dict[str, Any] = {"grounder_success": len(spans) > 0}
    if dump['grounder_success']:
        # 1. extract timestamps and confidences
        pred, conf = torch.Tensor(spans), [0.0] * len(spans)

        # 2. clamp timestamps
        pred = pred.clamp(min=0, max=duration)

        # 3. round timestamps to units
        pred = torch.round(pred / unit).long() * unit

        # 4. sort timestamps
        inds = (pred[:, 1] - pred[:, 0] < 0).nonzero()[:, 0]
        pred[inds] = pred[inds].roll(1)

        # 5. convert timestamps to list
        pred = pred.tolist()
    else:
        pred = [[0, duration]]
        conf = [0]
    dump['pred'] = pred
    dump['conf'] = conf
    return dump


def videomind_eval_auto(data: list[dict[str, Any]]) -> dict[str, float]:
    """videomind/eval/eval_auto.py's ``__main__``, verbatim for the grounding (IoU) table of
    one file without a dataset (``cgbench_mode = False``); returns what the 'all' row prints,
    before its ``:.2f``."""
    cgbench_mode = False
    top_k = [1, 3, 5]
    thres = [0.3, 0.5, 0.7]
    tab_iou_all = [0 for _ in range(len(top_k) * len(thres) + 3)]
    for sample in data:
        if 'pred' in sample and 'conf' in sample and 'span' in sample:
            tab_iou_all[0] += 1

            iou = compute_iou(sample['pred'], sample['span'], sample['conf'], cgbench_mode, -1)
            top = iou[0].max().item()

            tab_iou_all[-1] += top

            for i, k in enumerate(top_k):
                for j, h in enumerate(thres):
                    if iou[:k].max() >= h:
                        tab_iou_all[i * len(thres) + j + 2] += 1

            if not sample.get('grounder_success', True):
                tab_iou_all[1] += 1
    names = [f'R{k}@{t}' for k in top_k for t in thres] + ['mIoU']
    out = {name: tab_iou_all[i] / tab_iou_all[0] * 100
           for name, i in zip(names, range(2, len(tab_iou_all)), strict=True)}
    out["failed"] = tab_iou_all[1]
    return out


# =========================================================================================
# jayleicn/moment_detr @ b7e553ac3b0c898ee6b85e03ee507c064eab89ca (2026-03-08), MIT
# (line/lighthouse's training/standalone_eval is the same code)
# =========================================================================================

# standalone_eval/utils.py, verbatim
def compute_temporal_iou_batch_paired(pred_windows, gt_windows):
    intersection = np.maximum(
        0, np.minimum(pred_windows[:, 1], gt_windows[:, 1]) - np.maximum(pred_windows[:, 0], gt_windows[:, 0])
    )
    union = np.maximum(pred_windows[:, 1], gt_windows[:, 1]) \
            - np.minimum(pred_windows[:, 0], gt_windows[:, 0])  # not the correct union though
    return np.divide(intersection, union, out=np.zeros_like(intersection), where=union != 0)


# standalone_eval/utils.py, verbatim
def compute_temporal_iou_batch_cross(spans1, spans2):
    areas1 = spans1[:, 1] - spans1[:, 0]  # (N, )
    areas2 = spans2[:, 1] - spans2[:, 0]  # (M, )

    left = np.maximum(spans1[:, None, 0], spans2[None, :, 0])  # (N, M)
    right = np.minimum(spans1[:, None, 1], spans2[None, :, 1])  # (N, M)

    inter = np.clip(right - left, 0, None)  # (N, M)
    union = areas1[:, None] + areas2[None, :] - inter  # (N, M)

    iou = inter / union
    return iou, union


# standalone_eval/utils.py, verbatim
def interpolated_precision_recall(precision, recall):
    mprecision = np.hstack([[0], precision, [0]])
    mrecall = np.hstack([[0], recall, [1]])
    for i in range(len(mprecision) - 1)[::-1]:
        mprecision[i] = max(mprecision[i], mprecision[i + 1])
    idx = np.where(mrecall[1::] != mrecall[0:-1])[0] + 1
    ap = np.sum((mrecall[idx] - mrecall[idx - 1]) * mprecision[idx])
    return ap


# standalone_eval/utils.py, verbatim (docstring dropped)
def compute_average_precision_detection(ground_truth,
                                        prediction,
                                        tiou_thresholds=np.linspace(
                                            0.5, 0.95, 10)):
    num_thresholds = len(tiou_thresholds)
    num_gts = len(ground_truth)
    num_preds = len(prediction)
    ap = np.zeros(num_thresholds)
    if len(prediction) == 0:
        return ap

    num_positive = float(num_gts)
    lock_gt = np.ones((num_thresholds, num_gts)) * -1
    # Sort predictions by decreasing score order.
    prediction.sort(key=lambda x: -x['score'])
    # Initialize true positive and false positive vectors.
    tp = np.zeros((num_thresholds, num_preds))
    fp = np.zeros((num_thresholds, num_preds))

    # Adaptation to query faster
    ground_truth_by_videoid = {}
    for i, item in enumerate(ground_truth):
        item['index'] = i
        ground_truth_by_videoid.setdefault(item['video-id'], []).append(item)

    # Assigning true positive to truly grount truth instances.
    for idx, pred in enumerate(prediction):
        if pred['video-id'] in ground_truth_by_videoid:
            gts = ground_truth_by_videoid[pred['video-id']]
        else:
            fp[:, idx] = 1
            continue

        _pred = np.array([[pred['t-start'], pred['t-end']], ])
        _gt = np.array([[gt['t-start'], gt['t-end']] for gt in gts])
        tiou_arr = compute_temporal_iou_batch_cross(_pred, _gt)[0]

        tiou_arr = tiou_arr.reshape(-1)
        # We would like to retrieve the predictions with highest tiou score.
        tiou_sorted_idx = tiou_arr.argsort()[::-1]
        for t_idx, tiou_threshold in enumerate(tiou_thresholds):
            for j_idx in tiou_sorted_idx:
                if tiou_arr[j_idx] < tiou_threshold:
                    fp[t_idx, idx] = 1
                    break
                if lock_gt[t_idx, gts[j_idx]['index']] >= 0:
                    continue
                # Assign as true positive after the filters above.
                tp[t_idx, idx] = 1
                lock_gt[t_idx, gts[j_idx]['index']] = idx
                break

            if fp[t_idx, idx] == 0 and tp[t_idx, idx] == 0:
                fp[t_idx, idx] = 1

    tp_cumsum = np.cumsum(tp, axis=1).astype(float)
    fp_cumsum = np.cumsum(fp, axis=1).astype(float)
    recall_cumsum = tp_cumsum / num_positive

    precision_cumsum = tp_cumsum / (tp_cumsum + fp_cumsum)

    for t_idx in range(len(tiou_thresholds)):
        ap[t_idx] = interpolated_precision_recall(precision_cumsum[t_idx, :],
                                                  recall_cumsum[t_idx, :])
    return ap


# standalone_eval/eval.py, verbatim
def compute_average_precision_detection_wrapper(
        input_triple, tiou_thresholds=np.linspace(0.5, 0.95, 10)):
    qid, ground_truth, prediction = input_triple
    scores = compute_average_precision_detection(
        ground_truth, prediction, tiou_thresholds=tiou_thresholds)
    return qid, scores


# standalone_eval/eval.py, verbatim but for ``round_to_2`` (the reference always rounds: False
# gives the unrounded numbers, which the 1e-9 comparison needs) and the worker pool (one
# process: the same numbers)
def compute_mr_ap(submission, ground_truth, iou_thds=np.linspace(0.5, 0.95, 10),
                  max_gt_windows=None, max_pred_windows=10, num_workers=8, chunksize=50,
                  round_to_2=True):
    iou_thds = [float(f"{e:.2f}") for e in iou_thds]
    pred_qid2data = defaultdict(list)
    for d in submission:
        pred_windows = d["pred_relevant_windows"][:max_pred_windows] \
            if max_pred_windows is not None else d["pred_relevant_windows"]
        qid = d["qid"]
        for w in pred_windows:
            pred_qid2data[qid].append({
                "video-id": d["qid"],  # in order to use the API
                "t-start": w[0],
                "t-end": w[1],
                "score": w[2]
            })

    gt_qid2data = defaultdict(list)
    for d in ground_truth:
        gt_windows = d["relevant_windows"][:max_gt_windows] \
            if max_gt_windows is not None else d["relevant_windows"]
        qid = d["qid"]
        for w in gt_windows:
            gt_qid2data[qid].append({
                "video-id": d["qid"],
                "t-start": w[0],
                "t-end": w[1]
            })
    qid2ap_list = {}
    data_triples = [[qid, gt_qid2data[qid], pred_qid2data[qid]] for qid in pred_qid2data]
    compute_ap_from_triple = partial(
        compute_average_precision_detection_wrapper, tiou_thresholds=iou_thds)

    for data_triple in data_triples:
        qid, scores = compute_ap_from_triple(data_triple)
        qid2ap_list[qid] = scores

    ap_array = np.array(list(qid2ap_list.values()))  # (#queries, #thd)
    ap_thds = ap_array.mean(0)  # mAP at different IoU thresholds.
    iou_thd2ap = dict(zip([str(e) for e in iou_thds], ap_thds))
    iou_thd2ap["average"] = np.mean(ap_thds)
    # formatting
    if round_to_2:
        iou_thd2ap = {k: float(f"{100 * v:.2f}") for k, v in iou_thd2ap.items()}
    else:
        iou_thd2ap = {k: 100 * v for k, v in iou_thd2ap.items()}
    return iou_thd2ap


# standalone_eval/eval.py, verbatim but for ``round_to_2`` (as above)
def compute_mr_r1(submission, ground_truth, iou_thds=np.linspace(0.5, 0.95, 10),
                  round_to_2=True):
    """If a predicted segment has IoU >= iou_thd with one of the 1st GT segment, we define it positive"""
    iou_thds = [float(f"{e:.2f}") for e in iou_thds]
    pred_qid2window = {d["qid"]: d["pred_relevant_windows"][0][:2] for d in submission}  # :2 rm scores
    gt_qid2window = {}
    for d in ground_truth:
        cur_gt_windows = d["relevant_windows"]
        cur_qid = d["qid"]
        cur_max_iou_idx = 0
        if len(cur_gt_windows) > 0:  # select the GT window that has the highest IoU
            cur_ious = compute_temporal_iou_batch_cross(
                np.array([pred_qid2window[cur_qid]]), np.array(d["relevant_windows"])
            )[0]
            cur_max_iou_idx = np.argmax(cur_ious)
        gt_qid2window[cur_qid] = cur_gt_windows[cur_max_iou_idx]

    qids = list(pred_qid2window.keys())
    pred_windows = np.array([pred_qid2window[k] for k in qids]).astype(float)
    gt_windows = np.array([gt_qid2window[k] for k in qids]).astype(float)
    pred_gt_iou = compute_temporal_iou_batch_paired(pred_windows, gt_windows)
    iou_thd2recall_at_one = {}
    for thd in iou_thds:
        if round_to_2:
            iou_thd2recall_at_one[str(thd)] = float(f"{np.mean(pred_gt_iou >= thd) * 100:.2f}")
        else:
            iou_thd2recall_at_one[str(thd)] = np.mean(pred_gt_iou >= thd) * 100
    return iou_thd2recall_at_one


# =========================================================================================
# the prediction sets
# =========================================================================================


def edge_span(rng: random.Random, gt: tuple[float, float], duration: float, unit: float
              ) -> list[float]:
    """One predicted span, usually an awkward one."""
    s, e = gt
    kind = rng.randrange(12)
    if kind == 0:  # the threshold met exactly in decimal: IoU 0.5 / 0.3 / 0.7 in float64
        t = rng.choice([0.5, 0.3, 0.7])
        return [s, round(s + (e - s) * t, 3)]
    if kind == 1:  # half a unit: 5.15 at 0.1, 2.345 at 0.01, odd seconds at 2.0
        k = rng.randrange(int(duration / unit) + 1)
        return [round((k + 0.5) * unit, 4), round(min(duration, e + (k % 3) * unit), 4)]
    if kind == 2:  # reversed
        return [e, s]
    if kind == 3:  # zero length
        return [s, s]
    if kind == 4:  # out of the video
        return [-rng.uniform(0, 5), duration + rng.uniform(0, 5)]
    if kind == 5:  # the ground truth itself
        return [s, e]
    if kind == 6:  # whole seconds (TimeLens rounding: halves to even)
        return [float(int(s)) + 0.5, float(int(e)) + 0.5]
    a, b = sorted(round(rng.uniform(0, duration), rng.choice([0, 1, 2, 3])) for _ in range(2))
    return [a, b]


def spans_for(rng: random.Random, gt: tuple[float, float], duration: float, unit: float
              ) -> list[list[float]]:
    """Zero to six predicted spans (none: the grounder failed)."""
    count = rng.choice([0, 1, 1, 1, 2, 3, 5, 6])
    return [edge_span(rng, gt, duration, unit) for _ in range(count)]


def gt_span(rng: random.Random, duration: float) -> tuple[float, float]:
    s = round(rng.uniform(0, duration * 0.8), rng.choice([1, 2]))
    return (s, round(min(duration, s + rng.uniform(0.5, duration / 2)), rng.choice([1, 2])))


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def our_metrics(report: dict[str, Any], protocol: str) -> dict[str, float]:
    return {k: 100 * v for k, v in report["runs"][0]["scores"][protocol]["metrics"].items()}


def assert_same(ours: dict[str, float], theirs: dict[str, float], what: str) -> None:
    for name, value in theirs.items():
        assert abs(ours[name] - value) <= TOLERANCE, (what, name, ours[name], value)


# =========================================================================================
# TimeLens
# =========================================================================================


def timelens_bench(rng: random.Random, n_videos: int) -> dict[str, Any]:
    """A TimeLens-Bench file; some videos repeat a sentence with another span (as
    ActivityNet's val_1 does) or repeat a (sentence, span) exactly."""
    data = {}
    for v in range(n_videos):
        duration = round(rng.uniform(5, 200), 2)
        spans, queries = [], []
        for q in range(rng.randint(1, 4)):
            spans.append(list(gt_span(rng, duration)))
            queries.append(f"person {v} does thing {q}.")
        if rng.random() < 0.3:  # the same sentence, another span
            spans.append(list(gt_span(rng, duration)))
            queries.append(queries[0])
        if rng.random() < 0.1:  # the same sentence and span again
            spans.append(list(spans[0]))
            queries.append(queries[0])
        data[f"vid{v:04d}"] = {"duration": duration, "spans": spans, "queries": queries}
    return data


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_timelens_dump_scores_as_compute_metrics(tmp_path: Path, seed: int) -> None:
    """A dump written by eval_dataloader.py's own lines, scored by compute_metrics.py and by
    vidground (the library and the CLI): the same four numbers."""
    rng = random.Random(seed)
    bench = timelens_bench(rng, 150)
    ann = tmp_path / "activitynet-timelens.json"
    ann.write_text(json.dumps(bench))
    lines = []
    for anno in timelens_load_annos(bench):
        gt = tuple(anno["span"][0])
        found = spans_for(rng, gt, anno["duration"], 1.0)
        answer = "; ".join(f"{a} - {b}" for a, b in found) or "I cannot tell."
        lines.append(timelens_dump(anno, answer, found))
    if seed == 0:  # a line with only the raw answer: compute_metrics parses it itself
        key = next(iter(lines[0]))
        lines[0] = {key: {"answers": "The event happens in 3.5 - 9 seconds."}}
    dump = write_jsonl(tmp_path / "charades-timelens.jsonl", lines)
    theirs = timelens_compute_metrics(str(dump))

    ours = our_metrics(score_predictions(dump, ann, dataset="timelens"), "timelens")
    assert_same(ours, theirs, f"seed {seed}")
    assert len(read_annotations("timelens", ann)) > len(read_jsonl_return_dict(str(dump)))

    if seed == 1:  # the CLI prints the same report
        result = subprocess.run([sys.executable, "-m", "vidground", "eval", "score", str(dump),
                                 "-a", str(ann), "--dataset", "timelens", "--json"],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        assert_same(our_metrics(json.loads(result.stdout), "timelens"), theirs, "cli")


def test_activitynet_repeated_sentence_is_scored_per_span(tmp_path: Path) -> None:
    """ActivityNet val_1 repeats a sentence with two spans: a perfect dump is perfect (it was
    matched by video and query only, both samples getting the last line)."""
    bench = {"v_a": {"duration": 60.0, "spans": [[2, 10], [30, 50], [20, 25]],
                     "queries": ["he jumps.", "he jumps.", "she sits"]}}
    ann = tmp_path / "ann.json"
    ann.write_text(json.dumps(bench))
    lines = [timelens_dump(a, "", [list(a["span"][0])]) for a in timelens_load_annos(bench)]
    dump = write_jsonl(tmp_path / "dump.jsonl", lines)
    assert timelens_compute_metrics(str(dump))["mIoU"] == 100.0
    report = score_predictions(dump, ann, dataset="timelens")
    assert our_metrics(report, "timelens")["mIoU"] == 100.0
    assert report["runs"][0]["scores"]["timelens"]["n"] == 3


def test_our_predictions_score_as_the_timelens_pipeline(tmp_path: Path) -> None:
    """Our own predictions file (unrounded spans): vidground's timelens figures equal
    eval_dataloader.py's rounding followed by compute_metrics.py."""
    rng = random.Random(7)
    bench = timelens_bench(rng, 200)
    ann = tmp_path / "bench.json"
    ann.write_text(json.dumps(bench))
    samples = read_annotations("timelens", ann)
    annos = timelens_load_annos(bench)
    assert len(samples) == len(annos)
    ours, dump = [], []
    for sample, anno in zip(samples, annos, strict=True):
        found = spans_for(rng, sample.spans[0], anno["duration"], 1.0)
        ours.append({"id": sample.id, "pred": found})
        dump.append(timelens_dump(anno, "", found))
    theirs = timelens_compute_metrics(str(write_jsonl(tmp_path / "dump.jsonl", dump)))
    report = score_predictions(write_jsonl(tmp_path / "ours.jsonl", ours), ann,
                               dataset="timelens")
    assert_same(our_metrics(report, "timelens"), theirs, "our predictions")


# =========================================================================================
# VideoMind
# =========================================================================================


VIDEOMIND_CASES = [("charades-sta", 0.1), ("activitynet", 0.01), ("qvhighlights", 2.0),
                   ("jsonl", 0.001)]


def videomind_set(kind: str, unit: float, tmp_path: Path, rng: random.Random, n: int
                  ) -> tuple[Path, Path | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """Annotations of ``kind`` (and a durations file for Charades), our predictions, and the
    dumps infer_auto.py would write for them."""
    truth = []
    for i in range(n):
        duration = round(rng.uniform(8, 150), 2) if kind != "qvhighlights" else 150.0
        windows = [gt_span(rng, duration) for _ in range(3 if kind == "qvhighlights" else 1)]
        if kind == "qvhighlights":
            windows = [(2.0 * int(s / 2), 2.0 * int(s / 2) + 2.0 * rng.randint(1, 8))
                       for s, _ in windows]
        truth.append({"vid": f"vid{i:04d}", "duration": duration, "windows": windows})
    truth[0].update(duration=30.0, windows=[(0.0, 3.4)])    # IoU 0.49999997 in float32
    truth[1].update(duration=30.0, windows=[(5.0, 9.0)])    # 5.15 -> 5.2 in float32
    ann, durations = _videomind_annotations(kind, tmp_path, truth)
    samples = read_annotations(kind, ann)
    ours, dumps = [], []
    for k, (sample, t) in enumerate(zip(samples, truth, strict=True)):
        found = spans_for(rng, t["windows"][0], t["duration"], unit)
        if k == 0:
            found = [[0.0, 1.7]]
        if k == 1:
            found = [[5.15, 9.0]]
        ours.append({"id": sample.id, "pred": found})
        dump = videomind_infer_postprocess(found, t["duration"], unit)
        dump["span"] = [list(w) for w in t["windows"]]
        dumps.append(dump)
    return ann, durations, ours, dumps


def _videomind_annotations(kind: str, folder: Path, truth: list[dict[str, Any]]
                           ) -> tuple[Path, Path | None]:
    if kind == "charades-sta":
        ann = folder / "charades_sta_test.txt"
        ann.write_text("".join(f"{t['vid']} {t['windows'][0][0]} {t['windows'][0][1]}##q{i}.\n"
                               for i, t in enumerate(truth)))
        durations = folder / "durations.json"
        durations.write_text(json.dumps({t["vid"]: t["duration"] for t in truth}))
        return ann, durations
    if kind == "activitynet":
        ann = folder / "val_2.json"
        ann.write_text(json.dumps({f"v_{t['vid']}": {
            "duration": t["duration"], "timestamps": [list(t["windows"][0])],
            "sentences": [f"q{i}"]} for i, t in enumerate(truth)}))
        return ann, None
    if kind == "qvhighlights":
        return write_jsonl(folder / "highlight_val_release.jsonl", [
            {"qid": i, "query": f"q{i}", "vid": t["vid"], "duration": t["duration"],
             "relevant_windows": [list(w) for w in t["windows"]]}
            for i, t in enumerate(truth)]), None
    return write_jsonl(folder / "mine.jsonl", [
        {"video": f"{t['vid']}.mp4", "query": f"q{i}", "duration": t["duration"],
         "spans": [list(t["windows"][0])]} for i, t in enumerate(truth)]), None


@pytest.mark.parametrize(("kind", "unit"), VIDEOMIND_CASES)
def test_videomind_scores_as_eval_auto(tmp_path: Path, kind: str, unit: float) -> None:
    """infer_auto.py's post-processing and eval_auto.py's table, in their torch float32,
    against vidground on the same predictions: every R{k}@t and mIoU within 1e-9 points, and
    the same failed count."""
    rng = random.Random(VIDEOMIND_CASES.index((kind, unit)))
    ann, durations, ours, dumps = videomind_set(kind, unit, tmp_path, rng, 400)
    theirs = videomind_eval_auto(dumps)
    preds = write_jsonl(tmp_path / "preds.jsonl", ours)
    report = score_predictions(preds, ann, dataset=kind, durations=durations)
    mine = our_metrics(report, "videomind")
    theirs_failed = theirs.pop("failed")
    assert_same(mine, theirs, kind)
    assert report["runs"][0]["scores"]["videomind"]["failed"] == theirs_failed


def test_videomind_threshold_and_half_unit_cases_by_hand(tmp_path: Path) -> None:
    """The two cases the issue names: truth [0, 3.4], prediction [0, 1.7] misses R1@0.5 (IoU
    0.49999997 in float32, 0.5 in float64); 5.15 rounds to 5.2 at unit 0.1 (5.1 in float64)."""
    ann = tmp_path / "charades_sta_test.txt"
    ann.write_text("a 0.0 3.4##first.\nb 5.2 9.0##second.\n")
    durations = tmp_path / "durations.json"
    durations.write_text(json.dumps({"a": 30.0, "b": 30.0}))
    preds = write_jsonl(tmp_path / "p.jsonl", [{"id": "a#0", "pred": [[0, 1.7]]},
                                               {"id": "b#1", "pred": [[5.15, 9.0]]}])
    report = score_predictions(preds, ann, durations=durations)
    metrics = report["runs"][0]["scores"]["videomind"]["metrics"]
    assert metrics["R1@0.5"] == 0.5          # a misses, b is [5.2, 9.0]: IoU 1
    rows = report["runs"][0]["samples"]
    assert rows[1]["videomind_iou"] == pytest.approx(1.0, abs=1e-6)   # 5.1 gave 0.974


# =========================================================================================
# QVHighlights (moment_detr / lighthouse)
# =========================================================================================


def qvh_set(rng: random.Random, n: int, *, empty: bool
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Ground truth (``highlight_val_release.jsonl`` rows) and a submission full of the cases
    where the reference's numpy gives NaN: reversed windows as long as a ground-truth window,
    zero-length windows against zero-length ground truth; ties in scores and in IoU; more than
    10 windows; (with ``empty``) queries with no window."""
    gt, sub = [], []
    for qid in range(n):
        windows = []
        for _ in range(rng.randint(1, 4)):
            s = 2 * rng.randrange(70)
            windows.append([s, min(150, s + 2 * rng.randint(0, 10))])  # zero length possible
        gt.append({"qid": qid, "query": f"q{qid}", "vid": f"v{qid}", "duration": 150,
                   "relevant_windows": windows})
        preds = []
        for _ in range(rng.randint(0 if empty else 1, 13)):
            kind = rng.randrange(8)
            g = rng.choice(windows)
            if kind == 0:    # reversed, as long as a ground-truth window: NaN
                s = 2 * rng.randrange(70)
                w = [s + (g[1] - g[0]), s]
            elif kind == 1:  # zero length
                s = 2 * rng.randrange(75)
                w = [s, s]
            elif kind == 2:  # the truth
                w = list(g)
            elif kind == 3:  # reversed, of another length
                s = 2 * rng.randrange(70)
                w = [s + 2 * rng.randint(1, 12), s]
            else:
                a, b = sorted(2 * rng.randrange(76) for _ in range(2))
                w = [a, b]
            preds.append([*w, rng.choice([0.9, 0.5, 0.5, rng.random()])])
        sub.append({"qid": qid, "pred_relevant_windows": preds})
    return gt, sub


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_qvhighlights_scores_as_moment_detr(tmp_path: Path, seed: int) -> None:
    rng = random.Random(100 + seed)
    gt, sub = qvh_set(rng, 400, empty=True)
    ann = write_jsonl(tmp_path / "highlight_val_release.jsonl", gt)
    preds = write_jsonl(tmp_path / "submission.jsonl", sub)
    report = score_predictions(preds, ann, dataset="qvhighlights")
    ours = our_metrics(report, "qvhighlights")

    with np.errstate(divide="ignore", invalid="ignore"):
        ap = compute_mr_ap(json.loads(json.dumps(sub)), json.loads(json.dumps(gt)),
                           num_workers=1, round_to_2=False)
        ap_rounded = compute_mr_ap(json.loads(json.dumps(sub)), json.loads(json.dumps(gt)),
                                   num_workers=1)
        answered = [d for d in sub if d["pred_relevant_windows"]]   # R1 crashes on the rest
        kept = {d["qid"] for d in answered}
        r1 = compute_mr_r1(answered, [g for g in gt if g["qid"] in kept], round_to_2=False)
    assert_same(ours, {"mAP": ap["average"], "mAP@0.5": ap["0.5"], "mAP@0.75": ap["0.75"]},
                f"seed {seed}")
    assert round(ours["mAP"], 2) == ap_rounded["average"]
    # our R1 counts a query without a window as a miss, the reference cannot count it
    share = len(answered) / len(sub)
    assert_same(ours, {"R1@0.5": r1["0.5"] * share, "R1@0.7": r1["0.7"] * share}, "R1")
    counts = report["runs"][0]["scores"]["qvhighlights"]
    assert counts["map_queries"] == len(answered) and counts["no_window"] == len(sub) - len(kept)
    assert ours["mAP_strict"] < ours["mAP"]   # NaN true positives and left-out queries


def test_qvhighlights_reversed_window_is_a_true_positive_as_in_the_reference(
        tmp_path: Path) -> None:
    """A reversed window as long as the truth: IoU 0/0 = NaN, a hit at every threshold in
    moment_detr (mAP 100); zero-length against zero-length the same; mAP_strict says 0."""
    gt = [{"qid": 1, "query": "a", "vid": "v", "duration": 150, "relevant_windows": [[10, 20]]},
          {"qid": 2, "query": "b", "vid": "w", "duration": 150, "relevant_windows": [[30, 30]]}]
    sub = [{"qid": 1, "pred_relevant_windows": [[60, 50, 0.9]]},
           {"qid": 2, "pred_relevant_windows": [[70, 70, 0.9]]}]
    with np.errstate(divide="ignore", invalid="ignore"):
        theirs = compute_mr_ap(json.loads(json.dumps(sub)), json.loads(json.dumps(gt)),
                               num_workers=1, round_to_2=False)
    assert theirs["average"] == 100.0
    report = score_predictions(write_jsonl(tmp_path / "s.jsonl", sub),
                               write_jsonl(tmp_path / "g.jsonl", gt), dataset="qvhighlights")
    ours = our_metrics(report, "qvhighlights")
    assert ours["mAP"] == 100.0 and ours["mAP_strict"] == 0.0 and ours["R1@0.5"] == 0.0


# =========================================================================================
# TimeLens inference: frame indices
# =========================================================================================


def test_frame_indices_are_torch_linspace_float32_on_long_videos() -> None:
    """qwen-vl-utils (decord) takes ``torch.linspace(0, total - 1, n).round().long()``, in
    float32: vidground picks the same frames, long videos included (float64 linspace cast to
    float32 is one frame off for some)."""
    rng = random.Random(3)
    for _ in range(1500):
        total = rng.randint(2, 400_000)
        n = rng.randint(2, min(768, total))
        theirs = torch.linspace(0, total - 1, n).round().long().tolist()
        assert linspace_indices(total, n) == theirs, (total, n)
