# syntax=docker/dockerfile:1
# The vidground image: the web page + REST API (`vidground serve`, the default) or a job worker
# (`vidground worker`). Build variants (VARIANT):
#   gpu     (default) torch with CUDA wheels, runs the model in the container
#   cpu     torch CPU wheels (the 2B model on CPU: slow, for trying it out)
#   remote  no torch at all: the model runs on a vLLM/SGLang/DashScope server (VIDGROUND_BACKEND=openai)
#
#   docker build -t vidground .
#   docker build -t vidground:cpu --build-arg VARIANT=cpu .
#   docker build -t vidground:remote --build-arg VARIANT=remote --build-arg EXTRAS=ray .
#
# Where torch comes from (TORCH_INDEX_URL): empty = the variant's usual index: gpu -> your pip's
# index (PyPI: its x86_64 torch is a CUDA build), cpu -> https://download.pytorch.org/whl/cpu.
# Any PEP 503 index otherwise, e.g. --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cu126
# for an older driver, or a mirror. TORCH_VERSION and TORCHVISION_VERSION must be a matching pair.
# pip also reads PIP_* variables and /etc/pip.conf, so a build can take wheels from a local
# directory without a network (what scripts/container-smoke.sh does, as `podman build -v`):
#   podman build -v /opt/wheels:/opt/wheels:ro -v ./pip.conf:/etc/pip.conf:ro --build-arg ... .
#
# BASE_IMAGE: any image with Python 3.10+ whose `python` and `pip` are on PATH (default
# python:3.11-slim). scripts/container-smoke.sh builds on a local Debian bookworm base made with
# debootstrap (no registry there) and runs the images: remote (page, health, upload + job,
# non-root, restart with the data volume, SIGTERM), gpu (the local backend on a tiny Qwen3-VL,
# network off) and compose.yaml (+ compose.local.yaml: PostgreSQL, front end, 2 workers).
#   docker run --gpus all -p 7860:7860 -v ./videos:/app/videos \
#       -v ~/.cache/huggingface:/app/cache/huggingface vidground
#
# The weights are not baked in: mount a Hugging Face cache (above) or use a remote backend
# (-e VIDGROUND_BACKEND=openai -e VIDGROUND_OPENAI_BASE_URL=http://vllm:8000/v1). Jobs and
# uploads live in /app/data (mount a volume to keep them). See docs/scaling-out.md and compose.yaml.
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG VARIANT=gpu
# more extras, comma-separated (e.g. ray: the image as a KubeRay worker for `vidground batch`)
ARG EXTRAS=""
# a matching pair (the one the project's tests pin)
ARG TORCH_VERSION=2.14.1
ARG TORCHVISION_VERSION=0.29.1
# empty: gpu -> pip's default index (PyPI, CUDA wheels on x86_64), cpu -> PyTorch's CPU index
ARG TORCH_INDEX_URL=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    HF_HOME=/app/cache/huggingface \
    VIDGROUND_HOST=0.0.0.0 \
    VIDGROUND_PORT=7860 \
    VIDGROUND_MEDIA_ROOT=/app/videos \
    VIDGROUND_DATA_DIR=/app/data

WORKDIR /src
# pinned: torch==TORCH_VERSION, torchvision==TORCHVISION_VERSION (hadolint cannot see build args)
# hadolint ignore=DL3013
RUN case "$VARIANT" in \
      gpu) index="${TORCH_INDEX_URL}" ;; \
      cpu) index="${TORCH_INDEX_URL:-https://download.pytorch.org/whl/cpu}" ;; \
      remote) exit 0 ;; \
      *) echo "VARIANT must be gpu, cpu or remote, not '$VARIANT'" >&2; exit 1 ;; \
    esac \
    && pip install ${index:+--index-url "$index"} \
         "torch==${TORCH_VERSION}" "torchvision==${TORCHVISION_VERSION}" \
    && python -c "import torch, torchvision; print('torch', torch.__version__, 'torchvision', torchvision.__version__)"
COPY pyproject.toml README.md ./
COPY src ./src
# this repository's own source; its dependencies' ranges are pyproject.toml's
# hadolint ignore=DL3013
RUN if [ "$VARIANT" = remote ]; then extras="server,postgres"; else extras="local,server,postgres"; fi \
    && pip install ".[${extras}${EXTRAS:+,$EXTRAS}]" \
    && python -c "import vidground, vidground.server.app, psycopg"

COPY docker/entrypoint.sh /usr/local/bin/vidground-entrypoint
COPY docker/healthcheck.py /usr/local/lib/vidground-healthcheck.py
RUN useradd --create-home --uid 1000 vidground \
    && mkdir -p /app/videos /app/data /app/cache/huggingface \
    && chown -R vidground:vidground /app \
    && chmod 0755 /usr/local/bin/vidground-entrypoint
# numeric, so Kubernetes' runAsNonRoot can check it (uid 1000 = vidground)
USER 1000:1000
WORKDIR /app
VOLUME ["/app/data"]
EXPOSE 7860
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s \
    CMD ["python", "/usr/local/lib/vidground-healthcheck.py"]
ENTRYPOINT ["vidground-entrypoint"]
CMD ["serve"]
