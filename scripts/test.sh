#!/usr/bin/env bash
# Install what the test suite needs into the current Python environment, then run it.
# torch/torchvision are pinned to a pair that imports and runs on CPU-only hosts; the browser
# test needs Debian's chromium (installed here when missing and we are root).
set -euo pipefail
cd "$(dirname "$0")/.."

python -m pip install --quiet --upgrade pip
python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
python -m pip install --quiet -e ".[local,server,dev]" "torch==2.14.1" "torchvision==0.29.1"

if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing chromium for the browser tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  else
    echo "chromium is missing: install it (apt-get install chromium) to run the browser tests" >&2
    exit 1
  fi
fi

# The job-store and worker tests start a real PostgreSQL server (Debian's postgresql package).
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing postgresql for the job-store tests..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  else
    echo "postgresql is missing: install it (apt-get install postgresql) to run the job-store tests" >&2
    exit 1
  fi
fi

export VIDGROUND_NO_SKIPS=1 HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 GRADIO_ANALYTICS_ENABLED=False
python -m ruff check src tests benchmarks
python -m pytest "$@"
