#!/usr/bin/env bash
# Build the vidground images here and run them for real (issue 26). Too slow for CI (minutes
# each step): run it by hand as root on a Debian/Ubuntu machine with podman, runc and debootstrap
# (and podman-compose >= 1.1 for the compose step):
#
#   apt-get install -y podman runc debootstrap
#   python3 -m venv /opt/podman-compose && /opt/podman-compose/bin/pip install podman-compose==1.6.0
#   scripts/container-smoke.sh              # = remote compose
#   scripts/container-smoke.sh base         # only make (or reuse) the local base image
#   scripts/container-smoke.sh remote       # the remote image: page, health, job, restart, SIGTERM
#   scripts/container-smoke.sh gpu          # the gpu (CUDA torch) image: the local backend in it
#   scripts/container-smoke.sh cpu          # the cpu image: the same (needs a CPU torch pair)
#   scripts/container-smoke.sh compose      # compose.yaml + compose.local.yaml, jobs through it
#
# The base: no registry is reachable here, so `python:3.11-slim` cannot be pulled; a Debian
# bookworm made by `debootstrap --variant=minbase` (+ python3.11 in a venv on PATH) is imported
# with `podman import` and cached (tar in $CACHE, image vidground-base:bookworm). Images are built
# with `--build-arg BASE_IMAGE=localhost/vidground-base:bookworm`.
#
# Steps (each check prints "ok: ..." or the script stops with "FAIL: ..."):
# remote   the page answers on /, /api/v1/health is ok, the image's HEALTHCHECK passes, an upload
#          and a job against the fake model server on the host network complete, the container
#          runs as a non-root user, the job survives a restart (data volume) and a new container,
#          SIGTERM stops it cleanly (exit code 0, well before podman's kill timeout).
# gpu|cpu  the image with torch, built from local wheels (VIDGROUND_SMOKE_WHEELS: directories
#          given to pip as find-links, mounted read-only into the build; default: those of
#          /opt/wheels /opt/pypi/files /opt/pypi-more/files that exist). Without the network
#          (--network none) and as uid 1000, the container imports torch, torchvision and
#          transformers, builds the tests' tiny random Qwen3-VL (tests/support/tiny_qwen.py,
#          mounted), passes `vidground doctor --backend transformers` and answers
#          `vidground locate --backend transformers` on a clip with one model call. Torch
#          versions: TORCH_VERSION, TORCHVISION_VERSION, TORCH_INDEX_URL (environment) become
#          the build arguments of the same names when set.
# compose  podman-compose -f compose.yaml -f compose.local.yaml up: PostgreSQL from Debian's
#          packages (docker/postgres.Dockerfile), the fake model server as the `vllm` service,
#          the vidground front end and two workers; an upload and 6 jobs through the front end
#          all succeed, run by the workers (their logs count 6), the answer is the red square's
#          time; the workers stop on SIGTERM with exit code 0; then `down -v`.
# Image sizes and build times are printed (and appended to $CACHE/timings.txt).
#
# Build context: the working tree (VIDGROUND_SMOKE_CONTEXT=worktree, default) or the committed
# HEAD's pyproject.toml, README.md and src/ with the working tree's Dockerfile and docker/
# (VIDGROUND_SMOKE_CONTEXT=head: for a shared checkout where others edit src/).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE=${VIDGROUND_SMOKE_CACHE:-/var/cache/vidground-smoke}
BASE_IMAGE=localhost/vidground-base:bookworm
REMOTE_IMAGE=localhost/vidground:remote
PG_IMAGE=localhost/vidground-postgres:bookworm
NAME=vidground-smoke
VOLUME=vidground-smoke-data
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
PY=${PYTHON:-$ROOT/.venv/bin/python}
PODMAN=(podman --runtime runc --cgroup-manager=cgroupfs)
PODMAN_COMPOSE=${PODMAN_COMPOSE:-podman-compose}
PROJECT=vidground-smoke
COMPOSE_PORT=7860   # compose.local.yaml publishes the front end on 127.0.0.1:7860

say() { printf '%s\n' "$*" >&2; }
fail() { say "FAIL: $*"; exit 1; }
note() { say "$*"; printf '%s %s\n' "$(date -u +%FT%TZ)" "$*" >>"$CACHE/timings.txt"; }
mb() { echo $(($("${PODMAN[@]}" image inspect --format '{{.Size}}' "$1") / 1000000)); }

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
    note "base: made in $((SECONDS - t0)) s"
  fi
  "${PODMAN[@]}" import \
    --change 'ENV PATH=/opt/python/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python"]' "$tar" "$BASE_IMAGE" >/dev/null
}

