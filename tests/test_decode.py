"""decode_frames(): the frame displayed at each time, with its true timestamp, everywhere."""

from __future__ import annotations

import random
import threading
from pathlib import Path

import pytest
from media import (
    MadeVideo,
    encoder_available,
    make_truncated,
    make_video,
    object_visible,
    read_painted_index,
)

from vidground.errors import VideoError
from vidground.video.decode import DecodeRun, decode_frames, iter_frames, plan_decode
from vidground.video.probe import probe

CASES = [
    ("h264", "mp4", {}), ("h264", "mov", {}), ("h264", "mkv", {}), ("h264", "avi", {}),
    ("hevc", "mp4", {}), ("hevc", "mkv", {}), ("vp9", "webm", {}), ("vp9", "mp4", {}),
    ("mpeg4", "avi", {}), ("mpeg4", "mp4", {}),
    ("h264", "mp4", {"bframes": True}), ("h264", "mkv", {"bframes": True}),
    ("h264", "avi", {"bframes": True}), ("hevc", "mp4", {"bframes": True}),
    ("mpeg4", "avi", {"bframes": True}), ("h264", "mp4", {"vfr": True}),
    ("vp9", "webm", {"vfr": True}), ("h264", "mkv", {"vfr": True, "bframes": True}),
    ("h264", "mp4", {"start_time": 10.0}), ("h264", "mkv", {"start_time": 10.0, "bframes": True}),
    ("h264", "mov", {"start_time": 3.0, "bframes": True}),
    # MPEG-TS (cameras, broadcast, HLS segments) seeks by dts: with B-frames a keyframe's pts is
    # later than its dts, and seeking to the pts landed in the next GOP
    ("h264", "ts", {}), ("h264", "ts", {"bframes": True}), ("hevc", "ts", {"bframes": True}),
    ("h264", "ts", {"start_time": 10.0, "bframes": True}), ("h264", "flv", {}),
    # raw elementary streams (camera and DVR dumps): no timestamps, no seeking
    ("h264", "h264", {"bframes": True}), ("h264", "h264", {"fps": 32}), ("hevc", "hevc", {}),
    # broadcast and DVD (MPEG-2 with B-frames in TS / program streams), camera MJPEG, editors'
    # ProRes 422 10-bit, AV1
    ("mpeg2", "ts", {"bframes": True}), ("mpeg2", "mpg", {"bframes": True}),
    ("mjpeg", "avi", {}), ("mjpeg", "mov", {}), ("prores", "mov", {}),
    ("av1", "mp4", {}), ("av1", "mkv", {}),
]
PATTERNS = ["dense", "sparse", "random", "keyframes", "unsorted"]


def _times(pattern: str, made: MadeVideo, duration: float, gop: int) -> list[float]:
    rng = random.Random(hash(pattern) & 0xFFFF)
    if pattern == "dense":
        return [i * 0.05 for i in range(int(duration / 0.05) + 3)]
    if pattern == "sparse":
        return [-1.0, 0.3, 1.77, 3.5, 9.0]
    if pattern == "keyframes":
        return [made.times[i] for i in range(0, len(made.times), gop)]
    times = [rng.uniform(-0.1, duration + 0.2) for _ in range(15)]
    return times if pattern == "random" else list(reversed(sorted(times)))


def _check(made: MadeVideo, times: list[float], frames: list) -> None:
    assert len(frames) == len(times)
    for t, frame in zip(times, frames, strict=True):
        expected = made.frame_at(t)
        assert read_painted_index(frame.image) == expected, f"t={t}"
        assert frame.index == expected
        assert frame.time == pytest.approx(made.times[expected], abs=1e-6)
        assert object_visible(frame.image) == (1.0 <= made.times[expected] < 2.0)


@pytest.mark.parametrize("codec", ["h264", "hevc", "mpeg4"])
@pytest.mark.parametrize("fast", [True, False])
def test_test_videos_have_b_frames_exactly_when_asked(tmp_path: Path, codec: str,
                                                      fast: bool) -> None:
    """The B-frame cases above test what they claim (x264 ignores a plain "bframes" option)."""
    import av
    from av.video.frame import PictureType

    for bframes in (False, True):
        made = make_video(tmp_path / f"{bframes}.mp4", codec=codec, gop=12, duration=2.0,
                          bframes=bframes, fast=fast, motion=True)
        with av.open(str(made.path)) as container:
            kinds = {PictureType(f.pict_type).name for f in container.decode(video=0)}
        assert ("B" in kinds) == bframes, (codec, fast, bframes, kinds)


@pytest.mark.parametrize(("codec", "container", "kw"), CASES,
                         ids=[f"{c}-{k}-{'-'.join(o) or 'plain'}" for c, k, o in CASES])
