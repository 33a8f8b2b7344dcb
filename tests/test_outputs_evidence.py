"""Evidence frames: each span's first, middle and last frame as JPEGs that show the frames
on screen at those times (painted frame numbers), a contact sheet, and ``vidground locate
--export ... --evidence DIR`` as a real subprocess against the fake model server."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import srt
from fake_openai_server import FakeOpenAIServer
from media import make_video, read_painted_index
from PIL import Image

from vidground.errors import OptionsError
from vidground.outputs.evidence import (
    contact_sheet,
    evidence_frames,
    evidence_times,
    write_evidence,
)
from vidground.timecode import Span


def test_evidence_times_are_start_middle_and_just_before_the_end() -> None:
    assert evidence_times(Span(1.0, 2.0)) == [("first", 1.0), ("middle", 1.5),
                                              ("last", pytest.approx(1.9999))]
    assert evidence_times(Span(3.0, 3.0)) == [("first", 3.0)]


@pytest.mark.parametrize("vfr", [False, True])
def test_evidence_jpegs_show_the_frames_at_their_times(tmp_path: Path, vfr: bool) -> None:
    made = make_video(tmp_path / "v.mkv", duration=3.0, fps=25, vfr=vfr, start_time=0.5)
    spans = [Span(1.0, 2.0, "red square"), Span(0.31, 1.27), Span(2.5, 2.5)]
    frames, sheet = write_evidence(made.path, spans, tmp_path / "ev", title="q")
    assert [(f.span_index, f.role) for f in frames] == [
        (1, "first"), (1, "middle"), (1, "last"), (2, "first"), (2, "middle"), (2, "last"),
        (3, "first")]
    for frame in frames:
        index = made.frame_at(frame.time)
        assert frame.path is not None and frame.path.suffix == ".jpg"
        assert read_painted_index(np.asarray(Image.open(frame.path))) == index
        assert frame.frame_time == pytest.approx(made.times[index], abs=1e-6)
        assert frame.frame_time <= frame.time + 1e-6
    for last in (frames[2], frames[5]):  # the last frame shown before the span's end
        index = made.frame_at(last.time)
        assert made.times[index] < last.span.end <= made.times[index + 1] + 1e-6
    assert frames[0].path.name == f"span01_first_00-00-0{frames[0].frame_time:.3f}.jpg"
    assert sheet is not None and sheet.name == "contact_sheet.jpg"
    with Image.open(sheet) as picture:
        width, height = picture.size
    assert width > 3 * 240 and height > 3 * 180  # three rows of three thumbnails


def test_contact_sheet_is_a_picture_with_a_row_per_span(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", duration=2.0, fps=10)
    frames = evidence_frames(made.path, [Span(0.2, 0.8), Span(1.0, 1.6)], width=80)
    assert all(f.image.shape[1] == 80 for f in frames)
    one = contact_sheet(frames[:3], thumb_width=100)
    two = contact_sheet(frames, thumb_width=100)
    assert one.width == two.width and two.height > one.height
    with pytest.raises(OptionsError, match="no evidence frames"):
        contact_sheet([])


def test_locate_exports_and_writes_evidence(tmp_path: Path,
                                            fake_model: FakeOpenAIServer) -> None:
    fake_model.configure(delay_s=0.0, answer=None)
    made = make_video(tmp_path / "clip.mp4", duration=4.0, fps=25, intervals=[(1.0, 2.0)])
    out = subprocess.run(
        [sys.executable, "-m", "vidground", "locate", str(made.path),
         "When is the red square visible?", "--backend", "openai", "--openai-base-url",
         fake_model.base_url, "--export", "srt", "--export", "edl:cut.edl", "--evidence", "ev",
         "-q"], capture_output=True, text=True, timeout=180, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[0] == "00:00:01.000 - 00:00:02.000"
    sub = next(srt.parse((tmp_path / "clip.srt").read_text()))
    assert (sub.start.total_seconds(), sub.end.total_seconds()) == (1.0, 2.0)
    assert sub.content == "When is the red square visible?"
    assert "00:00:01:00 00:00:02:00" in (tmp_path / "cut.edl").read_text()
    jpegs = sorted(p.name for p in (tmp_path / "ev").iterdir())
    assert jpegs == ["contact_sheet.jpg", "span01_first_00-00-01.000.jpg",
                     "span01_last_00-00-01.960.jpg", "span01_middle_00-00-01.480.jpg"]
    last = np.asarray(Image.open(tmp_path / "ev" / "span01_last_00-00-01.960.jpg"))
    assert read_painted_index(last) == 49
