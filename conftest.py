"""Shared fixtures. Tests never pick up stray installed plugins: autoloading is
off unless a test asks for a plugin by name (see `load_only`)."""

from __future__ import annotations

import os

os.environ["COOKBOOK_LOAD_PLUGINS"] = ""
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# A bug keeps its traceback in tests (the CLI otherwise prints one line for it).
os.environ.setdefault("COOKBOOK_DEBUG", "1")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SHARED_TOKENIZERS = Path(__file__).resolve().parent.parent / "shared" / "tokenizers"
# The families tests read, each with the files they read.
SHARED_FAMILIES = ("llama3", "qwen3", "gpt_oss", "deepseek_v3")
SHARED_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")


def missing_shared_files(root: Path = SHARED_TOKENIZERS) -> list[str]:
    """The family folders and files under `root` that the tests need and that are absent."""
    if not root.is_dir():
        return [str(root)]
    return [str(root / fam / f) for fam in SHARED_FAMILIES for f in SHARED_FILES if not (root / fam / f).is_file()]


@pytest.fixture(scope="session")
def shared_tokenizers() -> Path:
    """`../shared/tokenizers`: real tokenizers and chat templates (the renderer oracle),
    one folder per family in SHARED_FAMILIES.

    In CI (CI=true, which scripts/test.sh sets) anything missing is a failure,
    never a silent skip."""
    missing = missing_shared_files()
    if missing:
        what = f"missing: {', '.join(missing)}"
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            pytest.fail(f"shared tokenizer fixtures are incomplete in CI; {what}", pytrace=False)
        pytest.skip(f"shared tokenizer fixtures {what}")
    return SHARED_TOKENIZERS


@pytest.fixture
def load_only(monkeypatch):
    """Reload plugins with COOKBOOK_LOAD_PLUGINS set to the given names."""
    from cookbook_cli.plugins import manager

    def _load(*names: str) -> None:
        monkeypatch.setenv("COOKBOOK_LOAD_PLUGINS", ",".join(names))
        manager.reset()

    yield _load
    manager.reset()


class FakePlugins:
    """Installed-looking plugin distributions in one folder on sys.path (a module
    and a dist-info with a `cookbook` entry point each); `run` starts the CLI in a
    subprocess that sees them."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.names: list[str] = []
        self.modules: list[str] = []

    def add(self, dist: str, body: str, module: str | None = None, entry_point: str | None = None) -> str:
        import textwrap

        module = module or dist.replace("-", "_") + "_mod"
        (self.root / f"{module}.py").write_text(textwrap.dedent(body), encoding="utf-8")
        info = self.root / f"{dist.replace('-', '_')}-1.2.3.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.2.3\n", encoding="utf-8")
        (info / "entry_points.txt").write_text(f"[cookbook]\n{dist} = {entry_point or module}\n", encoding="utf-8")
        self.names.append(dist)
        self.modules.append(module)
        return dist

    def run(self, *args: str, load: str | None = None, input: str | None = None, **env: str):  # type: ignore[no-untyped-def]
        """`cookbook ARGS` with these plugins loadable (by default all of them)."""
        import subprocess
        import sys

        full_env = {
            **os.environ,
            "COOKBOOK_LOAD_PLUGINS": ",".join(self.names) if load is None else load,
            "PYTHONPATH": os.pathsep.join([str(self.root), os.environ.get("PYTHONPATH", "")]),
            **env,
        }
        return subprocess.run(
            [sys.executable, "-m", "cookbook_cli", *args], capture_output=True, text=True, env=full_env, input=input, timeout=120
        )


@pytest.fixture
def fake_plugins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Write fake installed plugins with `fake_plugins.add(dist, module_source)`;
    load them in-process with `load_only(...)`, or run the CLI with `.run(...)`."""
    import sys

    root = tmp_path / "site"
    root.mkdir()
    monkeypatch.syspath_prepend(str(root))
    fakes = FakePlugins(root)
    yield fakes
    for module in fakes.modules:  # the next test's module of the same name is a new one
        sys.modules.pop(module, None)


@pytest.fixture
def bwrap_backend() -> str:
    """The code sandbox's bubblewrap path. In CI (CI=true) bwrap missing is a
    failure, never a skip: scripts/test.sh installs it."""
    from cookbook_cli.sandbox import sandbox_backend
    from cookbook_cli.sandbox.bwrap import bwrap_problem

    problem = bwrap_problem()
    if problem is not None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{problem}: scripts/test.sh installs bubblewrap (apt-get install bubblewrap)")
        pytest.skip(problem)
    return sandbox_backend("bwrap")


#: Session fixtures costly enough that every test using them runs on one
#: xdist worker (name -> group), so they are built once, not once per worker.
SHARED_SESSION_FIXTURES = {"pm_run": "pm"}


def xdist_group_of(item: pytest.Item) -> str | None:
    """The worker group of a test: the group of a costly session fixture it
    uses, else its module and the module-scoped fixtures it uses, else none.

    `--dist loadgroup` (scripts/test.sh) hands every ungrouped test to
    whichever worker is free, so a module's tests interleave with other
    modules' on both workers, and a module-scoped fixture (a reference run, a
    venv with plugins installed) is built again on each worker and each time a
    worker comes back to the module. Grouped, its tests run in a row on one
    worker and it is built once."""
    names = item.fixturenames if isinstance(item, pytest.Function) else []
    for name in names:
        if name in SHARED_SESSION_FIXTURES:
            return SHARED_SESSION_FIXTURES[name]
    # The scopes of the fixtures a test uses are known only to pytest's fixture info.
    defs = getattr(getattr(item, "_fixtureinfo", None), "name2fixturedefs", {})
    shared = sorted(name for name, chain in defs.items() if chain and chain[-1].scope == "module")
    return f"{item.nodeid.split('::', 1)[0]}::{'+'.join(shared)}" if shared else None


# tryfirst: the marks must be in place before xdist's own hook turns them into
# the groups it schedules by (a suffix of the node id: pytest<9.2, pyproject.toml).
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        group = None if item.get_closest_marker("xdist_group") else xdist_group_of(item)
        if group is not None:
            item.add_marker(pytest.mark.xdist_group(group))
