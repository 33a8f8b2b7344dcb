"""Library search (issue 27): shot boundaries (TransNetV2, bundled weights, on the CPU) are
indexed as ``shot`` segments when asked (``vidground index --shots``), and found by search.
Its own file: loading torch and the network takes most of its time."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_openai_server import FakeOpenAIServer
from perception_media import Transition, make_perception_video

from vidground.config import Settings
from vidground.grounding import Grounder
from vidground.options import LocateOptions
from vidground.search.engines import open_store
from vidground.search.index import index_paths
from vidground.search.query import search

os.environ.setdefault("VIDGROUND_PERCEPTION_THREADS", "1")


def test_shot_boundaries_are_indexed_when_asked(tmp_path: Path) -> None:
    (tmp_path / "shots").mkdir()
    made = make_perception_video(tmp_path / "shots" / "cut.mp4", frames=50, fps=25,
                                 size=(192, 108), texts=(), speech=(),
                                 transitions=(Transition(25, 25),))
    with FakeOpenAIServer(events={"red square": (255, 0, 0)}) as server, \
            open_store(str(tmp_path / "i.sqlite3")) as store:
        grounder = Grounder(settings=Settings(backend="openai", openai_base_url=server.base_url,
                                              openai_model=server.model, openai_max_retries=0))
        report = index_paths([tmp_path / "shots"], store=store, grounder=grounder,
                             options=LocateOptions(frame_sampling_rate=2.0),
                             sources=("event", "shot"))
        assert report.indexed and not report.warnings, report.to_dict()
        cut = search(store, "shot change cut", top=5)[0]
    assert cut.source == "shot" and cut.text == "shot change (cut)"
    assert cut.video == os.path.realpath(made.path)
    assert cut.start == cut.end == pytest.approx(25 / 25, abs=1e-6)
