"""Runs inside the sandbox as `main.py` (standard library only): loads the
solution (`solution.py`, after the problem's setup code), then runs each
hidden test in the solution's namespace, reporting each outcome on its own
line as it finishes, so that tests passed before a hang still count. The
tests and the report's nonce arrive on stdin, not in a file the solution
could read."""

import json
import sys


def main() -> None:
    spec = json.loads(sys.stdin.read())
    nonce = spec["nonce"]

    def report(index: int, passed: bool) -> None:
        # A leading newline: the solution's own unfinished output line cannot swallow the report.
        sys.stdout.write(f"\n{nonce} {index} {int(passed)}\n")
        sys.stdout.flush()

    namespace = {"__name__": "solution"}
    with open("solution.py", encoding="utf-8") as f:
        source = f.read()
    try:
        exec(compile(spec["setup"] + "\n" + source, "solution.py", "exec"), namespace)
    except BaseException as e:  # noqa: BLE001 - SystemExit too: the solution failed to load
        print(f"the solution failed to load: {type(e).__name__}: {e}", file=sys.stderr)
        return
    for index, test in enumerate(spec["tests"]):
        try:
            exec(compile(test, f"test_{index}", "exec"), namespace)
        except BaseException as e:  # noqa: BLE001 - a failed assert, an error, an exit: the test failed
            print(f"test {index} failed: {type(e).__name__}: {e}"[:500], file=sys.stderr)
            report(index, False)
        else:
            report(index, True)


if __name__ == "__main__":  # run as a program inside the sandbox, never on import
    main()
