"""What a sandboxed run may use, and what it did."""

from __future__ import annotations

from dataclasses import dataclass

from cookbook_cli.errors import CookbookError

# The names `SandboxResult.limit` takes.
TIMEOUT = "timeout"
MEMORY = "memory"
OUTPUT = "output"
PROCESSES = "processes"
LIMITS = (TIMEOUT, MEMORY, OUTPUT, PROCESSES)


@dataclass(frozen=True)
class SandboxLimits:
    """Per-run limits. Times in seconds, sizes in bytes."""

    wall_time_s: float = 10.0  # then the whole process tree is killed
    cpu_time_s: float = 10.0  # RLIMIT_CPU of each process
    memory_bytes: int = 512 * 2**20  # RLIMIT_AS (address space) of each process
    max_processes: int = 32  # RLIMIT_NPROC: processes and threads of the sandbox's user
    output_bytes: int = 64 * 2**10  # each of stdout and stderr; more kills the run
    file_bytes: int = 16 * 2**20  # the largest file it may write (RLIMIT_FSIZE), and the size of its /tmp

    def __post_init__(self) -> None:
        for name in ("wall_time_s", "cpu_time_s", "memory_bytes", "max_processes", "output_bytes", "file_bytes"):
            if not getattr(self, name) > 0:
                raise CookbookError(f"sandbox limit {name} must be positive, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class SandboxResult:
    """How a run ended. `exit_code` is the program's status, 128 + N when
    signal N ended it (the shell's convention); `limit` names the first limit
    it hit (`timeout`, `memory`, `output`, `processes`) or is None;
    stdout/stderr hold at most `output_bytes` each."""

    exit_code: int
    stdout: str
    stderr: str
    limit: str | None
    wall_time_s: float
    backend: str

    @property
    def ok(self) -> bool:
        """The program exited with status 0 within every limit."""
        return self.exit_code == 0 and self.limit is None
