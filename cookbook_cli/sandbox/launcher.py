"""Runs inside the sandbox (its source is passed to `python -I -S -c`, so it
uses the standard library only): drops to the sandbox's own user when asked,
sets the resource limits, then runs `main.py` as `__main__` in this process.
A MemoryError, a fork refused at the process limit or a file over the size
limit that ends the program is reported on the status pipe, so the host can
name the limit."""

import errno
import json
import os
import resource
import sys


def _report(fd: int, what: str) -> None:
    try:
        os.write(fd, (what + "\n").encode())
    except OSError:
        pass


def main() -> None:
    cfg = json.loads(sys.argv[1])
    status_fd = cfg["status_fd"]
    os.set_inheritable(status_fd, False)  # forked children keep it; programs they exec do not
    if cfg["uid"] is not None:
        # Root in the sandbox (bwrap run by root, capabilities dropped but these two):
        # become a user of its own, so nothing it runs holds root's rights or counts
        # processes against another run's limit.
        os.setgroups([])
        os.setgid(cfg["uid"])
        os.setuid(cfg["uid"])
    for name, (soft, hard) in cfg["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (soft, hard))
    path = cfg["main"]
    sys.argv = [path]
    sys.path.insert(0, os.getcwd())  # -I leaves the working directory out; its files may import each other
    with open(path, encoding="utf-8") as f:
        source = f.read()
    try:
        exec(compile(source, path, "exec"), {"__name__": "__main__", "__file__": path, "__builtins__": __builtins__})
    except MemoryError:
        _report(status_fd, "memory")
        raise
    except OSError as e:
        if e.errno == errno.EAGAIN:
            _report(status_fd, "processes")  # fork/clone refused at RLIMIT_NPROC
        elif e.errno == errno.EFBIG:
            _report(status_fd, "output")  # a file over RLIMIT_FSIZE
        raise


if __name__ == "__main__":  # run as a program inside the sandbox, never on import
    main()
