"""The tests' fake model server (tests/support/fake_openai_server.py) listening on 0.0.0.0:PORT,
for containers: compose.local.yaml runs it as the `vllm` service, so compose.yaml's vidground
services reach it at http://vllm:8000/v1 exactly as they would reach vLLM. It answers like a
model from what it sees in the frames (a red square; docs in that module), serves the model name
given, and stops on SIGTERM.

    python scripts/container-fake-model.py [--port 8000] [--model Qwen/Qwen3-VL-4B-Instruct]

The support module is found on --support (default: tests/support next to this script, or
/opt/vidground-tests in a container that mounts it there).
"""

from __future__ import annotations

import argparse
import contextlib
import signal
import socket
import sys
import threading
from pathlib import Path


def _pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            with contextlib.suppress(OSError):
                s.shutdown(socket.SHUT_RDWR)


def forward(listen: socket.socket, port: int) -> None:
    """Accept on ``listen`` and relay each connection to 127.0.0.1:port (the fake server binds
    127.0.0.1 only)."""
    while True:
        client, _ = listen.accept()
        upstream = socket.create_connection(("127.0.0.1", port), timeout=30)
        upstream.settimeout(None)
        threading.Thread(target=_pipe, args=(client, upstream), daemon=True).start()
        threading.Thread(target=_pipe, args=(upstream, client), daemon=True).start()


def main() -> None:
    here = Path(__file__).resolve().parent
    default_support = here.parent / "tests" / "support"
    if not default_support.is_dir():
        default_support = Path("/opt/vidground-tests")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--model", default="Qwen/Qwen3-VL-4B-Instruct")
    parser.add_argument("--support", type=Path, default=default_support)
    args = parser.parse_args()
    sys.path.insert(0, str(args.support))
    from fake_openai_server import FakeOpenAIServer

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square", model=args.model) as srv:
        listen = socket.create_server(("0.0.0.0", args.port))
        threading.Thread(target=forward, args=(listen, srv.port), daemon=True).start()
        print(f"fake model server: {args.model} on 0.0.0.0:{args.port}", flush=True)
        signal.pause()


if __name__ == "__main__":
    main()
