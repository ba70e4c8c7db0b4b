"""A fresh virtual environment with the project, as a plugin author has one.

`python -m venv --without-pip` plus a `.pth` file that adds the site
directories of the interpreter running the tests (its venv's, if it runs in
one, and the system's it sees) sees the same packages (cookbook's
dependencies, pytest, torch), so installing a plugin into it is fast and
offline: `pip install --no-deps --no-build-isolation -e DIR` with the outer
pip. (`--system-site-packages` alone is not enough inside a venv: it names the
base interpreter's packages, not the venv's.) Its `bin/` holds the
commands a user types: `python`, and small shims for `pip`, `pytest` and
`cookbook` that run them under the venv's interpreter. `PYTHONPATH` is the
checkout under test, so `cookbook_cli` is this tree whatever is installed.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

PIP_SHIM = """#!/bin/sh
# pip under this venv's interpreter; installs are offline (no build isolation, no dependencies).
if [ "$1" = "install" ]; then shift; exec "{python}" -m pip install -q --no-deps --no-build-isolation "$@"; fi
exec "{python}" -m pip "$@"
"""
PYTEST_SHIM = """#!/bin/sh
exec "{python}" -m pytest -p no:cacheprovider "$@"
"""
COOKBOOK_SHIM = """#!{python}
from cookbook_cli.cli.main import main

main()
"""


@dataclass
class Venv:
    path: Path

    @property
    def bin(self) -> Path:
        return self.path / "bin"

    @property
    def python(self) -> Path:
        return self.bin / "python"

    def env(self, **extra: str) -> dict[str, str]:
        env = dict(os.environ)
        env.pop("PYTEST_ADDOPTS", None)
        env.pop("PYTEST_CURRENT_TEST", None)
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["VIRTUAL_ENV"] = str(self.path)
        env["PYTHONPATH"] = str(ROOT)
        env["HF_HUB_OFFLINE"] = "1"
        env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
        env["PIP_NO_INPUT"] = "1"
        env.update(extra)
        return env

    def run(self, args: list[str], cwd: Path, timeout: float = 300, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Run a command of the venv's bin/ (e.g. ["cookbook", "renderers", "list"])."""
        cmd = [str(self.bin / args[0]), *args[1:]]
        proc = subprocess.run(cmd, cwd=cwd, env=self.env(**extra_env), capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(
                f"`{' '.join(args)}` exited {proc.returncode}\n--- stdout\n{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-6000:]}"
            )
        return proc

    def pip_install(self, *dirs: Path, cwd: Path) -> None:
        self.run(["pip", "install", *[a for d in dirs for a in ("-e", str(d))]], cwd=cwd, timeout=600)


def make_venv(path: Path) -> Venv:
    import importlib.util

    if importlib.util.find_spec("setuptools") is None:
        pytest.fail("installing plugins offline needs setuptools beside pytest: pip install -e '.[dev]'", pytrace=False)
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    venv = Venv(path)
    python = str(venv.python)
    _see_outer_site_dirs(python)
    for name, text in (("pip", PIP_SHIM), ("pytest", PYTEST_SHIM), ("cookbook", COOKBOOK_SHIM)):
        shim = venv.bin / name
        shim.write_text(text.format(python=python), encoding="utf-8")
        shim.chmod(0o755)
    return venv


def outer_site_dirs() -> list[str]:
    """The site directories this interpreter reads packages from, in order:
    its own (a venv's, if it runs in one), the user's, and the system's it sees."""
    import site

    dirs = [*site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        dirs.append(site.getusersitepackages())
    dirs += [p for p in sys.path if p.rstrip("/").endswith(("site-packages", "dist-packages"))]
    return [d for i, d in enumerate(dirs) if Path(d).is_dir() and d not in dirs[:i]]


def _see_outer_site_dirs(python: str) -> None:
    """Add the outer site directories after the new venv's own, with their .pth
    files processed (editable installs are .pth files)."""
    own = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
        check=True, capture_output=True, text=True, timeout=60,
    ).stdout.strip()
    lines = [f"import site; site.addsitedir({d!r})" for d in outer_site_dirs()]
    (Path(own) / "_cookbook_outer_site.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A fresh virtual environment for this test module."""
    return make_venv(tmp_path_factory.mktemp("venv") / "venv")
