"""probe(): facts of real encoded videos, and clear errors for bad inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from media import (
    encoder_available,
    make_audio_only,
    make_empty,
    make_garbage,
    make_text_file,
    make_truncated,
    make_video,
)

from vidground.errors import VideoError, VideoNotFoundError, VideoTooLargeError
from vidground.video.probe import probe

CASES = [("h264", "mp4"), ("h264", "mov"), ("h264", "mkv"), ("h264", "avi"), ("hevc", "mp4"),
         ("hevc", "mkv"), ("vp9", "webm"), ("vp9", "mkv"), ("mpeg4", "avi"), ("mpeg4", "mp4")]


def _needs(codec: str) -> None:
    if not encoder_available(codec):
        pytest.skip(f"PyAV's FFmpeg build has no {codec} encoder")


@pytest.mark.parametrize(("codec", "container"), CASES)
def test_probe_facts(tmp_path: Path, codec: str, container: str) -> None:
    _needs(codec)
    made = make_video(tmp_path / f"v.{container}", codec=codec, duration=3.0, fps=25,
                      size=(160, 120))
    info = probe(made.path)
    assert info.codec == codec
    assert info.container in (container, "matroska")
    assert (info.width, info.height) == (160, 120)
    assert info.fps == pytest.approx(25.0)
    assert info.duration == pytest.approx(3.0, abs=0.05)
    assert info.frame_count == 75
    assert info.start_time == pytest.approx(0.0, abs=1e-6)
    assert info.rotation == 0
    assert info.has_audio is False
    assert info.bit_rate is None or info.bit_rate > 0
    assert info.path == str(made.path)


def test_probe_audio_track_and_summary(tmp_path: Path) -> None:
    made = make_video(tmp_path / "a.mp4", audio=True, duration=2.0)
    info = probe(made.path)
    assert info.has_audio is True
    assert info.summary() == {"duration": pytest.approx(2.0, abs=0.05), "fps": 25.0,
                              "width": 160, "height": 120}


@pytest.mark.parametrize("container", ["mp4", "mkv", "mov"])
def test_probe_start_time(tmp_path: Path, container: str) -> None:
    made = make_video(tmp_path / f"s.{container}", start_time=10.0, duration=2.0, bframes=True)
    info = probe(made.path)
    assert info.start_time == pytest.approx(10.0, abs=1e-3)
    assert info.duration == pytest.approx(2.0, abs=0.05)


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_probe_rotation(tmp_path: Path, rotation: int) -> None:
    made = make_video(tmp_path / "r.mp4", rotation=rotation, duration=1.0)
    info = probe(made.path)
    assert info.rotation == rotation
    expected = (120, 160) if rotation % 180 == 90 else (160, 120)
    assert info.display_size == expected


def test_probe_vfr(tmp_path: Path) -> None:
    made = make_video(tmp_path / "vfr.mp4", vfr=True, duration=3.0)
    info = probe(made.path)
    end = made.times[-1] + (made.times[-1] - made.times[-2])
    assert info.duration == pytest.approx(end, abs=0.1)
    assert info.frame_count == len(made.times)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(VideoNotFoundError, match="No such video file"):
        probe(tmp_path / "nope.mp4")


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="directory"):
        probe(tmp_path)


@pytest.mark.parametrize("suffix", [".m4a", ".wav", ".mp3"])
def test_audio_only(tmp_path: Path, suffix: str) -> None:
    path = make_audio_only(tmp_path / f"sound{suffix}")
    with pytest.raises(VideoError, match=r"no video stream \(audio only\)"):
        probe(path)


def test_empty_file(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="empty"):
        probe(make_empty(tmp_path / "empty.mp4"))


def test_text_named_mp4(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="not a video file"):
        probe(make_text_file(tmp_path / "notes.mp4"))


def test_random_bytes(tmp_path: Path) -> None:
    with pytest.raises(VideoError):
        probe(make_garbage(tmp_path / "noise.mkv"))


@pytest.mark.parametrize("keep", [0.05, 0.3, 0.9])
def test_truncated_mp4(tmp_path: Path, keep: float) -> None:
    made = make_video(tmp_path / "full.mp4", duration=2.0)
    cut = make_truncated(made.path, tmp_path / "cut.mp4", keep=keep)
    with pytest.raises(VideoError) as caught:
        probe(cut)
    assert caught.value.message and "cut.mp4" in caught.value.message


def test_too_large(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", duration=0.4)
    with pytest.raises(VideoTooLargeError, match="160x120"):
        probe(made.path, max_pixels=100 * 100)


@pytest.mark.parametrize(("codec", "fps"), [("h264", 30.0), ("hevc", 24.0),
                                            ("h264", 30000 / 1001)])
def test_raw_elementary_stream_is_timed_by_its_frame_rate(tmp_path: Path, codec: str,
                                                          fps: float) -> None:
    """A raw stream has no timestamps and no duration: frames are counted, shown at i / fps
    (the rate written in the bitstream, not the demuxer's default 25)."""
    made = make_video(tmp_path / f"dump.{codec}", codec=codec, fps=fps, duration=2.0,
                      bframes=True, gop=12)
    info = probe(made.path)
    assert info.frame_count == len(made.times) == round(2.0 * fps)
    assert info.fps == pytest.approx(fps, rel=1e-6)
    assert info.duration == pytest.approx(len(made.times) / fps, abs=1e-6)
    assert info.start_time == 0.0


@pytest.mark.parametrize("container", ["mpg", "ts"])
def test_mpeg_stream_duration_is_read_not_estimated(tmp_path: Path, container: str) -> None:
    """FFmpeg's duration estimate for a 4 s MPEG-2 program stream with B-frames said 3.8 s:
    the last frames would never be sampled."""
    made = make_video(tmp_path / f"dvd.{container}", codec="mpeg2", duration=4.0, fps=25,
                      bframes=True, gop=12)
    info = probe(made.path)
    assert info.duration == pytest.approx(4.0, abs=1e-6)
    assert info.frame_count == 100


# -- issue 21: pictures held to the limit, damaged metadata -----------------------------------

# VmHWM, not ru_maxrss: a child's ru_maxrss keeps the parent's peak from before its exec
PEAK_RSS = """
import re, sys
from vidground.errors import VideoTooLargeError
from vidground.video.probe import probe
try:
    probe(sys.argv[1], max_pixels=int(sys.argv[2]))
except VideoTooLargeError as exc:
    print("refused:", exc.message)
print(re.search(r"VmHWM:\\s*(\\d+)", open("/proc/self/status").read()).group(1))
"""


def _declared_huge_png(folder: Path) -> Path:
    from media import make_png_mov

    return make_png_mov(folder / "huge.mov", [(12000, 12000)] * 2)


def _declared_big_h264_in_mpeg_ps(folder: Path) -> Path:
    """MPEG-PS lists no streams before FFmpeg's analysis, so PyAV cannot hand that analysis
    ``max_pixels``: only the decoder-free look at the declared size saves the decode."""
    return make_video(folder / "big.mpg", duration=0.2, fps=10, size=(4000, 4000),
                      paint_index=False, intervals=()).path


@pytest.mark.parametrize(("make", "limit", "size", "most_mb"), [
    (_declared_huge_png, 8192 * 8192, "12000x12000", 250),  # was about 480 MB
    (_declared_big_h264_in_mpeg_ps, 640 * 480, "4000x4000", 110),  # was about 137 MB
])
def test_a_declared_huge_video_is_refused_without_decoding(
        tmp_path: Path, make: Any, limit: int, size: str, most_mb: int) -> None:
    """Issue 21 item 4: a 0.9 MB MOV of 12000 x 12000 PNG pictures was refused (413) only after
    its first picture was decoded (about 415 MB); the declared size is checked first now."""
    import subprocess
    import sys

    movie = make(tmp_path)
    out = subprocess.run([sys.executable, "-c", PEAK_RSS, str(movie), str(limit)],
                         capture_output=True, text=True, timeout=120, check=True
                         ).stdout.splitlines()
    assert out[0].startswith("refused:") and size in out[0]
    peak_mb = int(out[-1]) / 1024
    assert peak_mb < most_mb, f"probing took {peak_mb:.0f} MB"


def test_every_picture_is_held_to_the_limit_not_the_first_only(tmp_path: Path) -> None:
    """Issue 21 item 3: a first picture of 64 x 64, then larger ones: each PNG states its own
    size, so the file is refused at probe (it was accepted, then decoded at full size)."""
    from media import make_png_mov

    movie = make_png_mov(tmp_path / "later.mov", [(64, 64), (64, 64), (400, 300), (64, 64)])
    assert probe(movie).width == 64  # within the default limit: fine
    with pytest.raises(VideoTooLargeError, match=r"400x300 picture at 2\.000s.*40000 pixels"):
        probe(movie, max_pixels=200 * 200)


def test_a_jpeg_header_claiming_a_huge_picture_is_refused(tmp_path: Path) -> None:
    from media import jpeg_claiming, make_picture_mov

    movie = make_picture_mov(tmp_path / "claims.mov", [jpeg_claiming(16, 16),
                                                       jpeg_claiming(9000, 9000)], (16, 16),
                             codec="mjpeg")
    with pytest.raises(VideoTooLargeError, match="9000x9000"):
        probe(movie)


def test_a_picture_of_exactly_the_limit_is_accepted(tmp_path: Path) -> None:
    """FFmpeg counts a picture's aligned row width; the limit itself is still exact."""
    made = make_video(tmp_path / "a.mp4", duration=1.0, size=(160, 120))
    assert probe(made.path, max_pixels=160 * 120).max_pixels == 160 * 120
    with pytest.raises(VideoTooLargeError):
        probe(made.path, max_pixels=160 * 120 - 1)


def test_a_damaged_audio_track_does_not_count_as_audio(tmp_path: Path) -> None:
    """Issue 21 item 10: an MP4 whose audio track's ``minf`` box is renamed has a video that
    plays and an audio track nothing can decode."""
    from media import make_patched

    made = make_video(tmp_path / "a.mp4", duration=2.0, audio=True)
    assert probe(made.path).has_audio
    broken = make_patched(made.path, tmp_path / "b.mp4", b"minf", b"minX", last=True)
    info = probe(broken)
    assert not info.has_audio and info.duration == pytest.approx(2.0, abs=0.05)