build_context() {
  # prints the directory to build from
  if [ "${VIDGROUND_SMOKE_CONTEXT:-worktree}" != head ]; then echo "$ROOT"; return; fi
  local ctx="$CACHE/context"
  rm -rf "$ctx" && mkdir -p "$ctx"
  git -C "$ROOT" archive HEAD pyproject.toml README.md src | tar -x -C "$ctx"
  cp -r "$ROOT/Dockerfile" "$ROOT/.dockerignore" "$ROOT/docker" "$ctx/"
  say "build context: HEAD $(git -C "$ROOT" rev-parse --short HEAD) + this tree's Dockerfile, docker/"
  echo "$ctx"
}

wheel_dirs() {
  local d
  for d in ${VIDGROUND_SMOKE_WHEELS:-/opt/wheels /opt/pypi/files /opt/pypi-more/files}; do
    if [ -d "$d" ]; then echo "$d"; fi
  done
}

# build_image TAG VARIANT: the Dockerfile on the local base; sets BUILD_S
build_image() {
  local tag=$1 variant=$2 t0=$SECONDS extra=() args=() conf="$CACHE/pip-$2.conf" d ctx
  ctx=$(build_context)
  say "build: $tag (VARIANT=$variant, BASE_IMAGE=$BASE_IMAGE)"
  printf '[global]\n' >"$conf"
  # behind a TLS-intercepting proxy (this machine): pip in the build trusts the host's CA
  # bundle, mounted for the RUN steps only (nothing of it stays in the image)
  local ca=${PIP_CERT:-${SSL_CERT_FILE:-}}
  if [ -n "$ca" ] && [ -f "$ca" ]; then
    printf 'cert = /run/host-ca.crt\n' >>"$conf"
    extra+=(-v "$ca:/run/host-ca.crt:ro")
  fi
  if [ "$variant" != remote ]; then
    # torch from wheels on this disk: find-links candidates win over the index's equal ones
    local links=()
    while read -r d; do links+=("$d"); extra+=(-v "$d:$d:ro"); done < <(wheel_dirs)
    if [ "${#links[@]}" -gt 0 ]; then printf 'find-links = %s\n' "${links[*]}" >>"$conf"; fi
    say "build: pip find-links: ${links[*]:-(none)}"
    for d in TORCH_VERSION TORCHVISION_VERSION TORCH_INDEX_URL; do
      if [ -n "${!d:-}" ]; then args+=(--build-arg "$d=${!d}"); fi
    done
  fi
  extra+=(-v "$conf:/etc/pip.conf:ro")
  "${PODMAN[@]}" build --format docker --network host "${extra[@]}" \
    --build-arg BASE_IMAGE="$BASE_IMAGE" --build-arg VARIANT="$variant" "${args[@]}" \
    -t "$tag" -f "$ctx/Dockerfile" "$ctx" >"$CACHE/build-$variant.log" 2>&1 \
    || { tail -30 "$CACHE/build-$variant.log"; fail "podman build (log: $CACHE/build-$variant.log)"; }
  BUILD_S=$((SECONDS - t0))
  note "build: $tag (VARIANT=$variant ${args[*]}) in ${BUILD_S} s: $(mb "$tag") MB"
}

FAKE_PID=""
COMPOSE_UP=""
MADE_VIDEOS_DIR=""
cleanup() {
  "${PODMAN[@]}" rm -f -t 5 "$NAME" >/dev/null 2>&1 || true
  "${PODMAN[@]}" volume rm -f "$VOLUME" >/dev/null 2>&1 || true
  if [ -n "$FAKE_PID" ]; then kill "$FAKE_PID" 2>/dev/null || true; FAKE_PID=""; fi
  if [ -n "$COMPOSE_UP" ]; then
    compose down -v -t 10 >"$CACHE/compose-down.log" 2>&1 || true; COMPOSE_UP=""
  fi
  if [ -n "$MADE_VIDEOS_DIR" ]; then rmdir "$ROOT/videos" 2>/dev/null || true; fi
}

start_fake_model() {
  # the tests' fake model server on the host, reachable from containers through a forwarder
  # on 0.0.0.0 (host.containers.internal): scripts/container-fake-model.py
  local port
  port=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
  "$PY" "$ROOT/scripts/container-fake-model.py" --port "$port" --model fake/qwen3-vl \
    >"$CACHE/fake-model.log" 2>&1 &
  FAKE_PID=$!
  for _ in $(seq 300); do
    if grep -q '^fake model server' "$CACHE/fake-model.log"; then FAKE_PORT=$port; return; fi
    kill -0 "$FAKE_PID" 2>/dev/null || break
    sleep 0.1
  done
  cat "$CACHE/fake-model.log"; fail "the fake model server did not start"
}

