#!/usr/bin/env bash
# Build the vidground image here and run it for real (issue 26). Too slow for CI (minutes): run it
# by hand as root on a Debian/Ubuntu machine with podman, runc and debootstrap:
#
#   apt-get install -y podman runc debootstrap
#   scripts/container-smoke.sh            # base (cached) + remote image + the checks below
#   scripts/container-smoke.sh base       # only make (or reuse) the local base image
#
# The base: no registry is reachable here, so `python:3.11-slim` cannot be pulled; a Debian
# bookworm made by `debootstrap --variant=minbase` (+ python3.11 in a venv on PATH) is imported
# with `podman import` and cached (tar in $CACHE, image vidground-base:bookworm). The image is then
# built with `--build-arg BASE_IMAGE=localhost/vidground-base:bookworm --build-arg VARIANT=remote`.
#
# Checks (each prints "ok: ..." or the script stops with "FAIL: ..."): the page answers on /,
# /api/v1/health is ok, an upload and a job against the fake model server on the host network
# complete, the container runs as a non-root user, the job survives a restart (data volume), and
# SIGTERM stops it cleanly (exit code 0, well before podman's kill timeout). Image size and build
# time are printed at the end.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${VIDGROUND_SMOKE_CACHE:-/var/cache/vidground-smoke}
BASE_IMAGE=localhost/vidground-base:bookworm
IMAGE=localhost/vidground:remote-smoke
NAME=vidground-smoke
VOLUME=vidground-smoke-data
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY=${PYTHON:-$ROOT/.venv/bin/python}
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)

