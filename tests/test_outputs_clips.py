"""Clips: ``exact`` clips start and end on the span's frames (painted frame numbers), last as
long as the span to within a frame, and keep the audio in sync (a tone at a known time);
``fast`` clips start at the keyframe before the span and say how much earlier; what cannot be
stream-copied is re-encoded with a note; ``vidground cut`` as a real subprocess."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from media import (
    ENCODERS,
    _encoder_options,
    draw_frame,
    encoder_available,
    make_video,
    read_painted_index,
)

from vidground.errors import OptionsError
from vidground.outputs.clips import cut, cut_many
from vidground.timecode import Span
from vidground.video.decode import keyframe_times
from vidground.video.probe import probe

TONE = (1.8, 2.6)  # seconds of the source where a 1 kHz tone plays (silence elsewhere)
RATE = 16000


@dataclass(frozen=True)
class Source:
    path: Path
    fps: float

    def frame_at(self, t: float) -> int:
        return int(np.floor(t * self.fps + 1e-6))

    def last_before(self, t: float) -> int:
        return int(np.ceil(t * self.fps - 1e-6)) - 1


def make_toned(path: Path, *, codec: str = "h264", fps: int = 25, seconds: float = 4.0,
               gop: int = 25, bframes: bool = False, rate: int = RATE) -> Source:
    """A test video (painted frame numbers) with an AAC track at ``rate`` Hz: silence, a tone
    during TONE."""
    fmt = {".mkv": "matroska", ".ts": "mpegts"}.get(path.suffix)
    with av.open(str(path), "w", format=fmt) as out:
        video = out.add_stream(ENCODERS[codec], rate=fps,
                               options=_encoder_options(codec, gop, bframes, True))
        video.width, video.height, video.pix_fmt = 160, 120, "yuv420p"
        video.codec_context.gop_size = gop
        video.codec_context.time_base = Fraction(1, fps)
        if codec == "mpeg4":
            video.codec_context.max_b_frames = 0
            video.codec_context.bit_rate = 2_000_000
        audio = out.add_stream("aac", rate=rate)
        audio.codec_context.layout = "mono"
        for i in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(draw_frame((160, 120), i, False, (0, 0, 0)),
                                               format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(video.encode(frame))
        out.mux(video.encode())
        t = np.arange(int(seconds * rate)) / rate
        wave = np.where((t >= TONE[0]) & (t < TONE[1]), 0.5 * np.sin(2 * np.pi * 1000 * t), 0)
        for begin in range(0, len(wave), 1024):
            chunk = np.zeros((1, 1024), np.float32)
            piece = wave[begin:begin + 1024]
            chunk[0, :len(piece)] = piece
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate, frame.pts = rate, begin
            out.mux(audio.encode(frame))
        out.mux(audio.encode())
    return Source(path, float(fps))


def painted(path: Path) -> list[tuple[float, int]]:
    with av.open(str(path)) as f:
        return [(float(fr.time), read_painted_index(fr.to_ndarray(format="rgb24")))
                for fr in f.decode(video=0)]


def tone_onset(path: Path) -> float:
    """When the tone starts in ``path`` (seconds on the clip's clock, video's first frame 0)."""
    with av.open(str(path)) as f:
        video_start = float(f.streams.video[0].start_time * f.streams.video[0].time_base)
        for frame in f.decode(audio=0):
            samples = frame.to_ndarray().reshape(-1)
            loud = np.flatnonzero(np.abs(samples) > 0.1)
            if loud.size:
                return float(frame.time) + loud[0] / frame.sample_rate - video_start
    raise AssertionError("no tone in the clip")


@pytest.fixture(scope="module")
def toned(tmp_path_factory: pytest.TempPathFactory) -> Source:
    return make_toned(tmp_path_factory.mktemp("clips") / "toned.mp4")


@pytest.mark.parametrize("span", [Span(1.5, 2.3), Span(1.53, 2.91), Span(0.0, 0.5),
                                  Span(1.48, 2.32)])
def test_exact_clip_shows_the_span_frames_with_audio_in_sync(toned: Source, tmp_path: Path,
                                                             span: Span) -> None:
    clip = cut(toned.path, span, tmp_path / "clip.mp4")
    frames = painted(clip.path)
    assert frames[0][1] == toned.frame_at(span.start)
    assert frames[-1][1] == toned.last_before(span.end)
    assert [n for _, n in frames] == list(range(frames[0][1], frames[-1][1] + 1))
    # the clip is the whole frames that show the span: on frame boundaries it lasts exactly
    # as long as the span, otherwise less than one frame longer at either end
    info = probe(clip.path)
    covered = (frames[-1][1] + 1 - frames[0][1]) / toned.fps
    assert info.duration == pytest.approx(covered, abs=1e-3)
    assert info.duration == pytest.approx(clip.end - clip.start, abs=1e-3)
    assert span.duration <= info.duration + 1e-3 < span.duration + 2 / toned.fps
    assert clip.mode == "exact" and clip.has_audio and info.has_audio
    assert clip.start == pytest.approx(toned.frame_at(span.start) / toned.fps)
    if span.start < TONE[0] < span.end:
        assert tone_onset(clip.path) == pytest.approx(TONE[0] - clip.start, abs=1 / toned.fps)


def audio_of(path: Path) -> tuple[np.ndarray, int, float]:
    """The clip's decoded audio (mono samples), its rate, and when it starts on the clip's
    clock (video's first frame 0)."""
    with av.open(str(path)) as f:
        video_start = float(f.streams.video[0].start_time * f.streams.video[0].time_base)
        frames = list(f.decode(audio=0))
    samples = np.concatenate([fr.to_ndarray().reshape(len(fr.layout.channels), -1)[0]
                              for fr in frames])
    return samples, frames[0].sample_rate, float(frames[0].time) - video_start


@pytest.mark.skipif(not encoder_available("libopus") or not encoder_available("libvpx-vp9"),
                    reason="needs FFmpeg's libopus and libvpx-vp9 encoders")
def test_audio_at_another_rate_is_resampled_to_the_encoders(tmp_path: Path) -> None:
    """A 44.1 kHz source cut into WebM: Opus takes 48 kHz, so the clip's audio is resampled
    (PyAV's resampler, in the encoder's 960-sample frames). The clip's audio lasts as long as
    its picture, holds the tone at its place and is silent where the source is."""
    source = make_toned(tmp_path / "cd.mp4", rate=44100)
    assert probe(source.path).has_audio
    span = Span(1.5, 3.0)
    clip = cut(source.path, span, tmp_path / "clip.webm")
    assert clip.has_audio
    samples, rate, begins = audio_of(clip.path)
    assert rate == 48000
    duration = clip.end - clip.start
    # Opus frames are 20 ms: the last one may be padded up to a frame
    assert duration - 1e-3 <= begins + len(samples) / rate <= duration + 0.021
    tone = (TONE[0] - clip.start, TONE[1] - clip.start)
    t = begins + np.arange(len(samples)) / rate
    during = samples[(t > tone[0] + 0.05) & (t < tone[1] - 0.05)]
    outside = samples[(t < tone[0] - 0.05) | (t > tone[1] + 0.05)]
    assert np.sqrt(np.mean(during ** 2)) > 0.2  # a 0.5 sine: RMS 0.35, not silent
    assert np.sqrt(np.mean(outside ** 2)) < 0.02
    # the tone's pitch survived: 1 kHz at the new rate (a resampling that kept 44.1 kHz
    # samples at 48 kHz would play it at 1088 Hz)
    spectrum = np.abs(np.fft.rfft(during))
    assert np.fft.rfftfreq(len(during), 1 / rate)[int(np.argmax(spectrum))] == pytest.approx(
        1000, abs=10)
    assert tone_onset(clip.path) == pytest.approx(tone[0], abs=1 / source.fps)


def test_a_span_on_frame_boundaries_gives_a_clip_of_its_duration(toned: Source,
                                                                  tmp_path: Path) -> None:
    span = Span(1.48, 2.32)  # frames 37..57, what refinement returns
    clip = cut(toned.path, span, tmp_path / "aligned.mp4")
    assert probe(clip.path).duration == pytest.approx(span.duration, abs=1 / toned.fps)
    assert clip.frames == 21


def test_padding_widens_the_clip_inside_the_video(toned: Source, tmp_path: Path) -> None:
    clip = cut(toned.path, Span(0.2, 3.8), tmp_path / "padded.mp4", pad=0.5)
    assert clip.span == Span(0.0, 4.0)
    frames = painted(clip.path)
    assert (frames[0][1], frames[-1][1]) == (0, 99)


def test_fast_clip_starts_at_the_keyframe_before(tmp_path: Path) -> None:
    source = make_toned(tmp_path / "gop.mp4", gop=25, bframes=True)
    span = Span(1.5, 2.3)
    clip = cut(source.path, span, tmp_path / "fast.mp4", mode="fast")
    assert clip.mode == "fast" and clip.note is None
    assert clip.starts_earlier_s == pytest.approx(0.5)
    frames = painted(clip.path)
    assert frames[0][1] == 25  # the keyframe at 1.0 s
    assert frames[-1][1] >= source.last_before(span.end)
    assert tone_onset(clip.path) == pytest.approx(TONE[0] - 1.0, abs=1 / source.fps)


@pytest.mark.parametrize(("name", "codec"), [("vp9.mkv", "vp9"), ("h264.ts", "h264"),
                                             ("mpeg4.mov", "mpeg4")])
def test_other_containers_cut_exact_and_fast(tmp_path: Path, name: str, codec: str) -> None:
    source = make_toned(tmp_path / name, codec=codec, gop=25)
    span = Span(1.5, 2.3)
    exact = cut(source.path, span, tmp_path / f"exact{Path(name).suffix}")
    frames = painted(exact.path)
    assert (frames[0][1], frames[-1][1]) == (37, 57)
    fast = cut(source.path, span, tmp_path / f"fast{Path(name).suffix}", mode="fast")
    assert fast.mode == "fast", fast.note
    assert painted(fast.path)[0][1] == 25
    assert probe(fast.path).has_audio


@pytest.mark.parametrize(("name", "options", "copies"), [
    ("hevc.mp4", {"codec": "hevc", "bframes": True}, True),
    ("mpeg2.ts", {"codec": "mpeg2", "bframes": True}, True),  # open GOP: key after B-frames
    ("mjpeg.avi", {"codec": "mjpeg"}, True),
    ("prores.mov", {"codec": "prores"}, True),
    ("h264.flv", {"codec": "h264"}, True),
    ("rotated.mp4", {"codec": "h264", "rotation": 90}, True),
    ("late_start.mkv", {"codec": "h264", "start_time": 2.0}, True),
    ("h264_bframes.avi", {"codec": "h264", "bframes": True}, False),  # AVI: no pts to copy
    ("av1.mkv", {"codec": "av1"}, False),  # PyAV has no template for libdav1d's streams
])
def test_codecs_and_containers(tmp_path: Path, name: str, options: dict[str, object],
                               copies: bool) -> None:
    if not encoder_available(str(options["codec"])):
        pytest.skip(f"this FFmpeg cannot encode {options['codec']}")
    made = make_video(tmp_path / name, duration=3.0, fps=25, gop=25, **options)  # type: ignore[arg-type]
    span = Span(1.5, 2.3)
    exact = painted(cut(made.path, span, tmp_path / f"exact_{name}").path)
    assert (exact[0][1], exact[-1][1]) == (37, 57)
    fast = cut(made.path, span, tmp_path / f"fast_{name}", mode="fast")
    frames = painted(fast.path)
    if copies:
        key = max(k for k in keyframe_times(made.path) or [] if k <= span.start + 1e-6)
        assert fast.mode == "fast" and fast.note is None
        assert fast.starts_earlier_s == pytest.approx(span.start - key, abs=1e-6)
        assert frames[0][1] == made.frame_at(key)
        assert frames[-1][1] >= 57
    else:
        assert fast.mode == "exact" and fast.note and "re-encoded instead of copied" in fast.note
        assert (frames[0][1], frames[-1][1]) == (37, 57)


def test_exact_clip_of_a_variable_frame_rate_video(tmp_path: Path) -> None:
    made = make_video(tmp_path / "vfr.mkv", duration=3.0, fps=25, vfr=True)
    span = Span(0.9, 1.7)
    clip = cut(made.path, span, tmp_path / "vfr_clip.mkv")
    frames = painted(clip.path)
    first, last = made.frame_at(span.start), made.frame_at(span.end - 1e-4)
    assert (frames[0][1], frames[-1][1]) == (first, last)
    # frame times keep their irregular spacing
    expected = [made.times[i] - made.times[first] for i in range(first, last + 1)]
    assert [t for t, _ in frames] == pytest.approx(expected, abs=2e-3)


def test_what_cannot_be_copied_is_re_encoded_with_a_note(tmp_path: Path) -> None:
    made = make_video(tmp_path / "clip.mp4", duration=3.0, fps=25)
    webm = cut(made.path, Span(1.0, 2.0), tmp_path / "out.webm", mode="fast")
    assert webm.mode == "exact" and "WebM cannot hold h264" in (webm.note or "")
    assert painted(webm.path)[0][1] == 25
    raw = make_video(tmp_path / "raw.h264", container="h264", duration=3.0, fps=25)
    clip = cut(raw.path, Span(1.5, 2.0), tmp_path / "raw.mp4", mode="fast")
    assert clip.mode == "exact" and "keyframes are not known" in (clip.note or "")
    frames = painted(clip.path)
    assert (frames[0][1], frames[-1][1]) == (37, 49)


def test_bad_requests_are_clear_errors(toned: Source, tmp_path: Path) -> None:
    with pytest.raises(OptionsError, match="after the end of the video"):
        cut(toned.path, Span(10.0, 11.0), tmp_path / "x.mp4")
    with pytest.raises(OptionsError, match="cannot write a clip as .gif"):
        cut(toned.path, Span(1.0, 2.0), tmp_path / "x.gif")
    with pytest.raises(OptionsError, match="--pad"):
        cut(toned.path, Span(1.0, 2.0), tmp_path / "x.mp4", pad=-1)


def test_cut_many_names_clips_by_span(toned: Source, tmp_path: Path) -> None:
    clips = cut_many(toned.path, [Span(0.5, 1.0), Span(2.0, 2.5)], tmp_path / "out")
    assert [c.path.name for c in clips] == ["toned_clip01_00-00-00.500.mp4",
                                            "toned_clip02_00-00-02.000.mp4"]


def test_cli_cut_from_a_result_and_from_spans(toned: Source, tmp_path: Path) -> None:
    result = {"segments": [{"start": 0.5, "end": 1.0}, {"start": 2.0, "end": 2.5}],
              "video": {"duration": 4.0, "fps": 25.0}}
    (tmp_path / "r.json").write_text(json.dumps(result))
    out = subprocess.run([sys.executable, "-m", "vidground", "cut", str(toned.path), "--from",
                          "r.json", "--span", "00:00:01.500-00:00:02.300", "--fast", "--json",
                          "--out", "clips"], capture_output=True, text=True, timeout=120,
                         cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    clips = json.loads(out.stdout)
    assert [c["mode"] for c in clips] == ["fast"] * 3
    assert [c["starts_earlier_s"] for c in clips] == [0.5, 0.5, 0.0]
    assert "starts 0.500 s before the span (keyframe)" in out.stderr
    assert all((tmp_path / "clips" / Path(c["path"]).name).exists() for c in clips)
    bad = subprocess.run([sys.executable, "-m", "vidground", "cut", str(toned.path), "--span",
                          "3-2"], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert bad.returncode == 2 and "ends before it starts" in bad.stderr


# -- issue 21 ----------------------------------------------------------------------------------

def _painted(path: Path) -> list[int]:
    with av.open(str(path)) as container:
        return [read_painted_index(f.to_ndarray(format="rgb24"))
                for f in container.decode(video=0)]


@pytest.mark.parametrize("mode", ["fast", "exact"])
def test_a_clip_of_one_instant_holds_that_instant(tmp_path: Path, mode: str) -> None:
    """Issue 21 item 13: a fast clip of 5.0-5.0 on a video whose only keyframe is at 0 held
    frame 0 alone while it claimed 0.0-5.0. It holds the frame shown at 5.0 (50 at 10 fps),
    and start, end and frames state what the file holds."""
    made = make_video(tmp_path / "a.mp4", duration=8.0, fps=10, gop=1000)
    clip = cut(made.path, Span(5.0, 5.0), tmp_path / f"{mode}.mp4", mode=mode)
    painted = _painted(clip.path)
    assert painted[-1] == 50 and len(painted) == clip.frames
    assert painted[0] == round(clip.start * 10)
    assert clip.start == (0.0 if mode == "fast" else 5.0)
    assert clip.end == pytest.approx(5.1) and clip.note is None


def test_fast_clip_states_the_end_the_file_holds(tmp_path: Path) -> None:
    made = make_video(tmp_path / "a.mp4", duration=4.0, fps=10, gop=10)
    clip = cut(made.path, Span(1.0, 1.25), tmp_path / "c.mp4", mode="fast")
    painted = _painted(clip.path)
    assert painted == list(range(10, 13)) and clip.frames == 3
    assert (clip.start, clip.end) == (1.0, pytest.approx(1.3))


def test_a_fast_clip_far_after_its_keyframe_is_re_encoded(tmp_path: Path) -> None:
    """Issue 21 item 5: copying from a keyframe 25 s before a 1 s span wrote 26 s of video per
    clip (twenty such clips: 17 times the source). Past ``MAX_COPY_LEAD_S`` the span is
    re-encoded instead, with a note."""
    made = make_video(tmp_path / "a.mp4", duration=30.0, fps=10, gop=1000)
    clip = cut(made.path, Span(25.0, 26.0), tmp_path / "far.mp4", mode="fast")
    assert (clip.start, clip.end, clip.frames) == (25.0, 26.0, 10)
    assert clip.note is not None and "25.0 s earlier" in clip.note
    near = cut(made.path, Span(8.0, 9.0), tmp_path / "near.mp4", mode="fast")
    assert near.note is None and near.start == 0.0  # within 10 s: copied


def test_a_copy_never_writes_more_than_the_source_holds(tmp_path: Path) -> None:
    """Issue 21 item 5: sample tables that name all of a file's frames as every sample made a
    stream copy write 40 times the file (29 MB from 0.7 MB). The copy stops at the source's
    size and the clip is re-encoded instead, with a note."""
    from media import make_repeated_samples

    made = make_video(tmp_path / "a.mp4", duration=4.0, fps=10, noise=30, gop=10)
    hostile = make_repeated_samples(made.path, tmp_path / "repeated.mp4")
    clip = cut(hostile, Span(0.0, 4.0), tmp_path / "c.mp4", mode="fast")
    assert clip.note is not None and "grew past the source" in clip.note
    assert clip.path.stat().st_size < 3 * hostile.stat().st_size


@pytest.mark.parametrize("mode", ["exact", "fast"])
def test_a_damaged_audio_track_is_left_out(tmp_path: Path, mode: str) -> None:
    """Issue 21 item 10: an audio track whose ``minf`` box is renamed (no codec) made every
    clip fail with AttributeError; the picture is cut, without audio."""
    from media import make_patched

    made = make_video(tmp_path / "a.mp4", duration=4.0, fps=10, gop=10, audio=True)
    broken = make_patched(made.path, tmp_path / "b.mp4", b"minf", b"minX", last=True)
    clip = cut(broken, Span(1.0, 2.0), tmp_path / f"{mode}.mp4", mode=mode)
    assert not clip.has_audio and clip.frames == 10
    assert _painted(clip.path) == list(range(10, 20))


def test_pictures_over_the_limit_are_refused_in_clips(tmp_path: Path) -> None:
    from media import make_size_change

    from vidground.errors import VideoTooLargeError

    stream = make_size_change(tmp_path / "grows.h264", [(160, 120), (640, 480)])
    info = probe(stream, max_pixels=320 * 240)
    for mode in ("exact", "fast"):
        with pytest.raises(VideoTooLargeError):
            cut(info, Span(0.5, 1.5), tmp_path / f"{mode}.mp4", mode=mode)  # type: ignore[arg-type]
        assert not (tmp_path / f"{mode}.mp4").exists()
