"""The shapes of the ids the server hands out, in one place: path and body patterns (checked by
pydantic with Rust regex, where ``$`` is the very end of the text) and compiled forms for the
checks in Python (always with ``fullmatch``, so no trailing newline gets through)."""

from __future__ import annotations

import re

#: an uploaded video (``secrets.token_hex(16)``)
VIDEO_ID_PATTERN = r"^[0-9a-f]{32}$"
#: a job or a batch of jobs (``secrets.token_hex(12)``)
JOB_ID_PATTERN = r"^[0-9a-f]{24}$"
#: a folder of files made from a result: clips, evidence (``secrets.token_hex(16)``)
OUTPUT_ID_PATTERN = r"^[0-9a-f]{32}$"

VIDEO_ID_RE = re.compile(VIDEO_ID_PATTERN)
OUTPUT_ID_RE = re.compile(OUTPUT_ID_PATTERN)
