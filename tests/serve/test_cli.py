"""`cookbook serve`'s bad input: one line, no traceback, before any model loads."""

from __future__ import annotations

import socket

import pytest
from typer.testing import CliRunner

from cookbook_cli.cli.main import app


def refused(*args: str) -> str:
    result = CliRunner().invoke(app, ["serve", *args])
    assert result.exit_code != 0 and "Traceback" not in result.output, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    return result.output


def test_bad_options_are_one_line():
    assert "give a model to use" in refused()
    assert "--port must be between 0 and 65535" in refused("--model", "random:tiny:llama3", "--port", "70000")
    assert "--api-key (or COOKBOOK_SERVE_API_KEY) must not be empty" in refused("--model", "random:tiny:llama3", "--api-key", " ")
    assert "--max-waiting must be at least 1" in refused("--model", "random:tiny:llama3", "--max-waiting", "0")
    assert "does not exist" in refused("--run", "no/such/run")


def test_a_port_in_use_is_refused_before_loading_the_model():
    pytest.importorskip("uvicorn")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        # The port is bound before the model loads, so this fails at once.
        assert f"cannot listen on 127.0.0.1:{port}" in refused("--model", "random:tiny:llama3", "--renderer", "llama3", "--port", str(port))
