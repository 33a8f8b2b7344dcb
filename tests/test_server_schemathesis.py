"""Property-based run over the live server's OpenAPI schema (schemathesis): valid and invalid
requests for every operation; none may get a 5xx, and every 4xx is our JSON error shape.

schemathesis' own pytest plugin (``from_fixture``/``parametrize``) does not work with pytest 9,
so the test draws cases from each operation's hypothesis strategy itself.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fake_openai_server import FakeOpenAIServer
from media import make_video
from server_utils import ServerProcess, openai_env

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@pytest.fixture(scope="module")
def live_server(tmp_path_factory: pytest.TempPathFactory, fake_model: FakeOpenAIServer
                ) -> Iterator[ServerProcess]:
    fake_model.configure(delay_s=0.0, answer=None)
    srv = ServerProcess(tmp_path_factory.mktemp("schemathesis"), env=openai_env(
        fake_model, VIDGROUND_MAX_UPLOAD_MB="2", VIDGROUND_QUEUE_LIMIT="8"))
    make_video(srv.media_root / "a.mp4", duration=2.0, fps=10)
    with srv:
        yield srv


def _operations(srv: ServerProcess) -> list:
    api = schemathesis.openapi.from_url(srv.url("/openapi.json"))
    return [result.ok() for result in api.get_all_operations()]


def _check(case, srv: ServerProcess) -> int:  # noqa: ANN001 - schemathesis.Case
    response = case.call(base_url=srv.base_url, timeout=30)
    assert response.status_code < 500, (case.method, case.path, case.body,
                                        response.status_code, response.text[:300])
    if response.status_code >= 400:
        body = response.json()
        assert set(body) == {"error"}, body
        assert body["error"]["code"] and body["error"]["message"]
    return response.status_code


@pytest.mark.parametrize("mode", ["positive", "negative"])
def test_no_server_errors_over_the_schema(live_server: ServerProcess, mode: str) -> None:
    operations = _operations(live_server)
    labels = {op.label for op in operations}
    assert {"POST /api/v1/inference", "POST /api/v1/videos", "POST /api/v1/jobs",
            "GET /api/v1/jobs/{job_id}", "DELETE /api/v1/jobs/{job_id}"} <= labels, labels
    generation = schemathesis.GenerationMode(mode)
    strategy = st.one_of([op.as_strategy(generation_mode=generation) for op in operations])

    @given(case=strategy)
    @settings(max_examples=150, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    def run(case) -> None:  # noqa: ANN001
        seen.setdefault(case.operation.label, set()).add(_check(case, live_server))

    seen: dict[str, set[int]] = {}
    run()
    print(mode, {k: sorted(v) for k, v in seen.items()})
    assert len(seen) >= 6, seen
    assert live_server.alive()
    health = live_server.url("/api/v1/health")
    import requests

    assert requests.get(health, timeout=10).status_code == 200
