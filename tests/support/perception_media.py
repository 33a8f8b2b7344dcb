"""Videos with known on-screen text, shot changes and speech, for the perception tests and
benchmark (issue 24).

Text is rendered with real fonts (Debian's DejaVu Sans and Noto Sans CJK through
``PIL.ImageFont.truetype``) on known frames; shots are moving textured scenes joined by hard
cuts and cross-dissolves at known frames; speech is espeak-ng's voice muxed as AAC at known
times, its true voiced extent measured on the synthesized samples themselves.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image, ImageDraw, ImageFont

LATIN_FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"
CJK_FONT = "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc"
AUDIO_RATE = 16000
#: Bump when the pictures or sounds made here change (names the shared files).
MEDIA_VERSION = 2


@dataclass(frozen=True)
class TextEvent:
    """``text`` drawn on frames ``first..last`` (inclusive) at ``px`` pixels, at ``xy``."""

    text: str
    first: int
    last: int
    px: int = 36
    xy: tuple[int, int] = (30, 40)

    @property
    def cjk(self) -> bool:
        return any(ord(c) > 0x2E80 for c in self.text)


@dataclass(frozen=True)
class Transition:
    """A shot change: frames ``first..last`` (inclusive) are the transition. A hard cut has
    ``first == last`` = the first frame of the new shot; a dissolve blends over its frames."""

    first: int
    last: int

    @property
    def hard(self) -> bool:
        return self.first == self.last


@dataclass(frozen=True)
class SpeechEvent:
    """``text`` spoken from ``start`` to ``end`` seconds (the voiced extent, measured)."""

    text: str
    start: float
    end: float


@dataclass(frozen=True)
class PerceptionVideo:
    path: Path
    fps: float
    frames: int
    size: tuple[int, int]
    texts: tuple[TextEvent, ...] = ()
    transitions: tuple[Transition, ...] = ()
    speech: tuple[SpeechEvent, ...] = field(default=())

    @property
    def duration(self) -> float:
        return self.frames / self.fps

    def frame_time(self, index: int) -> float:
        return index / self.fps


DEFAULT_TEXTS = (
    TextEvent("PAYMENT FAILED", 12, 40, px=34, xy=(30, 40)),
    TextEvent("支付失败", 62, 95, px=34, xy=(40, 150)),
    TextEvent("order shipped", 118, 140, px=16, xy=(24, 220)),
)
#: A hard cut at frame 50 and a 12-frame dissolve into the third shot at frames 100..111.
DEFAULT_TRANSITIONS = (Transition(50, 50), Transition(100, 111))
DEFAULT_SPEECH = (("hello world", 0.5), ("payment failed, please try again", 3.0))


def fonts_available() -> bool:
    return Path(LATIN_FONT).is_file() and Path(CJK_FONT).is_file()


def espeak_available() -> bool:
    return shutil.which("espeak-ng") is not None


def _font(event: TextEvent) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(CJK_FONT if event.cjk else LATIN_FONT, event.px)


def _scene(shot: int, index: int, size: tuple[int, int], rng_seed: int) -> np.ndarray:
    """A moving, textured picture; every shot has its own palette and pattern."""
    w, h = size
    rng = np.random.default_rng(rng_seed + 97 * shot)
    base = rng.integers(30, 200, size=3)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    phase = index * 0.08
    freq = 0.02 + 0.015 * shot
    wave_ = np.sin(xs * freq + phase) * np.cos(ys * freq * 1.3 - phase * 0.7)
    image = np.empty((h, w, 3), np.float32)
    for c in range(3):
        image[..., c] = base[c] + 45 * wave_ * (1 if c != shot % 3 else -1)
    # a moving disc
    cx = (w * 0.2 + index * 2.5 * (1 + shot)) % w
    cy = h * (0.3 + 0.15 * shot)
    disc = (xs - cx) ** 2 + (ys - cy) ** 2 < (h * 0.12) ** 2
    image[disc] = 255 - base
    return np.clip(image, 0, 255).astype(np.uint8)


def _shot_of(index: int, transitions: tuple[Transition, ...]) -> tuple[int, int, float]:
    """(shot, next shot, blend weight of the next shot) at frame ``index``."""
    shot = 0
    for tr in transitions:
        if index > tr.last:
            shot += 1
        elif tr.first <= index <= tr.last and not tr.hard:
            weight = (index - tr.first + 1) / (tr.last - tr.first + 2)
            return shot, shot + 1, weight
        elif tr.hard and index == tr.first:
            shot += 1
    return shot, shot, 0.0


def _picture(index: int, size: tuple[int, int], texts: tuple[TextEvent, ...],
             transitions: tuple[Transition, ...], seed: int, static: bool = False
             ) -> np.ndarray:
    shot, nxt, weight = _shot_of(index, transitions)
    moment = 0 if static else index
    image = _scene(shot, moment, size, seed)
    if weight:
        other = _scene(nxt, moment, size, seed)
        image = (image * (1 - weight) + other * weight).astype(np.uint8)
    shown = [t for t in texts if t.first <= index <= t.last]
    if not shown:
        return image
    pil = Image.fromarray(image)
    draw = ImageDraw.Draw(pil)
    for event in shown:
        draw.text(event.xy, event.text, font=_font(event), fill=(255, 255, 255),
                  stroke_width=max(1, event.px // 12), stroke_fill=(0, 0, 0))
    return np.asarray(pil)


def espeak_samples(text: str, voice: str = "en") -> np.ndarray:
    """espeak-ng's voice for ``text`` as float32 mono at :data:`AUDIO_RATE`."""
    with tempfile.TemporaryDirectory() as tmp:
        wav_path = Path(tmp) / "say.wav"
        subprocess.run(["espeak-ng", "-v", voice, "-s", "150", "-w", str(wav_path), text],
                       check=True, capture_output=True)
        with wave.open(str(wav_path)) as wav:
            rate = wav.getframerate()
            data = np.frombuffer(wav.readframes(wav.getnframes()), np.int16)
    samples = data.astype(np.float32) / 32768.0
    # resample to 16 kHz by linear interpolation (enough for a test voice)
    n = int(round(len(samples) * AUDIO_RATE / rate))
    return np.interp(np.linspace(0, len(samples) - 1, n), np.arange(len(samples)),
                     samples).astype(np.float32)