def test_decode_exact(tmp_path: Path, codec: str, container: str, kw: dict) -> None:
    if not encoder_available(codec):
        pytest.skip(f"PyAV's FFmpeg build has no {codec} encoder")
    made = make_video(tmp_path / f"v.{container}", codec=codec, gop=12, duration=4.0, **kw)
    info = probe(made.path)
    for pattern in PATTERNS:
        times = _times(pattern, made, info.duration, 12)
        _check(made, times, decode_frames(info, times, unique=False))


def test_unique_frames_in_request_order(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", gop=10, duration=2.0)
    times = [1.0, 0.0, 1.01, 0.5, 1.0]
    frames = decode_frames(made.path, times)
    assert [read_painted_index(f.image) for f in frames] == [25, 0, 12]
    assert [f.time for f in frames] == pytest.approx([1.0, 0.0, 0.48])
    repeated = decode_frames(made.path, times, unique=False)
    assert len(repeated) == 5 and repeated[0] is repeated[2] is repeated[4]


def test_resize_and_progress(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mkv", gop=25, duration=2.0)
    calls: list[tuple[int, int]] = []
    frames = decode_frames(made.path, [0.2, 0.2, 1.5], size=(320, 224),
                           progress=lambda d, t: calls.append((d, t)))
    assert [f.size for f in frames] == [(320, 224), (320, 224)]
    assert [read_painted_index(f.image) for f in frames] == [5, 37]
    assert calls == [(1, 2), (2, 2)]
    assert frames[0].image.dtype.name == "uint8" and frames[0].image.shape[2] == 3


@pytest.mark.parametrize("rotation", [90, 270])
def test_rotation_applied(tmp_path: Path, rotation: int) -> None:
    made = make_video(tmp_path / "r.mp4", rotation=rotation, duration=1.0)
    [frame] = decode_frames(made.path, [0.4], size=(96, 128))
    assert frame.size == (96, 128)
    [full] = decode_frames(made.path, [0.4])
    assert full.size == (120, 160)
    upright = __import__("numpy").rot90(full.image, k=-rotation // 90)
    assert read_painted_index(upright) == 10


def test_iter_frames_sorted_pairs(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.webm", codec="vp9", gop=20, duration=3.0)
    pairs = list(iter_frames(made.path, [2.0, 0.1, 1.0]))
    assert [t for t, _ in pairs] == [0.1, 1.0, 2.0]
    assert [read_painted_index(f.image) for _, f in pairs] == [2, 25, 50]


def test_truncated_mkv_gives_video_error_or_last_frames(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mkv", gop=10, duration=4.0)
    cut = make_truncated(made.path, tmp_path / "cut.mkv", keep=0.5)
    info = probe(cut)
    frames = decode_frames(info, [0.0, 3.9], unique=False)
    assert read_painted_index(frames[0].image) == 0
    last = read_painted_index(frames[1].image)
    assert 0 < last < 98 and frames[1].time == pytest.approx(made.times[last])


def test_truncated_mp4_raises_video_error(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", duration=2.0)
    cut = make_truncated(made.path, tmp_path / "cut.mp4", keep=0.5)
    with pytest.raises(VideoError):
        decode_frames(cut, [0.5])


def test_bad_times(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", duration=0.4)
    assert decode_frames(made.path, []) == []
    with pytest.raises(ValueError, match="finite"):
        decode_frames(made.path, [float("nan")])


# plan_decode: pure planning


def test_plan_sparse_seeks_each_gop() -> None:
    keys = [0.0, 8.0, 16.0, 24.0]
    runs = plan_decode(keys, [1.0, 17.0, 25.0], frame_duration=1 / 30)
    assert [r.keyframe for r in runs] == [0.0, 16.0, 24.0]
    assert [r.times for r in runs] == [(1.0,), (17.0,), (25.0,)]


def test_plan_dense_decodes_straight_through() -> None:
    keys = [0.0, 2.0, 4.0]
    times = [i / 10 for i in range(60)]
    runs = plan_decode(keys, times, frame_duration=1 / 30)
    assert runs == [DecodeRun(0.0, tuple(times), False)]


def test_plan_gap_just_before_keyframe() -> None:
    keys = [0.0, 1.0]
    near = plan_decode(keys, [0.95, 1.5], frame_duration=0.04)  # 1 frame gap: continue
    far = plan_decode(keys, [0.2, 1.5], frame_duration=0.04)  # 20 frames gap: seek
    assert len(near) == 1 and len(far) == 2


def test_plan_keyframes_only() -> None:
    keys = [0.0, 1.0, 2.0]
    frames = [i * 0.25 for i in range(12)]
    runs = plan_decode(keys, [0.1, 1.2, 2.0], frame_times=frames)
    assert runs == [DecodeRun(0.0, (0.1, 1.2, 2.0), True)]
    mixed = plan_decode(keys, [0.1, 1.3], frame_times=frames)
    assert [r.keyframes_only for r in mixed] == [True, False]


def test_plan_before_first_keyframe_and_empty() -> None:
    assert plan_decode([0.5, 1.0], []) == []
    [run] = plan_decode([0.5, 1.0], [-1.0, 0.1])
    assert run.keyframe == 0.5 and run.times == (-1.0, 0.1)


@pytest.mark.parametrize("threads", [1, 2, 3])
def test_parallel_runs_give_the_same_frames_in_order(tmp_path: Path, threads: int) -> None:
    made = make_video(tmp_path / "v.mp4", gop=10, duration=6.0, bframes=True)
    info = probe(made.path)
    times = [i * 0.37 for i in range(17)] + [5.99, -0.5, 2.0]
    pairs = list(iter_frames(info, times, threads=threads))
    assert [t for t, _ in pairs] == sorted(times)
    for t, frame in pairs:
        assert read_painted_index(frame.image) == made.frame_at(t) == frame.index
        assert frame.time == pytest.approx(made.times[made.frame_at(t)], abs=1e-6)


def test_parallel_decoding_stops_cleanly_when_the_consumer_stops(tmp_path: Path) -> None:
    made = make_video(tmp_path / "v.mp4", gop=5, duration=4.0)
    frames = iter_frames(made.path, [i * 0.3 for i in range(13)], threads=2)
    first = next(frames)
    assert read_painted_index(first[1].image) == 0
    frames.close()  # the pool shuts down, every opened file is closed


def test_stopping_early_joins_the_decode_threads_before_closing_any_file(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A file closed while a worker still decodes from it crashes the process (seen in CI):
    every decoder must be closed only after the worker threads have finished."""
    from vidground.video import decode as decode_module

    live_at_close: list[list[str]] = []
    original_close = decode_module._Decoder.close

    def recording_close(self: decode_module._Decoder) -> None:
        live_at_close.append([t.name for t in threading.enumerate()
                              if t.name.startswith("vidground-decode")])
        original_close(self)

    monkeypatch.setattr(decode_module._Decoder, "close", recording_close)
    made = make_video(tmp_path / "v.mp4", gop=5, duration=4.0)
    frames = iter_frames(made.path, [i * 0.3 for i in range(13)], threads=2)
    next(frames)
    frames.close()
    assert len(live_at_close) >= 2  # the planning decoder and a worker's own
    assert live_at_close == [[]] * len(live_at_close)


def test_decode_threads_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    from vidground.video.decode import decode_threads

    monkeypatch.setenv("VIDGROUND_DECODE_THREADS", "3")
    assert decode_threads() == 3
    monkeypatch.setenv("VIDGROUND_DECODE_THREADS", "many")
    with pytest.raises(ValueError, match="VIDGROUND_DECODE_THREADS"):
        decode_threads()


def test_plan_caps_merged_runs() -> None:
    keys = [float(k) for k in range(10)]
    times = [i / 10 for i in range(100)]
    runs = plan_decode(keys, times, frame_duration=1 / 30, max_run_times=25)
    assert all(len(r.times) <= 25 for r in runs) and len(runs) == 5
    assert [t for r in runs for t in r.times] == times
    assert [r.keyframe for r in runs] == [0.0, 2.0, 4.0, 6.0, 8.0]


def test_the_index_is_scanned_once_per_unchanged_file(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A long video asked in many windows must not re-read every packet for each window; a
    file rewritten in place is scanned again."""
    from vidground.video import decode as decode_module
    from vidground.video import index as index_module

    scans: list[str] = []
    original_scan = index_module.scan

    def counting_scan(container, stream, use_dts=False):  # type: ignore[no-untyped-def]
        scans.append(container.name)
        return original_scan(container, stream, use_dts)

    monkeypatch.setattr(index_module, "scan", counting_scan)
    index_module.clear_cache()
    made = make_video(tmp_path / "v.mp4", gop=5, duration=3.0)
    for window in ([0.1, 0.5], [1.1, 1.5], [2.1, 2.5]):
        frames = decode_frames(made.path, window, threads=2)
        assert [read_painted_index(f.image) for f in frames] == [made.frame_at(t) for t in window]
    assert decode_module.keyframe_times(made.path) == pytest.approx([0.0, 0.2, 0.4, 0.6, 0.8,
                                                                     1.0, 1.2, 1.4, 1.6, 1.8,
                                                                     2.0, 2.2, 2.4, 2.6, 2.8])
    assert len(scans) == 1
    longer = make_video(tmp_path / "v.mp4", gop=5, duration=4.0)  # same path, new content
    assert read_painted_index(decode_frames(longer.path, [3.9])[0].image) == longer.frame_at(3.9)
    assert len(scans) == 2


@pytest.mark.parametrize("container", ["mp4", "mkv", "ts"])
def test_damaged_packets_are_skipped_and_times_stay_true(
        tmp_path: Path, container: str, caplog: pytest.LogCaptureFixture) -> None:
    """A few damaged kilobytes in the middle (a bad sector, a lossy copy) must not make the
    whole video unusable: the decoder skips what it rejects, as players do, and every returned
    frame still carries the true time of a real frame shown at or before the requested time."""
    made = make_video(tmp_path / f"src.{container}", duration=8.0, fps=25, gop=25,
                      bframes=True, motion=True, fast=False)
    data = bytearray(made.path.read_bytes())
    for where in (0.40, 0.55, 0.70):
        start = int(len(data) * where)
        for k in range(start, start + 1500):
            data[k] ^= 0x5A
    damaged = tmp_path / f"damaged.{container}"
    damaged.write_bytes(bytes(data))
    times = [i * 0.25 for i in range(32)]
    with caplog.at_level("WARNING", logger="vidground.video.decode"):
        frames = decode_frames(damaged, times, unique=False)
    assert len(frames) == len(times)
    for t, frame in zip(times, frames, strict=True):
        assert frame.time <= t + 1e-6
        assert min(abs(frame.time - real) for real in made.times) < 1e-6
    # the start of the file is untouched: those frames are exactly right
    assert [read_painted_index(f.image) for f in frames[:8]] == [made.frame_at(t)
                                                                 for t in times[:8]]
    if container != "ts":  # the TS demuxer drops damaged packets itself
        assert "damaged packet" in caplog.text


def test_runs_on_one_decoder_do_not_inherit_frame_skipping(tmp_path: Path) -> None:
    """A run stops as soon as its times are served, possibly with the decoder still skipping
    non-reference frames; the next run on the same decoder must not skip a wanted B-frame
    (seen as a rare wrong frame in the random pattern of the VFR + B-frames MKV case)."""
    made = make_video(tmp_path / "v.mkv", gop=12, duration=4.0, vfr=True, bframes=True)
    info = probe(made.path)
    rng = random.Random(178)
    time_sets = [[rng.uniform(-0.1, info.duration + 0.2) for _ in range(15)] for _ in range(40)]
    time_sets.append([1.03, 2.8367, 3.8356, 4.3554, 5.0689, 5.3499, 5.6764, 5.6904, 5.7381])
    for times in time_sets:
        for threads in (1, 2):
            frames = decode_frames(info, times, unique=False, threads=threads)
            assert [read_painted_index(f.image) for f in frames] == [made.frame_at(t)
                                                                     for t in times], times


@pytest.mark.parametrize("container", ["mp4", "mkv"])
def test_videos_with_an_audio_track_decode(tmp_path: Path, container: str) -> None:
    """Other streams are discarded with PyAV's enum (PyAV 18 refuses the string "all", so
    every video with sound failed)."""
    from vidground.video.decode import decode_frames

    made = make_video(tmp_path / f"sound.{container}", duration=2.0, fps=10, audio=True)
    frames = decode_frames(made.path, [0.05, 1.05, 1.95])
    assert [round(f.time, 3) for f in frames] == [0.0, 1.0, 1.9]


def test_pictures_that_grow_mid_stream_are_refused_not_allocated(tmp_path: Path) -> None:
    """Issue 21 item 3: only the first picture was held to the limit. An H.264 stream whose
    pictures grow to 640 x 480 after one second (new parameter sets) is refused by the
    decoder (FFmpeg's max_pixels, before the picture is allocated) with a clear 413 error,
    not served (nor skipped as damage)."""
    from media import make_size_change

    from vidground.errors import VideoTooLargeError

    stream = make_size_change(tmp_path / "grows.h264", [(160, 120), (640, 480)])
    info = probe(stream, max_pixels=320 * 240)
    assert (info.width, info.height) == (160, 120)
    assert decode_frames(info, [0.05, 0.5])[0].image.shape == (120, 160, 3)
    with pytest.raises(VideoTooLargeError, match="76800 pixels"):
        decode_frames(info, [0.05, 1.5])
    big = decode_frames(probe(stream), [1.5])  # under the default limit: decoded
    assert big[0].image.shape == (480, 640, 3)


def test_a_picture_of_exactly_the_limit_decodes(tmp_path: Path) -> None:
    made = make_video(tmp_path / "a.mp4", duration=1.0, size=(200, 100))
    info = probe(made.path, max_pixels=200 * 100)
    (frame,) = decode_frames(info, [0.5])
    assert frame.image.shape == (100, 200, 3)
