"""Shared fixtures: a fake OpenAI-compatible model that looks at frames, and test videos."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
# the frame/feature cache is on by default: keep the suite's entries out of ~/.vidground
os.environ.setdefault("VIDGROUND_CACHE_DIR", tempfile.mkdtemp(prefix="vidground-test-cache-"))

from fake_openai_server import FakeOpenAIServer  # noqa: E402

from vidground.config import Settings  # noqa: E402
from vidground.grounding import Grounder  # noqa: E402

_SLOW_LIST = Path(__file__).with_name("slow_tests.txt")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark 'slow' the tests measured at 1 s or more (tests/slow_tests.txt, written by
    scripts/mark-slow.sh from a full run's durations), so ``pytest -m "not slow"`` is the fast
    subset; tests marked by hand keep their mark."""
    slow = {line.strip() for line in _SLOW_LIST.read_text().splitlines()
            if line.strip() and not line.startswith("#")}
    for item in items:
        if item.nodeid in slow:
            item.add_marker(pytest.mark.slow)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """With ``VIDGROUND_NO_SKIPS=1`` (set by scripts/test.sh, so in CI) a skipped test fails:
    the suite cannot go green by skipping what it could not run."""
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("VIDGROUND_NO_SKIPS") == "1":
        report.outcome = "failed"
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.longrepr = f"skipped, but VIDGROUND_NO_SKIPS=1 forbids skips: {reason}"


@pytest.fixture()
def browser() -> Iterator[Any]:
    """Headless Chromium through Playwright (tests/support/browser.py), a fresh one for each
    test: a Chromium kept across a module's tests once hung at 100 % CPU (its zygote) after the
    first test's context closed, and a fresh browser costs about a second."""
    from browser import chromium

    with chromium() as b:
        yield b


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeOpenAIServer]:
    """One fake model server for the session; tests that change its knobs must reset them."""
    with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as server:
        yield server


@pytest.fixture()
def fake_grounder(fake_model: FakeOpenAIServer) -> Grounder:
    """A Grounder whose backend is the real OpenAI-compatible client talking to the fake."""
    fake_model.configure(delay_s=0.0, answer=None)
    settings = Settings(backend="openai", openai_base_url=fake_model.base_url,
                        openai_model=fake_model.model, openai_max_retries=0)
    return Grounder(settings=settings)
