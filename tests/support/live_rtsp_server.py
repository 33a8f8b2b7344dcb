"""A one-file RTSP server for the live tests (issue 25), run with the *system* Python that
has GStreamer's introspection data (``apt-get install python3-gi gir1.2-gst-rtsp-server-1.0
gstreamer1.0-plugins-good gstreamer1.0-plugins-bad``)::

    /usr/bin/python3 tests/support/live_rtsp_server.py PORT CLIP.ts

serves the H.264 MPEG-TS ``CLIP`` at ``rtsp://127.0.0.1:PORT/live`` in real time (shared: a
client that reconnects gets the stream where it is now), prints ``ready`` when listening, and
exits when its stdin closes (so it never outlives the test that started it).
"""

import sys
import threading

import gi

gi.require_version("Gst", "1.0")
gi.require_version("GstRtspServer", "1.0")
from gi.repository import GLib, Gst, GstRtspServer  # noqa: E402


def main() -> None:
    port, clip = sys.argv[1], sys.argv[2]
    Gst.init(None)
    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(port)
    factory = GstRtspServer.RTSPMediaFactory()
    factory.set_launch(f'( filesrc location="{clip}" ! tsdemux ! h264parse ! '
                       "rtph264pay name=pay0 pt=96 config-interval=1 )")
    factory.set_shared(True)
    server.get_mount_points().add_factory("/live", factory)
    server.attach(None)
    loop = GLib.MainLoop()

    def watch_stdin() -> None:
        sys.stdin.read()
        loop.quit()

    threading.Thread(target=watch_stdin, daemon=True).start()
    print("ready", flush=True)
    loop.run()


if __name__ == "__main__":
    main()