say() { printf '%s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }

ensure_conf() {
  # containers in containers (this machine) cannot raise ulimits: no default ulimits
  mkdir -p /etc/containers
  if ! grep -q '^default_ulimits' /etc/containers/containers.conf 2>/dev/null; then
    printf '[containers]\ndefault_ulimits = []\n' >> /etc/containers/containers.conf
  fi
}

make_base() {
  if "${PODMAN[@]}" image exists "$BASE_IMAGE"; then
    say "base: $BASE_IMAGE exists (cached)"; return
  fi
  mkdir -p "$CACHE"
  local tar="$CACHE/bookworm-minbase-py311.tar"
  if [ ! -s "$tar" ]; then
    local t0=$SECONDS root="$CACHE/rootfs"
    rm -rf "$root"
    say "base: debootstrap --variant=minbase bookworm (a few minutes)"
    debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$root" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1 \
      || { tail -20 "$CACHE/debootstrap.log"; fail "debootstrap"; }
    # a venv on PATH stands in for python:3.11-slim's /usr/local python (pip, python)
    chroot "$root" /usr/bin/python3 -m venv /opt/python
    chroot "$root" sh -c 'apt-get clean; rm -rf /var/lib/apt/lists/* /var/cache/apt/*.bin'
    tar -C "$root" -cf "$tar.part" . && mv "$tar.part" "$tar"
    rm -rf "$root"
    say "base: made in $((SECONDS - t0)) s"
  fi
  "${PODMAN[@]}" import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python"]' "$tar" "$BASE_IMAGE" >/dev/null
}

build_image() {
  local t0=$SECONDS
  say "build: $IMAGE (VARIANT=remote, BASE_IMAGE=$BASE_IMAGE)"
  local extra=()
  # behind a TLS-intercepting proxy (this machine): pip in the build trusts the host's CA
  # bundle, mounted for the RUN steps only (nothing of it stays in the image)
  local ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
  if [ -n "$ca" ] && [ -f "$ca" ]; then
    printf '[global]\ncert = /run/host-ca.crt\n' >"$CACHE/pip.conf"
    extra+=(-v "$ca:/run/host-ca.crt:ro" -v "$CACHE/pip.conf:/etc/pip.conf:ro")
  fi
  "${PODMAN[@]}" build --format docker --network host "${extra[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VARIANT=remote \
    -t "$IMAGE" -f "$ROOT/Dockerfile" "$ROOT" >"$CACHE/build.log" 2>&1 \
    || { tail -30 "$CACHE/build.log"; fail "podman build (log: $CACHE/build.log)"; }
  BUILD_S=$((SECONDS - t0))
  say "build: ${BUILD_S} s"
}

FAKE_PID=""
cleanup() {
  "${PODMAN[@]}" rm -f -t 5 "$NAME" "$NAME-front" "$NAME-worker1" "$NAME-worker2" \
    >/dev/null 2>&1 || true
  "${PODMAN[@]}" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; fi
}

start_host_services() {
  # the tests' fake model server and (for the queue check) a throwaway PostgreSQL, both on
  # 127.0.0.1, reachable from containers through forwarders on 0.0.0.0 (host.containers.internal)
  "$PY" - >"$CACHE/host.log" 2>&1 <<'PY' &
import signal, socket, sys, threading
sys.path.insert(0, "tests/support")
from fake_openai_server import FakeOpenAIServer
from pg_server import PostgresServer

def pipe(a, b):
    try:
        while data := a.recv(65536):
            b.sendall(data)
    except OSError:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

def forward(port):
    lsock = socket.create_server(("0.0.0.0", 0))
    def loop():
        while True:
            c, _ = lsock.accept()
            u = socket.create_connection(("127.0.0.1", port))
            threading.Thread(target=pipe, args=(c, u), daemon=True).start()
            threading.Thread(target=pipe, args=(u, c), daemon=True).start()
    threading.Thread(target=loop, daemon=True).start()
    return lsock.getsockname()[1]

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
with FakeOpenAIServer(color=(255, 0, 0), object_name="red square") as srv, PostgresServer() as pg:
    db = pg.new_database("smoke").rsplit("/", 1)[1]
    print(f"READY {forward(srv.port)} {forward(pg.port)} {db}", flush=True)
    signal.pause()
PY
  FAKE_PID=$!
  for _ in $(seq 300); do
    if read -r _ FAKE_PORT PG_PORT PG_DB < <(grep '^READY' "$CACHE/host.log"); then return; fi
    sleep 0.1
  done
  cat "$CACHE/host.log"; fail "the fake model server / PostgreSQL did not start"
}

run_container() {
  "${PODMAN[@]}" run -d --name "$NAME" -p "127.0.0.1:$PORT:7860" -v "$VOLUME:/app/data" \
    -e VIDGROUND_BACKEND=openai -e VIDGROUND_OPENAI_MODEL=fake/qwen3-vl \
    -e VIDGROUND_OPENAI_BASE_URL="http://host.containers.internal:$FAKE_PORT/v1" \
    -e VIDGROUND_OPENAI_MAX_RETRIES=0 "$IMAGE" >/dev/null
}

wait_healthy() {
  local t0=$SECONDS body
  for _ in $(seq 240); do
    body=$(curl -fsS "http://127.0.0.1:$PORT/api/v1/health" 2>/dev/null || true)
    if printf '%s' "$body" | grep -q '"status": *"ok"'; then
      say "ok: /api/v1/health is ok after $((SECONDS - t0)) s: ${body:0:120}..."; return
    fi
    sleep 0.5
  done
  "${PODMAN[@]}" logs "$NAME" | tail -30; fail "/api/v1/health never said ok"
}

job_status() {
  curl -fsS "http://127.0.0.1:$PORT/api/v1/jobs/$1" | "$PY" -c \
    'import json,sys; j=json.load(sys.stdin); print(j["status"], json.dumps(j.get("result") and j["result"]["timestamp_range"]))'
}

T_START=$SECONDS
ensure_conf
mkdir -p "$CACHE"
make_base
[ "${1:-}" = base ] && exit 0
build_image
[ "${1:-}" = build ] && exit 0
cd "$ROOT"
trap cleanup EXIT
cleanup
start_host_services
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
run_container
wait_healthy

# the image's HEALTHCHECK (podman schedules it with systemd timers, absent here: run it once)
"${PODMAN[@]}" healthcheck run "$NAME" || fail "the image's HEALTHCHECK failed"
say "ok: the image's HEALTHCHECK passes"

# the page
page=$(curl -fsS "http://127.0.0.1:$PORT/") || fail "GET / failed"
printf '%s' "$page" | grep -qi "<html" || fail "no HTML page on /"
say "ok: the page answers on /"

# non-root
uid=$("${PODMAN[@]}" exec "$NAME" id -u)
[ "$uid" != 0 ] || fail "the container runs as root"
say "ok: runs as uid $uid ($("${PODMAN[@]}" exec "$NAME" id -un))"

# an upload and a job against the fake model server on the host
video="$CACHE/smoke.mp4"
"$PY" -c "import sys; sys.path.insert(0, 'tests/support'); from media import make_video; \
make_video('$video', duration=4.0, fps=10, intervals=[(1.0, 2.5)])"
vid=$(curl -fsS -F "file=@$video" "http://127.0.0.1:$PORT/api/v1/videos" \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["video_id"])')
say "ok: uploaded video_id $vid"
job=$(curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/jobs" \
  -d "{\"video_id\": \"$vid\", \"query\": \"the red square\", \"options\": {\"refine\": false}}" \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
for _ in $(seq 120); do
  state=$(job_status "$job")
  case "$state" in succeeded*|failed*|cancelled*) break ;; esac
  sleep 0.5
done
case "$state" in succeeded*) say "ok: job $job $state" ;; *) fail "job $job: $state" ;; esac

