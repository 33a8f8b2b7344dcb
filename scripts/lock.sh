#!/usr/bin/env bash
# Re-make requirements/ci-constraints.txt: install the test extras with the newest releases into a
# fresh virtual environment (torch stays on the CI pair) and freeze what pip resolved. Run the
# suite against the result before committing it (VIDGROUND_LATEST=1 bash scripts/test.sh does both
# steps' install part without writing the file).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
venv=$(mktemp -d)/venv
"$PYTHON" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --upgrade pip
"$venv/bin/python" -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
"$venv/bin/python" -m pip install --quiet -e ".[local,server,dev]" "torch==2.14.1" "torchvision==0.29.1"
{
  echo "# What CI installs (scripts/test.sh passes this to pip as constraints): the exact releases the"
  echo "# suite last passed on. Regenerate on purpose with: bash scripts/lock.sh (a fresh venv, newest"
  echo "# releases, then pip freeze). See how the newest releases fare first: VIDGROUND_LATEST=1 bash scripts/test.sh"
  "$venv/bin/python" -m pip freeze --exclude-editable
} > requirements/ci-constraints.txt
echo "wrote requirements/ci-constraints.txt ($(grep -vc '^#' requirements/ci-constraints.txt) pins)"
