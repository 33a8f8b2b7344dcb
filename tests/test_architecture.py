"""The shape of the code: no import cycles in ``src/vidground`` (module-level, function-local and
``if TYPE_CHECKING:`` imports all count: a cycle hidden from the interpreter is still two modules
that cannot be understood apart), no module importing a higher layer than docs/architecture.md
allows, and the error-code table of docs/api.md lists exactly the codes the server can
answer."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import re
from pathlib import Path

import vidground

SRC = Path(vidground.__file__).resolve().parent
DOCS = SRC.parent.parent / "docs"


def _module_name(path: Path) -> str:
    rel = path.relative_to(SRC.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, modules: set[str], source: str | None = None) -> set[str]:
    """The vidground modules ``path`` imports anywhere in it (a ``from pkg import name`` of a
    submodule counts as importing that submodule); ``source``: its text, when not read from
    ``path``."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.Import):
                found.update(a.name for a in child.names if a.name.startswith("vidground"))
            elif isinstance(child, ast.ImportFrom):
                if child.level:
                    base = package.split(".")
                    base = base[: len(base) - (child.level - 1)]
                    target = ".".join(base + ([child.module] if child.module else []))
                else:
                    target = child.module or ""
                if target.startswith("vidground"):
                    found.add(target)
                    for alias in child.names:
                        if f"{target}.{alias.name}" in modules:
                            found.add(f"{target}.{alias.name}")
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8") if source is None else source))
    resolved = set()
    for target in found:
        while target not in modules and "." in target:
            target = target.rpartition(".")[0]
        if target in modules and target != name:
            resolved.add(target)
    return resolved


def import_graph() -> dict[str, set[str]]:
    files = sorted(SRC.rglob("*.py"))
    modules = {_module_name(f) for f in files}
    return {_module_name(f): _imports(f, modules) for f in files}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            # a package imports its own submodules to re-export them: an edge down, never a
            # cycle by itself, so edges from a submodule to its own package are left out
            if v.startswith(w + "."):
                continue
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            strong(v)
    return out


def test_no_import_cycles_in_the_package() -> None:
    graph = import_graph()
    assert "vidground.server.app" in graph and graph["vidground.server.app"]
    assert _cycles(graph) == []


def test_the_cycle_finder_finds_cycles() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_type_checking_imports_count() -> None:
    """An import only type checkers see is an edge too (the last cycle, service <->
    output_files, hid under ``if TYPE_CHECKING:``)."""
    modules = {"vidground.server.output_files", "vidground.server.service"}
    source = ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
              "    from .service import Service\n")
    found = _imports(SRC / "server" / "output_files.py", modules, source)
    assert found == {"vidground.server.service"}


# -- layers ----------------------------------------------------------------------------------
# docs/architecture.md: data flows one way, video -> frames -> model -> spans -> API/UI. A module
# may import its own layer and the layers below it, never one above.
LAYERS: tuple[tuple[str, ...], ...] = (
    # leaf values everyone may import (and the package itself, see FACADE)
    ("vidground", "timecode", "options", "errors", "progress", "config", "frame", "prompt"),
    ("video",),  # knows nothing about models
    ("backends", "cache", "perception"),  # the model; the disk cache; what is read off frames
    ("grounding",),  # the pipeline
    # what people take elsewhere; the pipeline run over many videos (eval, batch, training,
    # a searchable library index) or over a live stream
    ("outputs", "evaluation", "finetune", "batch", "search", "live"),
    ("server", "cli", "cli_support", "doctor", "worker", "__main__"),  # entry points
)
ENTRY_LAYER = len(LAYERS) - 1

#: Imports of a higher layer that the code still makes: debt, each with its issue. Remove a
#: line when its import goes; the test fails on a line that no longer matches anything.
LAYER_DEBT: frozenset[tuple[str, str]] = frozenset()


def layer_of(module: str) -> int:
    """The layer of ``module`` (a command group's ``cli`` module is an entry point, whatever
    folder it lives in)."""
    parts = module.split(".")
    if parts[-1] == "cli":
        return ENTRY_LAYER
    top = parts[1] if len(parts) > 1 else parts[0]
    for number, names in enumerate(LAYERS):
        if top in names:
            return number
    raise AssertionError(f"{module} is in no layer: add its folder to LAYERS (and to "
                         "docs/architecture.md)")


