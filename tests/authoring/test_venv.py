"""The authoring tests' venv sees the packages of the interpreter running the
tests, whether that one runs in a venv or not, and its own installs come first."""

from __future__ import annotations

from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")


def _purelib(venv, tmp_path) -> Path:  # type: ignore[no-untyped-def]
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    return Path(venv.run(["python", "-c", code], cwd=tmp_path).stdout.strip())


def test_the_venv_imports_what_the_test_interpreter_imports(venv, tmp_path):
    import typer

    code = "import sys, typer, pluggy, pytest, setuptools; print(sys.prefix); print(typer.__file__)"
    prefix, typer_file = venv.run(["python", "-c", code], cwd=tmp_path).stdout.splitlines()
    assert prefix == str(venv.path) and typer_file == typer.__file__


def test_a_venv_made_inside_a_venv_sees_the_outer_venvs_packages(venv, tmp_path):
    """As when a user runs the tests in `python -m venv v && . v/bin/activate`:
    a package installed only in that venv must be importable in the one the
    tests make (`--system-site-packages` would show the base interpreter's)."""
    (_purelib(venv, tmp_path) / "only_in_the_outer_venv.py").write_text("WHERE = 'outer'\n", encoding="utf-8")
    inner = tmp_path / "inner"
    make = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('authoring_conftest', {str(CONFTEST)!r})\n"
        "mod = importlib.util.module_from_spec(spec); sys.modules[spec.name] = mod; spec.loader.exec_module(mod)\n"
        f"mod.make_venv(mod.Path({str(inner)!r}))\n"
    )
    venv.run(["python", "-c", make], cwd=tmp_path)
    out = subprocess_run(inner / "bin" / "python", "import only_in_the_outer_venv as m, typer, sys; print(m.WHERE, sys.prefix)")
    assert out == f"outer {inner}"


def subprocess_run(python: Path, code: str) -> str:
    import os
    import subprocess

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    return subprocess.run([str(python), "-c", code], env=env, check=True, capture_output=True, text=True, timeout=120).stdout.strip()