run_container() {
  "${PODMAN[@]}" run -d --name "$NAME" -p "127.0.0.1:$PORT:7860" -v "$VOLUME:/app/data" \
    -e VIDGROUND_BACKEND=openai -e VIDGROUND_OPENAI_MODEL=fake/qwen3-vl \
    -e VIDGROUND_OPENAI_BASE_URL="http://host.containers.internal:$FAKE_PORT/v1" \
    -e VIDGROUND_OPENAI_MAX_RETRIES=0 "$REMOTE_IMAGE" >/dev/null
}

# wait_healthy CONTAINER
wait_healthy() {
  local t0=$SECONDS body
  for _ in $(seq 240); do
    body=$(curl -fsS "http://127.0.0.1:$PORT/api/v1/health" 2>/dev/null || true)
    if printf '%s' "$body" | grep -q '"status": *"ok"'; then
      say "ok: /api/v1/health is ok after $((SECONDS - t0)) s: ${body:0:120}..."; return
    fi
    sleep 0.5
  done
  "${PODMAN[@]}" logs "$1" 2>&1 | tail -30; fail "/api/v1/health never said ok"
}

job_status() {
  curl -fsS "http://127.0.0.1:$PORT/api/v1/jobs/$1" | "$PY" -c \
    'import json,sys; j=json.load(sys.stdin); print(j["status"], json.dumps(j.get("result") and j["result"]["timestamp_range"]))'
}

# wait_job JOB_ID: prints the final "status range"
wait_job() {
  local state=""
  for _ in $(seq 240); do
    state=$(job_status "$1")
    case "$state" in succeeded*|failed*|cancelled*) break ;; esac
    sleep 0.5
  done
  echo "$state"
}

make_clip() {
  mkdir -p "$CACHE/videos" && chmod 0755 "$CACHE/videos"
  VIDEO="$CACHE/videos/smoke.mp4"
  if [ ! -s "$VIDEO" ]; then
    "$PY" -c "import sys; sys.path.insert(0, '$ROOT/tests/support'); from media import make_video; \
make_video('$VIDEO', duration=4.0, fps=10, intervals=[(1.0, 2.5)])"
  fi
  chmod 0644 "$VIDEO"
}

upload() {
  curl -fsS -F "file=@$VIDEO" "http://127.0.0.1:$PORT/api/v1/videos" \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["video_id"])'
}

step_remote() {
  local t_step=$SECONDS
  "${PODMAN[@]}" image exists "$REMOTE_IMAGE" && [ -n "${VIDGROUND_SMOKE_REUSE:-}" ] \
    || build_image "$REMOTE_IMAGE" remote
  start_fake_model
  PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("",0)); print(s.getsockname()[1])')
  run_container
  wait_healthy "$NAME"

  # the image's HEALTHCHECK (podman schedules it with systemd timers, absent here: run it once)
  "${PODMAN[@]}" healthcheck run "$NAME" || fail "the image's HEALTHCHECK failed"
  say "ok: the image's HEALTHCHECK passes"

  local page uid vid job state t0 stop_s code
  page=$(curl -fsS "http://127.0.0.1:$PORT/") || fail "GET / failed"
  printf '%s' "$page" | grep -qi "<html" || fail "no HTML page on /"
  say "ok: the page answers on /"

  uid=$("${PODMAN[@]}" exec "$NAME" id -u)
  [ "$uid" != 0 ] || fail "the container runs as root"
  say "ok: runs as uid $uid ($("${PODMAN[@]}" exec "$NAME" id -un))"

  # an upload and a job against the fake model server on the host
  vid=$(upload)
  say "ok: uploaded video_id $vid"
  job=$(curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/jobs" \
    -d "{\"video_id\": \"$vid\", \"query\": \"the red square\", \"options\": {\"refine\": false}}" \
    | "$PY" -c 'import json,sys; print(json.load(sys.stdin)["job_id"])')
  state=$(wait_job "$job")
  case "$state" in succeeded*) say "ok: job $job $state" ;; *) fail "job $job: $state" ;; esac

  # restart with the data volume: the job is still there
  "${PODMAN[@]}" restart -t 30 "$NAME" >/dev/null
  wait_healthy "$NAME"
  state=$(job_status "$job")
  case "$state" in succeeded*) say "ok: after a restart the job is still there: $state" ;;
    *) fail "after restart, job $job: $state" ;; esac
  # a new container on the same volume sees it too
  "${PODMAN[@]}" rm -f -t 30 "$NAME" >/dev/null
  run_container
  wait_healthy "$NAME"
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
  cleanup
  note "remote: all checks passed in $((SECONDS - t_step)) s; image $(mb "$REMOTE_IMAGE") MB (base $(mb "$BASE_IMAGE") MB)"
}

