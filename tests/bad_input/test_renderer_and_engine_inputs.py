"""Bad input to `cookbook renderers check` and to `--engine tinker`, through the
real CLI in a fresh interpreter: exit status 1, no traceback, and one `Error:`
line that names the culprit (the template file and the line of its syntax
error; the service URL and what to check), with nothing compared or written."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("tinker_http", REPO / "tests" / "engines" / "tinker_http.py")
tinker_http = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tinker_http)


def cookbook(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("TINKER_")}
    base.update({"COOKBOOK_LOAD_PLUGINS": "", "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}, **env)
    return subprocess.run([sys.executable, "-m", "cookbook_cli", *args], capture_output=True, text=True, env=base, timeout=300)


def conversations(path: Path) -> Path:
    rows = [{"messages": [{"role": "user", "content": f"q{i}"}, {"role": "assistant", "content": f"a{i}"}]} for i in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def train_tinker(url: str | None, tmp: Path) -> list[str]:
    args = ["train", "sl", "--engine", "tinker", "--dataset", str(conversations(tmp / "c.jsonl")), "--batch-size", "2", "--log-dir", str(tmp / "run")]
    return args + ([f"engine_options.base_url={url}"] if url else [])


# name: (how the service answers, extra environment, the Error line must contain, "retrying" lines on stderr)
CASES = {
    "template with a syntax error": (None, {}, ["bad.jinja: chat template does not parse:", "(line 3)"], 0),
    "template file missing": (None, {}, ["template file", "nowhere.jinja' does not exist"], 0),
    "tinker service unreachable": ("closed", {"TINKER_API_KEY": "tml-bogus"}, ["cannot reach the Tinker service at http://127.0.0.1:", "check the URL (engine_options.base_url or TINKER_BASE_URL)"], 2),
    "tinker key rejected": (401, {"TINKER_API_KEY": "tml-bogus"}, ["rejected the API key (HTTP 401: Invalid API key)", "check TINKER_API_KEY"], 0),
    "tinker key missing": (None, {}, ["needs TINKER_API_KEY, which is not set here", "--engine local"], 0),
}


@pytest.mark.parametrize("case", list(CASES))
def test_one_line_error(case, tmp_path, shared_tokenizers):
    service, env, expected, retries = CASES[case]
    with ExitStack() as stack:
        url = None
        if service == "closed":
            url = tinker_http.closed_port_url()
        elif service is not None:
            url, _ = stack.enter_context(tinker_http.answering(service, {"detail": "Invalid API key"}))
        if case.startswith("template"):
            bad = tmp_path / "bad.jinja"
            bad.write_text("{% for m in messages %}\n{{ m.content }}\n{% if %}\n{% endfor %}\n", encoding="utf-8")
            template = str(bad) if case == "template with a syntax error" else str(tmp_path / "nowhere.jinja")
            args = ["renderers", "check", "llama3", "--tokenizer", str(shared_tokenizers / "llama3"), "--template", template]
        else:
            args = train_tinker(url, tmp_path)
        result = cookbook(args, env)
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert "Traceback" not in out
    errors = [line for line in out.splitlines() if line.startswith("Error: ")]
    assert len(errors) == 1 and all(text in errors[0] for text in expected), out
    assert not [line for line in result.stdout.splitlines() if line.startswith(("ok ", "FAIL "))]  # nothing compared
    assert len([line for line in result.stderr.splitlines() if "retrying in" in line]) == retries, out
    if url is not None:
        assert url in errors[0]
    assert not (tmp_path / "run").exists()  # the engine is checked before the run directory is made