#: The package itself is the library's front: it names ``Grounder``, ``probe``... for type
#: checkers and loads them on first use; what others import from it is leaf (``__version__``).
FACADE = "vidground"


def layer_violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    return {(module, target) for module, targets in graph.items() for target in targets
            if module != FACADE and layer_of(target) > layer_of(module)}


def test_no_module_imports_a_higher_layer() -> None:
    found = layer_violations(import_graph())
    assert found - LAYER_DEBT == set(), "imports of a higher layer (see docs/architecture.md)"
    assert LAYER_DEBT - found == set(), "paid debt: remove these lines from LAYER_DEBT"


def test_nothing_in_video_knows_about_models() -> None:
    """docs/architecture.md: ``video/`` knows nothing about models. Qwen3-VL's patch, merge
    and token geometry lives in ``backends/geometry.py`` (it was ``video/resize.py``)."""
    model_words = re.compile(r"qwen|tokens?\b|patch(es)?\b|merge_size|vision[ _-]?process",
                             re.IGNORECASE)
    found = [f"{path.relative_to(SRC)}:{number}: {line.strip()}"
             for path in sorted((SRC / "video").rglob("*.py"))
             for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
             if model_words.search(line)]
    assert found == [], "model geometry belongs to backends/geometry.py"


def test_the_layer_check_finds_upward_imports() -> None:
    graph = {"vidground.video.probe": {"vidground.grounding.pipeline", "vidground.errors"},
             "vidground.outputs.cli": {"vidground.server.app"},
             "vidground.server.service": {"vidground.video.probe"}}
    assert layer_violations(graph) == {("vidground.video.probe", "vidground.grounding.pipeline")}


def test_the_worker_and_the_service_run_without_fastapi() -> None:
    """Nothing below the HTTP shells knows about HTTP: the worker reaches the service without
    importing FastAPI or Starlette (the service is not re-exported through the app)."""
    import subprocess
    import sys

    code = ("import sys\n"
            "for name in ('fastapi', 'starlette', 'gradio', 'uvicorn'): sys.modules[name] = None\n"
            "import vidground.worker\n"
            "from vidground.server.service import CheckedRequest, Service\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]
    assert "vidground.server.app" not in import_graph()["vidground.worker"]


def _error_classes() -> list[type]:
    for info in pkgutil.walk_packages(vidground.__path__, "vidground."):
        if info.name.endswith("__main__"):
            continue
        try:
            importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed (e.g. bitsandbytes)
            continue
    found, todo = [], [vidground.errors.VidgroundError]
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo.extend(cls.__subclasses__())
    return found


def _documented_statuses() -> dict[str, set[int]]:
    """docs/api.md's error table: code -> the statuses its row names."""
    text = (DOCS / "api.md").read_text(encoding="utf-8")
    table = text[text.index("## Errors"):text.index("## Security notes")]
    documented: dict[str, set[int]] = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 3 and re.fullmatch(r"[0-9 /]+", cells[0]):
            statuses = {int(n) for n in re.findall(r"[0-9]+", cells[0])}
            for code in re.findall(r"`([a-z_]+)`", cells[1]):
                documented.setdefault(code, set()).update(statuses)
    return documented


def test_docs_error_table_lists_every_code_the_server_answers() -> None:
    documented = set(_documented_statuses())
    http_codes = {"bad_request", "not_found", "method_not_allowed", "request_too_large",
                  "invalid_request", "internal_error", "host_not_allowed",
                  "cross_origin_refused", "too_many_failed_logins", "store_busy"}
    # errors the CLI meets but the server never answers (no HTTP request can cause them)
    # (or that stop a server or worker from starting, before it answers anything)
    # (the commands `vidground batch` and `watch`: no route of the server reaches them; a
    # route that does must list their codes in docs/api.md)
    cli_only = {"vidground_error", "event_not_found", "evaluation_error", "finetune_error",
                "worker_setup", "job_store_too_new", "invalid_manifest"}
    raised = {cls.code for cls in _error_classes()} - cli_only
    missing = raised - documented
    assert not missing, f"codes the server answers but docs/api.md does not list: {missing}"
    stale = documented - raised - http_codes
    assert not stale, f"codes docs/api.md lists but nothing raises: {stale}"


def test_every_documented_error_code_gets_its_documented_status() -> None:
    """The edge's table (server/statuses.py, looked up along each error's MRO) answers every
    code docs/api.md lists with the status its row names."""
    from vidground.server.statuses import status_for

    documented = _documented_statuses()
    wrong = {cls.code: (status_for(cls), sorted(documented[cls.code]))
             for cls in _error_classes()
             if cls.code in documented and status_for(cls) not in documented[cls.code]}
    assert not wrong, f"code: (status answered, statuses documented): {wrong}"
    assert status_for(_error_classes()[0]("x")) == 400  # an instance is looked up by its class


def test_no_error_knows_http() -> None:
    """Errors are grouped by meaning; only server/statuses.py maps a group to an HTTP status:
    no class under src/ sets ``http_status`` (read from the source, so a module whose optional
    extra is not installed is checked too)."""
    found = []
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ClassDef):
                continue
            for stmt in node.body:
                targets = (stmt.targets if isinstance(stmt, ast.Assign)
                           else [stmt.target] if isinstance(stmt, ast.AnnAssign) else [])
                if any(isinstance(t, ast.Name) and t.id == "http_status" for t in targets):
                    found.append(f"{path.relative_to(SRC)}:{stmt.lineno} {node.name}")
    assert found == [], f"map the error's group in server/statuses.py instead: {found}"
    assert not any("http_status" in vars(cls) for cls in _error_classes())


