#!/usr/bin/env bash
# benchmarks/gpu.py on a machine with an NVIDIA GPU, as one prepared command (docs/performance.md).
#
#   bash benchmarks/gpu_device_run.sh prepare   # here, with PyPI: wheels the GPU image lacks -> .whl/
#   bash benchmarks/gpu_device_run.sh device    # there: install them, encode the clip, run, log to $OUT
#
# The device tool's H200 image has Python 3.12 with torch, numpy, pillow, typer, rich, httpx,
# safetensors, tokenizers, huggingface-hub and an older transformers (5.17, whose Qwen3-VL
# forward takes no precomputed visual features, so vidground's feature cache would be off);
# nothing can be installed from a registry there. `prepare` downloads what is missing, pinned to
# the versions the tests run with, as cp312 manylinux wheels (about 53 MB of the 64 MiB a call
# carries; the working tree is about 1.3 MB). The 5-minute clip (~25 MB) does not fit beside
# them, so `device` encodes it there (16 cores). Call the device tool with:
#   command: bash benchmarks/gpu_device_run.sh device
#   carry:   [".whl"]        timeout_s: 480
# BUDGET (seconds, default 330) is when gpu.py stops starting new runs, so the call ends well
# inside its limit and leaves device time for one re-run; what did not start is printed as
# skipped. Results: $OUT/gpu.log (everything printed) and $OUT/gpu.json (the rows, rewritten
# after every question, so a run cut short keeps what it measured).
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=(
  av==18.1.0 pydantic==2.14.4 pydantic_core==2.50.5 pydantic-settings==2.16.3
  python-dotenv==1.2.4 typing-inspection==0.4.5 annotated-types==0.7.0
  typing_extensions==4.16.0 regex==2026.11.19 transformers==5.24.0
)

prepare() {
  mkdir -p .git/info
  grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
  python3 -m pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
    --platform manylinux1_x86_64 -d .whl "${WHEELS[@]}"
  du -sh .whl
}

device() {
  : "${OUT:=/tmp/vidground-gpu-out}"
  mkdir -p "$OUT"
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD/src PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
  export TOKENIZERS_PARALLELISM=false
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
  python3 - <<'EOF'
import av, pydantic_settings, torch, transformers
print("torch", torch.__version__, "cuda", torch.cuda.is_available(), "transformers",
      transformers.__version__, "av", av.__version__)
EOF
  local work=/tmp/vidground-gpu
  mkdir -p "$work"
  python3 - "$work/clip.mp4" <<'EOF' 2>&1 | tee "$OUT/gpu.log"
import sys, time
from pathlib import Path
sys.path.insert(0, "tests/support"); sys.path.insert(0, "benchmarks")
import gpu
gpu.encode_clip(Path(sys.argv[1]), 300.0, (1280, 720))
EOF
  python3 benchmarks/gpu.py --device cuda --models tiny,2b,4b,8b --fps 1,2 --attn sdpa,eager \
    --tokens 16 --video "$work/clip.mp4" --work "$work" --budget-s "${BUDGET:-330}" \
    --json "$OUT/gpu.json" 2>&1 | tee -a "$OUT/gpu.log"
  # sdpa against eager where both fit: eager's attention matrix of a 5-minute clip does not
  # (10^5 tokens squared per head); a 30 s clip at 2 fps (60 frames, ~2x10^4 tokens) does.
  if [ "$SECONDS" -lt "${EAGER_BY:-380}" ]; then
    python3 benchmarks/gpu.py --device cuda --models 2b --duration 30 --fps 2 \
      --attn sdpa,eager --tokens 16 --work "$work/short" --json "$OUT/gpu_eager.json" \
      2>&1 | tee -a "$OUT/gpu.log"
  else
    echo "- sdpa vs eager on a 30 s clip: skipped (${SECONDS} s gone)" | tee -a "$OUT/gpu.log"
  fi
}

case "${1:-}" in
  prepare) prepare ;;
  device) device ;;
  *) echo "usage: $0 prepare|device" >&2; exit 2 ;;
esac