def voiced_extent(samples: np.ndarray, rate: int = AUDIO_RATE,
                  threshold: float = 0.01) -> tuple[float, float]:
    """First and last moment (seconds) whose 10 ms RMS exceeds ``threshold``."""
    hop = rate // 100
    frames = len(samples) // hop
    rms = np.sqrt(np.mean(samples[: frames * hop].reshape(frames, hop) ** 2, axis=1))
    loud = np.flatnonzero(rms > threshold)
    if not len(loud):
        return 0.0, 0.0
    return loud[0] * hop / rate, (loud[-1] + 1) * hop / rate


def make_perception_video(path: str | Path, *, frames: int = 150, fps: int = 25,
                          size: tuple[int, int] = (480, 270),
                          texts: tuple[TextEvent, ...] = DEFAULT_TEXTS,
                          transitions: tuple[Transition, ...] = DEFAULT_TRANSITIONS,
                          speech: tuple[tuple[str, float], ...] = DEFAULT_SPEECH,
                          seed: int = 3, gop: int = 50, static: bool = False
                          ) -> PerceptionVideo:
    """Encode an H.264 + AAC MP4 with ``texts`` on screen, ``transitions`` between shots and
    ``speech`` (text, start second) spoken; returns what it holds, times measured.
    ``static``: every shot is a still picture (a screen recording, a slide)."""
    path = Path(path)
    duration = frames / fps
    track = np.zeros(int(duration * AUDIO_RATE), np.float32)
    spoken: list[SpeechEvent] = []
    for text, start in speech:
        voice = espeak_samples(text)
        lo, hi = voiced_extent(voice)
        at = int(start * AUDIO_RATE)
        part = voice[: max(0, len(track) - at)]
        track[at: at + len(part)] += part * 0.8
        spoken.append(SpeechEvent(text, float(start + lo), float(min(duration, start + hi))))
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream("libx264", rate=Fraction(fps), options={
            "preset": "ultrafast", "crf": "18",
            "x264-params": f"keyint={gop}:min-keyint={gop}:scenecut=0:bframes=0"})
        stream.width, stream.height = size
        stream.pix_fmt = "yuv420p"
        a_stream = out.add_stream("aac", rate=AUDIO_RATE, layout="mono") if speech else None
        for i in range(frames):
            picture = _picture(i, size, texts, transitions, seed, static)
            frame = av.VideoFrame.from_ndarray(picture, format="rgb24")
            frame.pts = i
            frame.time_base = Fraction(1, fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode())
        if a_stream is not None:
            _write_audio(out, a_stream, track)
    return PerceptionVideo(path=path, fps=float(fps), frames=frames, size=size, texts=texts,
                           transitions=transitions, speech=tuple(spoken))


def _write_audio(out: av.container.OutputContainer, stream: av.AudioStream,
                 track: np.ndarray) -> None:
    chunk = stream.codec_context.frame_size or 1024
    pts = 0
    for lo in range(0, len(track), chunk):
        part = track[lo: lo + chunk]
        frame = av.AudioFrame.from_ndarray(part.reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = pts
        frame.time_base = Fraction(1, AUDIO_RATE)
        pts += len(part)
        out.mux(stream.encode(frame))
    out.mux(stream.encode())


def shared_video(name: str = "default", **kwargs: object) -> PerceptionVideo:
    """:func:`make_perception_video` written once per machine and arguments (in the temp
    folder, atomically, with its measured speech times beside it), so every test file and the
    benchmark share one encode."""
    import hashlib
    import json
    import os

    key = hashlib.sha1(repr((MEDIA_VERSION, DEFAULT_TEXTS, DEFAULT_TRANSITIONS, DEFAULT_SPEECH,
                               sorted(kwargs.items()))).encode()).hexdigest()[:12]
    folder = Path(tempfile.gettempdir()) / "vidground-perception-media"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}-{key}.mp4"
    sidecar = path.with_suffix(".json")
    if not (path.is_file() and sidecar.is_file()):
        tmp = folder / f".{name}-{key}-{os.getpid()}.mp4"
        made = make_perception_video(tmp, **kwargs)  # type: ignore[arg-type]
        os.replace(tmp, path)
        side_tmp = sidecar.with_suffix(f".{os.getpid()}.tmp")
        side_tmp.write_text(json.dumps({"fps": made.fps, "frames": made.frames,
                                        "size": list(made.size), "texts": [
                                            [t.text, t.first, t.last, t.px, list(t.xy)]
                                            for t in made.texts],
                                        "transitions": [[t.first, t.last]
                                                        for t in made.transitions],
                                        "speech": [[e.text, e.start, e.end]
                                                   for e in made.speech]}))
        os.replace(side_tmp, sidecar)
    data = json.loads(sidecar.read_text())
    return PerceptionVideo(
        path=path, fps=float(data["fps"]), frames=int(data["frames"]),
        size=(int(data["size"][0]), int(data["size"][1])),
        texts=tuple(TextEvent(t, a, b, px, (xy[0], xy[1])) for t, a, b, px, xy in data["texts"]),
        transitions=tuple(Transition(a, b) for a, b in data["transitions"]),
        speech=tuple(SpeechEvent(t, a, b) for t, a, b in data["speech"]))
