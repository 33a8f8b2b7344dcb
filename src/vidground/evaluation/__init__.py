"""Evaluation on the standard temporal-grounding benchmarks, with the reference metrics.

Layers (each module small and named for what it holds):

``records``      Sample / Prediction value types (leaf)
``jsonio``       JSON reading whose every failure names the file and line
``loaders``      Charades-STA, TimeLens JSON, ActivityNet Captions, QVHighlights, our JSONL
``metrics``      the TimeLens, VideoMind (Moment-DETR style) and QVHighlights protocols, digit
                 for digit as the reference scripts compute them
``protocols``    how a sample is put to the model: vidground's pipeline or TimeLens' setup
                 (its current script, or its first release as ``timelens-legacy``)
``grid``         ``--grid`` combinations -> runs
``predictions``  the resumable predictions JSONL
``runner``       resumable, concurrent runs with progress
``report``       scores, the JSON report, the Rich tables
``evaluate``     :func:`evaluate` and :func:`score_predictions`
``cli``          ``vidground eval`` (a thin shell over the above)

See docs/evaluation.md.
"""

from __future__ import annotations

from .evaluate import evaluate, score_predictions
from .grid import RunSpec, plan_runs
from .loaders import DATASETS, Dataset, VideoResolver, load_dataset, read_annotations
from .metrics import PROTOCOLS, ProtocolScores, score
from .protocols import TimeLensProtocol, VidgroundProtocol, extract_time
from .records import EvaluationError, Prediction, Sample

__all__ = [
    "DATASETS", "PROTOCOLS", "Dataset", "EvaluationError", "Prediction", "ProtocolScores",
    "RunSpec", "Sample", "TimeLensProtocol", "VideoResolver", "VidgroundProtocol", "evaluate",
    "extract_time", "load_dataset", "plan_runs", "read_annotations", "score",
    "score_predictions",
]
