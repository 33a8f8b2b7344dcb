#!/bin/sh
# Entry point of the vidground image: `docker run IMAGE [vidground command and options]`.
#   (nothing)            -> vidground serve   (page + API on 0.0.0.0:7860, see the Dockerfile ENV)
#   --port 8080 ...      -> vidground serve --port 8080 ...
#   worker | doctor ...  -> vidground worker | doctor ...
# Settings come from VIDGROUND_* variables (the image sets the container paths: media root
# /app/videos, data dir /app/data). A shell: docker run --entrypoint sh IMAGE.
set -eu
if [ "$#" -eq 0 ] || [ "${1#-}" != "$1" ]; then
  set -- serve "$@"
fi
if [ "$1" = "vidground" ]; then
  shift
fi
exec vidground "$@"