# restart with the data volume: the job is still there
"${PODMAN[@]}" restart -t 30 "$NAME" >/dev/null
wait_healthy
state=$(job_status "$job")
case "$state" in succeeded*) say "ok: after a restart the job is still there: $state" ;;
  *) fail "after restart, job $job: $state" ;; esac
# a new container on the same volume sees it too
"${PODMAN[@]}" rm -f -t 30 "$NAME" >/dev/null
run_container
wait_healthy
state=$(job_status "$job")
case "$state" in succeeded*) say "ok: a new container on the volume has the job: $state" ;;
  *) fail "new container, job $job: $state" ;; esac

# SIGTERM: a clean, quick exit (podman stop sends SIGTERM, SIGKILL only after 30 s)
t0=$(date +%s.%N)
"${PODMAN[@]}" stop -t 30 "$NAME" >/dev/null
stop_s=$("$PY" -c "import time; print(round(time.time() - $t0, 1))")
code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME")
"${PODMAN[@]}" logs "$NAME" 2>&1 | tail -4 >&2
[ "$code" = 0 ] || fail "exit code $code after SIGTERM"
"$PY" -c "import sys; sys.exit(0 if $stop_s < 25 else 1)" || fail "SIGTERM took $stop_s s"
say "ok: SIGTERM: exit code 0 in $stop_s s"

# compose's services by hand (no compose tool, no postgres image here): a front end that only
# takes jobs and two workers, one PostgreSQL job store (on the host), one shared data volume
"${PODMAN[@]}" rm -f "$NAME" >/dev/null
"${PODMAN[@]}" volume rm -f "$VOLUME" >/dev/null
store="postgresql://postgres@host.containers.internal:$PG_PORT/$PG_DB"
common=(-v "$VOLUME:/app/data" -e VIDGROUND_BACKEND=openai -e VIDGROUND_OPENAI_MODEL=fake/qwen3-vl
        -e VIDGROUND_OPENAI_BASE_URL="http://host.containers.internal:$FAKE_PORT/v1"
        -e VIDGROUND_JOB_STORE="$store")
"${PODMAN[@]}" run -d --name "$NAME-front" -p "127.0.0.1:$PORT:7860" "${common[@]}" \
  -e VIDGROUND_RUN_JOBS=false "$IMAGE" >/dev/null
for w in 1 2; do
  "${PODMAN[@]}" run -d --name "$NAME-worker$w" "${common[@]}" "$IMAGE" worker >/dev/null
done
NAME="$NAME-front" wait_healthy
vid=$(curl -fsS -F "file=@$video" "http://127.0.0.1:$PORT/api/v1/videos" \
  | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["video_id"])')
req="{\"video_id\": \"$vid\", \"query\": \"the red square\", \"options\": {\"refine\": false}}"
jobs=$(curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/jobs" \
  -d "{\"requests\": [$req, $req, $req, $req, $req, $req]}" \
  | "$PY" -c 'import json,sys; print(" ".join(json.load(sys.stdin)["job_ids"]))')
for job in $jobs; do
  for _ in $(seq 240); do
    state=$(job_status "$job")
    case "$state" in succeeded*|failed*|cancelled*) break ;; esac
    sleep 0.5
  done
  case "$state" in succeeded*) ;; *) fail "queue job $job: $state" ;; esac
done
runs="" total=0
for w in 1 2; do
  n=$("${PODMAN[@]}" logs "$NAME-worker$w" 2>&1 | grep -c ' succeeded (attempt' || true)
  runs="$runs worker$w=$n" total=$((total + n))
done
[ "$total" = 6 ] || fail "workers report $total succeeded jobs, not 6:$runs"
say "ok: front end + 2 workers on one PostgreSQL job store: 6 jobs succeeded ($runs )"
for w in 1 2; do
  "${PODMAN[@]}" stop -t 30 "$NAME-worker$w" >/dev/null
  code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "$NAME-worker$w")
  [ "$code" = 0 ] || fail "worker$w: exit code $code after SIGTERM"
done
say "ok: the workers stop on SIGTERM with exit code 0"

size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$IMAGE")
base=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE")
say "image $IMAGE: $((size / 1000000)) MB (base $((base / 1000000)) MB); build ${BUILD_S} s"
say "all container checks passed in $((SECONDS - T_START)) s"
