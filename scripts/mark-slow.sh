#!/usr/bin/env bash
# Re-measure which tests are slow: run the suite with --durations=0 and write every test that took
# 1 s or more (setup + call + teardown) to tests/slow_tests.txt, which tests/conftest.py reads to
# mark them 'slow' ('pytest -m "not slow"' is then the fast subset). Run it in the test venv.
set -euo pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
VIDGROUND_NO_SKIPS=1 python -m pytest -q -p no:cacheprovider --durations=0 "$@" | tee "$log" || true
{
  echo "# Tests measured at 1 s or more (setup + call + teardown) in a full run on a 2-core CI-like machine"
  echo "# (pytest --durations=0); tests/conftest.py marks them 'slow', so 'pytest -m \"not slow\"' is the"
  echo "# fast subset. Re-measure with: bash scripts/mark-slow.sh"
  grep -E "^[0-9.]+s (call|setup|teardown)" "$log" \
    | awk '{t[$3]+=$1} END {for (k in t) if (t[k]>=1.0) print k}' | sort
} > tests/slow_tests.txt
echo "wrote tests/slow_tests.txt ($(grep -vc '^#' tests/slow_tests.txt) slow tests)"