def test_error_groups_by_meaning() -> None:
    """The parents the regroup fixed: a missing output is a missing thing, not the answer
    "the event does not happen"; a job not finished and an unreadable result are not bad
    options."""
    from vidground.errors import (
        ConflictError,
        EventNotFoundError,
        InvalidInputError,
        NotFoundError,
        OptionsError,
        VideoError,
        VideoNotFoundError,
    )
    from vidground.outputs.results import ResultError
    from vidground.server.errors import JobNotDoneError, JobNotFoundError, OutputNotFoundError

    assert issubclass(OutputNotFoundError, NotFoundError)
    assert not issubclass(OutputNotFoundError, EventNotFoundError)
    assert not issubclass(EventNotFoundError, NotFoundError)
    assert issubclass(JobNotDoneError, ConflictError) and not issubclass(JobNotDoneError,
                                                                        OptionsError)
    assert issubclass(ResultError, InvalidInputError) and not issubclass(ResultError,
                                                                        OptionsError)
    assert issubclass(JobNotFoundError, NotFoundError)
    assert issubclass(VideoNotFoundError, VideoError)  # still caught where a video fails


def test_each_request_is_probed_once(tmp_path: Path, fake_model, monkeypatch) -> None:
    """A sync request and a job each open the video to probe it exactly once (the request was
    probed in the service and again in the Grounder)."""
    from fastapi.testclient import TestClient
    from media import make_video
    from server_utils import wait_for

    from vidground.config import Settings
    from vidground.server.app import create_app

    probe_module = importlib.import_module("vidground.video.probe")  # the module, not the function
    make_video(tmp_path / "a.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.0)])
    opened: list[str] = []
    real = probe_module._check_file
    monkeypatch.setattr(probe_module, "_check_file",
                        lambda file: (opened.append(Path(file).name), real(file))[1])
    fake_model.configure(delay_s=0.0, answer=None)
    app = create_app(Settings(backend="openai", openai_base_url=fake_model.base_url,
                              openai_model=fake_model.model, openai_max_retries=0,
                              media_root=tmp_path, data_dir=tmp_path / "data",
                              enable_ui=False))
    body = {"video_path": "a.mp4", "query": "When is the red square visible?",
            "options": {"refine": False, "verify": False}}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.post("/api/v1/inference", json=body).status_code == 200
        assert opened == ["a.mp4"], opened
        opened.clear()
        job_id = client.post("/api/v1/jobs", json=body).json()["job_id"]
        wait_for(lambda: client.get(f"/api/v1/jobs/{job_id}").json()["status"]
                 == "succeeded", timeout_s=60)
        assert opened == ["a.mp4"], opened


def test_a_request_is_checked_once(tmp_path: Path, fake_model, monkeypatch) -> None:
    """``Service.validate`` checks a request once and hands the result on: a sync request's
    options are parsed once (``validate`` and ``locate`` both parsed them), and a clips
    request probes its video once."""
    from fastapi.testclient import TestClient
    from media import make_video

    from vidground.config import Settings
    from vidground.options import LocateOptions
    from vidground.server.app import create_app

    probe_module = importlib.import_module("vidground.video.probe")
    make_video(tmp_path / "a.mp4", duration=2.0, fps=10, intervals=[(0.5, 1.0)])
    opened: list[str] = []
    real_check = probe_module._check_file
    monkeypatch.setattr(probe_module, "_check_file",
                        lambda file: (opened.append(Path(file).name), real_check(file))[1])
    parsed: list[object] = []
    real_parse = LocateOptions.from_mapping.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(LocateOptions, "from_mapping", classmethod(
        lambda cls, values: (parsed.append(values), real_parse(cls, values))[1]))
    fake_model.configure(delay_s=0.0, answer=None)
    app = create_app(Settings(backend="openai", openai_base_url=fake_model.base_url,
                              openai_model=fake_model.model, openai_max_retries=0,
                              media_root=tmp_path, data_dir=tmp_path / "data",
                              enable_ui=False))
    body = {"video_path": "a.mp4", "query": "When is the red square visible?",
            "options": {"refine": False, "verify": False}}
    with TestClient(app, base_url="http://127.0.0.1") as client:
        assert client.post("/api/v1/inference", json=body).status_code == 200
        assert parsed == [{"refine": False, "verify": False}], parsed
        opened.clear()
        clips = client.post("/api/v1/clips", json={"video_path": "a.mp4",
                                                   "spans": [{"start": 0.5, "end": 1.0}]})
        assert clips.status_code == 200, clips.text
        assert opened[:1] == ["a.mp4"] and opened.count("a.mp4") == 1, opened


def test_prompts_and_the_backend_contract_import_without_pyav() -> None:
    """``Frame`` is a leaf value and ``Prompt`` lives with the prompts, so the prompts, the
    answer parser and the backends' contract import where PyAV is missing."""
    import subprocess
    import sys

    code = ("import sys; sys.modules['av'] = None\n"
            "import vidground.grounding.prompts, vidground.grounding.answer\n"
            "import vidground.backends.base, vidground.frame, vidground.prompt\n"
            "assert 'av' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_a_backend_with_only_the_required_members_gets_the_declared_defaults() -> None:
    from vidground.backends.base import BaseBackend, as_backend

    class Minimal:
        model_name = "minimal"

        def generate(self, frames, prompt, *, max_new_tokens=512, on_token=None):  # noqa: ANN001
            return f"{len(frames)} frames"

    backend = as_backend(Minimal())
    assert isinstance(backend, BaseBackend) and backend.model_name == "minimal"
    assert (backend.max_concurrency, backend.max_frames_per_request) == (1, None)
    assert backend.is_loaded and backend.load() is None
    assert backend.yes_probability([], None) is None  # type: ignore[arg-type]
    assert backend.generate_many([([], None), ([1, 2], None)]) == ["0 frames", "2 frames"]  # type: ignore[list-item]
    import pytest

    with pytest.raises(TypeError, match="model_name"):
        as_backend(object())


def test_docstring_examples_run() -> None:
    """Every ``>>>`` example in the package's docstrings runs and prints what it says."""
    import doctest

    finder, runner = doctest.DocTestFinder(), doctest.DocTestRunner(
        optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    examples = 0
    for info in pkgutil.walk_packages(vidground.__path__, "vidground."):
        if info.name.endswith("__main__"):
            continue
        try:
            module = importlib.import_module(info.name)
        except ImportError:  # an optional extra that is not installed
            continue
        for test in finder.find(module, info.name):
            if test.examples:
                examples += len(test.examples)
                runner.run(test)
    assert runner.failures == 0, f"{runner.failures} docstring example(s) failed (see above)"
    assert examples >= 20, examples


def test_every_option_is_described_once() -> None:
    from dataclasses import fields

    from vidground.options import OPTION_DOCS, LocateOptions
    from vidground.server.schemas import InferenceOptions

    names = {f.name for f in fields(LocateOptions)}
    assert set(OPTION_DOCS) == names
    schema = InferenceOptions.model_json_schema()["properties"]
    assert {n: schema[n]["description"] for n in names} == OPTION_DOCS
