"""Watch a live camera or stream and say when a described event happens (issue 25).

``sources`` opens and reconnects streams (confined to an allow-list), ``watcher`` runs the cheap
gate, the model, the budget and the start/end state machine over a ring buffer of recent
frames, ``alerts`` delivers events (JSONL store, signed webhooks, MQTT), ``cli`` is the
``vidground watch`` command. Nothing here is imported by ``import vidground``.
"""

from __future__ import annotations