# step_torch VARIANT: the image with torch runs the local backend (tiny random Qwen3-VL)
step_torch() {
  local variant=$1 tag="localhost/vidground:$1" t_step=$SECONDS t0
  "${PODMAN[@]}" image exists "$tag" && [ -n "${VIDGROUND_SMOKE_REUSE:-}" ] \
    || build_image "$tag" "$variant"
  t0=$SECONDS
  # no network: the model is built in the container from the mounted builder, nothing downloaded
  "${PODMAN[@]}" run --rm --network none --name "$NAME-$variant" \
    -v "$ROOT/tests/support:/opt/vidground-tests:ro" -v "$CACHE/videos:/app/videos:ro" \
    -e HF_HUB_OFFLINE=1 -e TRANSFORMERS_OFFLINE=1 --entrypoint sh "$tag" -c '
set -eu
echo "uid $(id -u) ($(id -un))"
[ "$(id -u)" != 0 ]
python -c "import torch, torchvision, transformers; print(\"torch\", torch.__version__, \"(CUDA\", torch.version.cuda, \") torchvision\", torchvision.__version__, \"transformers\", transformers.__version__)"
python -c "import sys; sys.path.insert(0, \"/opt/vidground-tests\"); from pathlib import Path; from tiny_qwen import build_tiny_qwen3vl; print(\"tiny Qwen3-VL:\", build_tiny_qwen3vl(Path(\"/tmp/tiny-qwen3vl\")))"
vidground doctor --backend transformers --model /tmp/tiny-qwen3vl --device cpu
vidground locate /app/videos/smoke.mp4 "the red square" --backend transformers \
  --model /tmp/tiny-qwen3vl --device cpu --no-refine --max-frames 4 --json >/tmp/answer.json
python - <<"PY"
import json
answer = json.load(open("/tmp/answer.json"))
def find(d, key):
    if isinstance(d, dict):
        if key in d:
            return d[key]
        for v in d.values():
            if (r := find(v, key)) is not None:
                return r
    return None
calls = find(answer, "model_calls")
assert isinstance(calls, int) and calls >= 1, answer
assert "error" not in answer, answer
print("vidground locate --backend transformers: answered with", calls, "model call(s); keys:", sorted(answer)[:8])
PY
' >"$CACHE/run-$variant.log" 2>&1 || { cat "$CACHE/run-$variant.log"; fail "$variant: the local backend in the container"; }
  sed 's/^/  /' "$CACHE/run-$variant.log" >&2
  say "ok: $variant image: torch, the tiny Qwen3-VL built and run with the network off ($((SECONDS - t0)) s)"
  note "$variant: checks passed in $((SECONDS - t_step)) s; image $(mb "$tag") MB"
}

compose() {
  "$PODMAN_COMPOSE" --podman-args="--runtime runc --cgroup-manager=cgroupfs" --in-pod false \
    -p "$PROJECT" -f "$ROOT/compose.yaml" -f "$ROOT/compose.local.yaml" "$@"
}

