"""A sandbox for model-written code: `run_code(code, limits=SandboxLimits(...))`.

Two paths: bubblewrap (namespaces, read-only system, no network) where `bwrap`
runs, else a fallback with resource limits only, which warns what it leaves
open. docs/tools.md ("The sandbox") lists what each path isolates."""

from cookbook_cli.sandbox.fallback import SandboxWarning
from cookbook_cli.sandbox.limits import LIMITS, SandboxLimits, SandboxResult
from cookbook_cli.sandbox.run import BACKENDS, run_code, sandbox_backend

__all__ = ["BACKENDS", "LIMITS", "SandboxLimits", "SandboxResult", "SandboxWarning", "run_code", "sandbox_backend"]
