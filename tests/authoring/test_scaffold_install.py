"""Each kind of `cookbook plugins new` package works unmodified, as a user meets it:
scaffolded into a temporary directory, installed into a fresh virtual
environment with the project, its own tests run with that venv's pytest, and
its name listed by that venv's `cookbook <kind>s list --json`.

The packages are installed with one pip call and tested with one pytest
run (torch is imported once); the results are then checked per package.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import pytest

from cookbook_cli.scaffold import plugin_names

# kind -> (registry name, list command, number of tests its scaffold ships)
KINDS = {
    "renderer": ("acme_chatml", ["renderers", "list", "--json"], 6),
    "env": ("acme.reverse", ["envs", "list", "--json"], 4),
    "dataset": ("acme-capitals", ["datasets", "list", "--json"], 3),
    "loss": ("acme_lnpg", ["losses", "list", "--json"], 4),
    "recipe": ("acme_lastturn", ["train", "--help"], 4),
    "tool": ("acme_wordcount", ["tools", "list", "--json"], 3),
}


@dataclass
class Installed:
    venv: object
    root: Path
    dirs: dict[str, Path]
    results: dict[str, dict[str, str]]  # package dir name -> test name -> outcome
    pytest_output: str


def _outcomes(junit: Path) -> dict[str, dict[str, str]]:
    out: dict[str, dict[str, str]] = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        outcome = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                outcome = "failed"
            elif child.tag == "skipped":
                outcome = "skipped"
        file = case.get("file") or case.get("classname", "")
        package = file.replace("\\", "/").split("/")[0]
        out.setdefault(package, {})[case.get("name", "?")] = outcome
    return out


@pytest.fixture(scope="module")
def installed(venv, tmp_path_factory) -> Installed:
    root = tmp_path_factory.mktemp("plugins")
    dirs = {}
    for kind, (name, _, _) in KINDS.items():
        dirs[kind] = root / plugin_names(kind, name).dist
        venv.run(["cookbook", "plugins", "new", kind, name, "--dir", str(dirs[kind])], cwd=root)
    venv.pip_install(*dirs.values(), cwd=root)
    junit = root / "junit.xml"
    proc = venv.run(
        ["pytest", "-q", f"--junitxml={junit}", "-o", "junit_family=xunit1", "--rootdir", str(root), *[d.name for d in dirs.values()]],
        cwd=root,
        check=False,
        timeout=540,
    )
    return Installed(venv, root, dirs, _outcomes(junit) if junit.exists() else {}, proc.stdout + proc.stderr)


@pytest.mark.parametrize("kind", list(KINDS))
def test_scaffold_installs_passes_its_tests_and_is_listed(installed, kind):
    name, list_args, n_tests = KINDS[kind]
    names = plugin_names(kind, name)
    package = installed.dirs[kind]

    outcomes = installed.results.get(package.name, {})
    assert len(outcomes) == n_tests and set(outcomes.values()) == {"passed"}, (
        f"{package.name}: {outcomes}\n{installed.pytest_output[-8000:]}"
    )

    listed = installed.venv.run(["cookbook", *list_args], cwd=installed.root, COOKBOOK_LOAD_PLUGINS=names.dist)
    if list_args[-1] == "--json":
        rows = {r["name"]: r for r in json.loads(listed.stdout)}
        assert name in rows, f"{name!r} not in `cookbook {' '.join(list_args)}`: {sorted(rows)}"
        assert rows[name]["plugin"] == names.dist
    else:  # `cookbook train --help` lists each recipe with its plugin in brackets
        text = " ".join(listed.stdout.split())
        assert f"{name} " in text and f"[{names.dist}]" in text, listed.stdout
    assert not listed.stderr.strip(), listed.stderr  # no plugin load warnings

    # Not installed in the environment that runs these tests: only the venv has it.
    import importlib.util

    assert importlib.util.find_spec(names.module) is None
