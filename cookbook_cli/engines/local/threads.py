"""Torch's CPU threads follow the CPUs this process may run on.

PyTorch starts one compute thread per physical core of the machine, even
where the process is confined to fewer (a container's cpuset, `taskset`, a
batch scheduler's allocation): with 64 threads on 2 allowed CPUs every
parallel region waits for threads that are not running, and a step takes many
times as long. The local engine lowers the count to the CPUs it may use, once
per process, when its first service starts. An explicit choice stands: the
OMP_NUM_THREADS / MKL_NUM_THREADS / TORCH_NUM_THREADS variables, or a count
already lowered with `torch.set_num_threads` (never raised here).
"""

from __future__ import annotations

import os
import threading

THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TORCH_NUM_THREADS")
_lock = threading.Lock()
_done = False


def allowed_cpus() -> int:
    """CPUs this process may be scheduled on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no affinity API (macOS, Windows)
        return max(1, os.cpu_count() or 1)


def thread_count(current: int, allowed: int, environ: dict[str, str] | os._Environ[str]) -> int:
    """The intra-op thread count to use: `current` unless it exceeds the allowed
    CPUs and no variable fixes it."""
    if any((environ.get(v) or "").strip() for v in THREAD_VARIABLES):
        return current
    return min(current, allowed)


def follow_allowed_cpus() -> int:
    """Apply `thread_count` once per process; the count torch uses afterwards."""
    global _done
    import torch

    with _lock:
        if not _done:
            _done = True
            wanted = thread_count(torch.get_num_threads(), allowed_cpus(), os.environ)
            if wanted != torch.get_num_threads():
                torch.set_num_threads(wanted)
    return torch.get_num_threads()
