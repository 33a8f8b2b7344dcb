"""Video input: probing, choosing times to look at, decoding frames with exact timestamps."""

from .decode import Frame, decode_frames
from .probe import VideoInfo, probe

__all__ = ["Frame", "VideoInfo", "decode_frames", "probe"]
