"""The built-in `python` tool: run a Python program in the sandbox
(`cookbook_cli.sandbox`: no network, its own folder, time, memory, process
and output limits) and show the model what it printed and how it ended."""

from __future__ import annotations

from cookbook_cli.sandbox import SandboxLimits, run_code
from cookbook_cli.tools.tool import tool

# A tool result goes back into the context: keep it short.
TOOL_LIMITS = SandboxLimits(wall_time_s=10.0, cpu_time_s=10.0, output_bytes=4096)


def describe_run(code: str, limits: SandboxLimits = TOOL_LIMITS) -> str:
    """Run `code` in the sandbox; its stdout, stderr and ending as the model reads them."""
    result = run_code(code, limits=limits)
    parts = [f"exit status {result.exit_code}" + (f" (stopped: {result.limit} limit)" if result.limit else "")]
    if result.stdout:
        parts.append(f"stdout:\n{result.stdout}")
    if result.stderr:
        parts.append(f"stderr:\n{result.stderr}")
    return "\n".join(parts)


# The sandbox stops the run first (10 s); the tool's own limit only guards the host.
@tool(name="python", timeout_s=TOOL_LIMITS.wall_time_s + 10)
def python_tool(code: str) -> str:
    """Run a Python program (standard library only, no network, 10 s) and return what it printed.

    Args:
        code: the program's source; print what you want to see
    """
    return describe_run(code)