step_compose() {
  local t_step=$SECONDS t0 version n
  version=$("$PODMAN_COMPOSE" version 2>/dev/null | sed -n 's/^podman-compose version //p')
  "$PY" -c "import sys; v=tuple(int(x) for x in '${version:-0}'.split('.')[:2]); sys.exit(v < (1, 1))" \
    || fail "podman-compose >= 1.1 is needed (for !override/!reset), found '${version:-none}' at $PODMAN_COMPOSE"
  "${PODMAN[@]}" image exists "$REMOTE_IMAGE" || build_image "$REMOTE_IMAGE" remote
  if ! "${PODMAN[@]}" image exists "$PG_IMAGE"; then
    t0=$SECONDS
    "${PODMAN[@]}" build --format docker --network host --build-arg BASE_IMAGE="$BASE_IMAGE" \
      -t "$PG_IMAGE" -f "$ROOT/docker/postgres.Dockerfile" "$ROOT" >"$CACHE/build-postgres.log" 2>&1 \
      || { tail -30 "$CACHE/build-postgres.log"; fail "podman build postgres"; }
    note "build: $PG_IMAGE in $((SECONDS - t0)) s: $(mb "$PG_IMAGE") MB"
  fi
  if curl -s -o /dev/null "http://127.0.0.1:$COMPOSE_PORT/"; then
    fail "127.0.0.1:$COMPOSE_PORT is taken: compose.local.yaml publishes the front end there"
  fi
  if [ ! -d "$ROOT/videos" ]; then mkdir "$ROOT/videos"; MADE_VIDEOS_DIR=1; fi
  compose down -v -t 5 >/dev/null 2>&1 || true
  t0=$SECONDS
  COMPOSE_UP=1
  compose up -d --no-build >"$CACHE/compose-up.log" 2>&1 \
    || { tail -30 "$CACHE/compose-up.log"; fail "podman-compose up"; }
  "${PODMAN[@]}" ps -a --filter "label=io.podman.compose.project=$PROJECT" \
    --format '{{.Names}} {{.Image}} {{.Status}}' >&2
  PORT=$COMPOSE_PORT
  n=$("${PODMAN[@]}" ps --filter "label=io.podman.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=worker" --format '{{.Names}}' | wc -l)
  [ "$n" = 2 ] || fail "compose started $n worker containers, not 2 (deploy.replicas)"
  wait_healthy "${PROJECT}_vidground_1"
  say "ok: compose up: PostgreSQL, the fake model (vllm), front end, 2 workers; healthy after $((SECONDS - t0)) s"

  local vid req jobs job state runs="" total=0 w code
  vid=$(upload)
  req="{\"video_id\": \"$vid\", \"query\": \"the red square\", \"options\": {\"refine\": false}}"
  jobs=$(curl -fsS -H 'Content-Type: application/json' "http://127.0.0.1:$PORT/api/v1/jobs" \
    -d "{\"requests\": [$req, $req, $req, $req, $req, $req]}" \
    | "$PY" -c 'import json,sys; print(" ".join(json.load(sys.stdin)["job_ids"]))')
  for job in $jobs; do
    state=$(wait_job "$job")
    case "$state" in succeeded*) ;; *) fail "compose job $job: $state" ;; esac
    # the fake model sees the red square from 1.0 s to 2.5 s
    "$PY" -c "import json, sys
def s(t): h, m, x = t.split(':'); return int(h) * 3600 + int(m) * 60 + float(x)
a, b = map(s, json.loads(sys.argv[1]))
sys.exit(not (abs(a - 1.0) <= 0.6 and abs(b - 2.5) <= 0.6))" "${state#succeeded }" \
      || fail "compose job $job: the answer $state is not the red square's 1.0-2.5 s"
  done
  say "ok: 6 jobs through the front end succeeded, each $state"
  for w in 1 2; do
    n=$("${PODMAN[@]}" logs "${PROJECT}_worker_$w" 2>&1 | grep -c ' succeeded (attempt' || true)
    runs="$runs worker_$w=$n" total=$((total + n))
  done
  [ "$total" = 6 ] || fail "the workers report $total succeeded jobs, not 6:$runs"
  say "ok: the 2 workers ran the 6 jobs ($runs ), the front end none"
  for w in 1 2; do
    "${PODMAN[@]}" stop -t 30 "${PROJECT}_worker_$w" >/dev/null
    code=$("${PODMAN[@]}" inspect --format '{{.State.ExitCode}}' "${PROJECT}_worker_$w")
    [ "$code" = 0 ] || fail "worker_$w: exit code $code after SIGTERM"
  done
  say "ok: the workers stop on SIGTERM with exit code 0"
  t0=$SECONDS
  compose down -v -t 10 >"$CACHE/compose-down.log" 2>&1 || { tail -20 "$CACHE/compose-down.log"; fail "podman-compose down"; }
  COMPOSE_UP=""
  say "ok: compose down -v in $((SECONDS - t0)) s"
  cleanup
  note "compose: all checks passed in $((SECONDS - t_step)) s; postgres image $(mb "$PG_IMAGE") MB"
}

T_START=$SECONDS
ensure_conf
mkdir -p "$CACHE"
make_base
[ "$#" -gt 0 ] || set -- remote compose
cd "$ROOT"
trap cleanup EXIT
for step in "$@"; do
  case "$step" in
    base) ;;
    build) build_image "$REMOTE_IMAGE" remote ;;
    remote) make_clip; step_remote ;;
    cpu|gpu) make_clip; step_torch "$step" ;;
    compose) make_clip; step_compose ;;
    *) fail "unknown step '$step' (base, build, remote, cpu, gpu, compose)" ;;
  esac
done
say "all steps ($*) passed in $((SECONDS - T_START)) s"
