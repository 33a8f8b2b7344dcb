"""Settings in one place: defaults, ``VIDGROUND_*`` environment variables, CLI flags."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_GPU_MODEL = "Qwen/Qwen3-VL-4B-Instruct"
DEFAULT_CPU_MODEL = "Qwen/Qwen3-VL-2B-Instruct"


class Settings(BaseSettings):
    """Every setting can be given as ``VIDGROUND_<NAME>`` (e.g. ``VIDGROUND_BACKEND=openai``)."""

    model_config = SettingsConfigDict(env_prefix="VIDGROUND_", extra="ignore")

    backend: str = "transformers"
    model: str | None = Field(
        default=None,
        description="model id or local path; default: 4B with a GPU, 2B on CPU",
    )
    model_source: str = Field(default="huggingface", description="huggingface or modelscope")
    device: str = "auto"
    dtype: str = "auto"
    attn_implementation: str | None = None
    adapter: str | None = Field(
        default=None, description="local backend: a LoRA adapter folder from `vidground "
        "finetune` (OUT/adapter; merged into the weights at load) or a merged checkpoint")

    openai_base_url: str = "http://127.0.0.1:8000/v1"
    openai_api_key: str | None = None
    openai_model: str | None = None
    openai_timeout_s: float = 120.0
    openai_max_concurrency: int = 4
    openai_max_retries: int = 3
    openai_image_quality: int = 85
    openai_video_mode: str = Field(default="images", description="images or video_url")
    openai_max_image_side: int | None = Field(
        default=None, description="downscale frames sent to the server to this longest side")
    openai_max_request_mb: float = 20.0
    openai_max_frames_per_request: int = 256
    structured_output: bool = Field(
        default=False, description="ask grounding answers as JSON held to a schema: "
        "response_format for OpenAI-compatible servers (free text where refused), xgrammar "
        "for the local backend (pip install 'vidground[structured]')")

    host: str = "127.0.0.1"
    port: int = 7860
    media_root: Path = Path(".")
    data_dir: Path = Path("~/.vidground").expanduser()
    api_key: str | None = None
    max_upload_mb: int = 2048
    max_video_duration_s: float = 4 * 3600
    max_video_pixels: int = 8192 * 8192
    workers: int = 1
    queue_limit: int = 64
    job_max_attempts: int = 3
    preload_model: bool = False
    # server (added by the server author)
    enable_ui: bool = Field(default=True, description="serve the web page at / (needs gradio)")
    job_queue_limit: int = Field(default=10_000, description="most queued jobs before 429")
    max_request_kb: int = Field(default=4096, description="largest JSON request body")
    upload_retention_hours: float = Field(
        default=168.0, ge=0, description="delete uploads unused for this long (0: keep them)")
    # heavy output work: clips and evidence frames (issue 21)
    heavy_workers: int = Field(
        default=2, ge=1, description="clip/evidence requests encoded at once (CPU work, "
        "outside the model's queue)")
    heavy_queue_limit: int = Field(
        default=16, ge=0, description="clip/evidence requests that may wait for a heavy worker "
        "before 429")
    probe_limit: int = Field(
        default=4, ge=1, description="videos probed at once (each opens and reads the file)")
    max_outputs_mb: float = Field(
        default=2048.0, ge=0, description="most disk space clips and evidence frames under "
        "<data_dir>/outputs may use; the oldest are deleted first, 507 when it is still full "
        "(0: no limit)")
    # cache of decoded frames and visual features (vidground.cache)
    cache_dir: Path | None = Field(
        default=None, description="decoded frames and visual features (default <data_dir>/cache)")
    cache_max_gb: float = Field(
        default=10.0, ge=0, description="most disk space the cache may use (0 turns it off)")
    # who may talk to the server (DNS rebinding, CSRF, slow clients, key guessing)
    allowed_hosts: str = Field(
        default="", description="comma-separated Host names served besides the loopback "
        "names and the bind address; '*' serves any (needed behind a proxy on 0.0.0.0)")
    allowed_origins: str = Field(
        default="", description="comma-separated origins (https://app.example.com) whose "
        "pages may send state-changing requests; the server's own origin always may")
    header_timeout_s: float = Field(
        default=10.0, gt=0, description="close connections whose request headers are not "
        "complete after this long")
    auth_max_failures: int = Field(
        default=20, ge=1, description="failed logins / wrong API keys per client address per "
        "minute before it gets 429")
    # job store and workers (issue 16)
    job_store: str | None = Field(
        default=None, description="where jobs live: unset = <data_dir>/jobs.sqlite3; "
        "postgresql://user:password@host:5432/db = a database several front ends and "
        "`vidground worker`s share; anything else = a SQLite file path")
    job_lease_s: float = Field(
        default=60.0, gt=0, description="a running job's claim lasts this long without a "
        "heartbeat (renewed every third of it); then another process re-runs the job")
    run_jobs: bool = Field(
        default=True, description="`vidground serve` also runs queued jobs (false: a front "
        "end only; `vidground worker` processes run them)")
    # live monitors (issue 25): stored in the job store, run under a lease
    max_monitors: int = Field(
        default=16, ge=0, description="most live monitors that may exist (POST "
        "/api/v1/monitors answers 409 past it); also the most one process runs")
    run_monitors: bool = Field(
        default=True, description="this server (or worker) runs stored monitors (false: it "
        "only stores them; another process runs them)")

    def list_setting(self, name: str) -> list[str]:
        """A comma-separated setting as a list of its non-empty items."""
        return [item.strip() for item in str(getattr(self, name) or "").split(",")
                if item.strip()]
