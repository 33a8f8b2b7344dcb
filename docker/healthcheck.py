"""Container health check: the server answers ``GET /api/v1/health`` (401 counts as up: an
API key is set and the check has none). Exit 0 when up, 1 otherwise."""

import os
import sys
import urllib.error
import urllib.request

port = os.environ.get("VIDGROUND_PORT", "7860")
try:
    urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5)
except urllib.error.HTTPError as exc:
    sys.exit(0 if exc.code == 401 else 1)
except OSError:
    sys.exit(1)
