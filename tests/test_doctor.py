"""vidground doctor: readiness checks against the fake server, a closed port and local installs."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator

import pytest
from fake_openai_server import FakeOpenAIServer

from vidground.config import Settings
from vidground.doctor import Check, all_ok, check_backend, format_checks


@pytest.fixture()
def srv() -> Iterator[FakeOpenAIServer]:
    with FakeOpenAIServer(model="Qwen/Qwen3-VL-4B-Instruct") as server:
        yield server


def openai_settings(base_url: str, **kwargs) -> Settings:
    return Settings(backend="openai", openai_base_url=base_url, openai_timeout_s=5, **kwargs)


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def by_name(checks: list[Check]) -> dict[str, Check]:
    return {c.name: c for c in checks}


def test_all_ok_against_the_fake_server(srv):
    checks = check_backend(openai_settings(srv.base_url,
                                           openai_model="Qwen/Qwen3-VL-4B-Instruct"))
    named = by_name(checks)
    assert list(named) == ["server reachable", "model listed", "accepts an image",
                           "round-trip latency"]
    assert all_ok(checks), format_checks(checks)
    assert named["server reachable"].latency_ms is not None
    assert named["accepts an image"].latency_ms > 0
    # the image check really sent one 64x64 image with a small token budget
    record = srv.requests[-1]
    assert record.image_sizes == [(64, 64)] and record.present == [True]
    assert record.body["max_tokens"] == 5
    assert "red square" in named["accepts an image"].detail
    json.dumps([c.to_dict() for c in checks])  # serialisable for the API/CLI


def test_no_model_configured_uses_the_first_listed(srv):
    named = by_name(check_backend(openai_settings(srv.base_url)))
    assert named["model listed"].ok
    assert "Qwen/Qwen3-VL-4B-Instruct" in named["model listed"].detail


def test_closed_port_fails_clearly():
    port = closed_port()
    checks = check_backend(openai_settings(f"http://127.0.0.1:{port}/v1"))
    named = by_name(checks)
    assert not all_ok(checks)
    reach = named["server reachable"]
    assert not reach.ok
    assert f"127.0.0.1:{port}" in reach.detail and "not reachable" in reach.detail
    assert "vllm serve" in reach.detail
    assert named["accepts an image"].detail.startswith("skipped")
    assert "[FAIL] server reachable" in format_checks(checks)


def test_model_not_served_is_named_with_the_alternatives(srv):
    named = by_name(check_backend(openai_settings(srv.base_url, openai_model="qwen3-vl-plus")))
    assert not named["model listed"].ok
    assert "Qwen/Qwen3-VL-4B-Instruct" in named["model listed"].detail
    assert "VIDGROUND_OPENAI_MODEL" in named["model listed"].detail
    assert not named["accepts an image"].ok


def test_server_rejecting_images_fails_with_its_message(srv):
    srv.configure(fail_status=400, fail_message="At most 0 image(s) may be provided")
    named = by_name(check_backend(openai_settings(srv.base_url)))
    assert named["server reachable"].ok and named["model listed"].ok
    image = named["accepts an image"]
    assert not image.ok
    assert "HTTP 400: At most 0 image(s) may be provided" in image.detail
    assert "--limit-mm-per-prompt" in image.detail
    assert srv.chat_count == 1  # no retries in the doctor


def test_wrong_api_key_fails_clearly(srv):
    srv.configure(api_key="right")
    named = by_name(check_backend(openai_settings(srv.base_url, openai_api_key="wrong")))
    assert not named["server reachable"].ok
    assert "401" in named["server reachable"].detail


def test_unknown_backend():
    checks = check_backend(Settings(backend="tensorflow"))
    assert checks == [Check("backend", False, checks[0].detail)]
    assert "VIDGROUND_BACKEND" in checks[0].detail


def test_transformers_backend_checks_without_downloading(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    checks = check_backend(Settings(backend="transformers", model="Qwen/Qwen3-VL-2B-Instruct",
                                    device="cpu"))
    named = by_name(checks)
    assert set(named) >= {"torch importable", "transformers importable", "weights found locally"}
    assert named["weights found locally"].ok is False
    assert "Qwen/Qwen3-VL-2B-Instruct" in named["weights found locally"].detail
    if named["torch importable"].ok:
        assert named["device"].ok and named["device"].detail.startswith("cpu")


def test_transformers_weights_in_a_local_directory(tmp_path):
    model_dir = tmp_path / "tiny"
    model_dir.mkdir()
    (model_dir / "config.json").write_text("{}")
    (model_dir / "model.safetensors").write_bytes(b"\0" * 8)
    named = by_name(check_backend(Settings(backend="local", model=str(model_dir),
                                           device="cpu")))
    weights = named["weights found locally"]
    assert weights.ok, weights.detail
    assert str(model_dir) in weights.detail


def test_checks_not_run_are_labelled_skip_not_fail():
    port = closed_port()
    checks = check_backend(openai_settings(f"http://127.0.0.1:{port}/v1"))
    named = by_name(checks)
    assert named["server reachable"].label == "FAIL"
    assert named["model listed"].label == "SKIP" and named["model listed"].skipped
    assert named["accepts an image"].label == "SKIP"
    report = format_checks(checks)
    assert "[SKIP] model listed" in report and "[FAIL] model listed" not in report
    assert not all_ok(checks)  # a skipped check is still not a pass
