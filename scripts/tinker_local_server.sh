#!/usr/bin/env bash
# A Tinker-compatible training service on this machine, for testing the tinker
# engine without an account: SkyRL's Tinker API server (skyrl 0.4.0, JAX on the
# CPU) serving a tiny random Llama model, behind scripts/tinker_local_asgi.py.
#
#   scripts/tinker_local_server.sh [PORT]          # set up if needed, then serve (foreground)
#   scripts/tinker_local_server.sh --setup-only    # set up and exit
#
# Set-up happens once, cached under $COOKBOOK_TINKER_LOCAL_HOME (default
# ~/.cache/cookbook/tinker-local): a Python 3.12 virtual environment with
# skyrl[tinker,jax]==0.4.0, aiohttp and uv (SkyRL needs Python >= 3.12 and pins
# its own tinker SDK, so it cannot share cookbook's environment; about 7 GB, as
# torch comes with its CUDA libraries), and the model folder tiny-llama3/
# (2 layers x 64, the Llama 3 tokenizer from ../shared/tokenizers/llama3).
#
# Environment: COOKBOOK_TINKER_LOCAL_PORT (default 8555), COOKBOOK_TINKER_LOCAL_PYTHON
# (a python3.12; default: python3.12 on PATH, else pyenv's newest 3.12),
# COOKBOOK_TINKER_LOCAL_TOKENIZER (a folder with a Llama 3 tokenizer.json and
# tokenizer_config.json), COOKBOOK_TINKER_LOCAL_STATE (the server's database and
# checkpoints; default $COOKBOOK_TINKER_LOCAL_HOME/state-PORT).
#
# Before serving it prints base_url=, api_key= and model= lines: use them as
#   TINKER_API_KEY=tml-local cookbook train sl --engine tinker --model MODEL \
#     --renderer llama3 engine_options.base_url=BASE_URL
set -euo pipefail

SKYRL_SPEC="skyrl[tinker,jax]==0.4.0"
API_KEY="tml-local"  # the SDK wants a key of Tinker's shape; SkyRL checks none
SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(dirname "$SCRIPTS")"
HOME_DIR="${COOKBOOK_TINKER_LOCAL_HOME:-$HOME/.cache/cookbook/tinker-local}"
VENV="$HOME_DIR/venv"
MODEL="$HOME_DIR/tiny-llama3"
LOG="$HOME_DIR/setup.log"
TOKENIZER="${COOKBOOK_TINKER_LOCAL_TOKENIZER:-$REPO/../shared/tokenizers/llama3}"

fail() { echo "tinker_local_server: $*" >&2; exit 1; }

setup_only=0
PORT="${COOKBOOK_TINKER_LOCAL_PORT:-8555}"
case "${1:-}" in
  --setup-only) setup_only=1 ;;
  "") ;;
  *[!0-9]*) fail "usage: $0 [PORT | --setup-only] (got '$1')" ;;
  *) PORT="$1" ;;
esac
STATE="${COOKBOOK_TINKER_LOCAL_STATE:-$HOME_DIR/state-$PORT}"

is_312() { "$1" -c 'import sys; assert sys.version_info[:2] >= (3, 12)' >/dev/null 2>&1; }

find_python() {
  if [[ -n "${COOKBOOK_TINKER_LOCAL_PYTHON:-}" ]]; then
    is_312 "$COOKBOOK_TINKER_LOCAL_PYTHON" && { echo "$COOKBOOK_TINKER_LOCAL_PYTHON"; return; }
    echo "tinker_local_server: COOKBOOK_TINKER_LOCAL_PYTHON=$COOKBOOK_TINKER_LOCAL_PYTHON is not a Python >= 3.12 (SkyRL 0.4 requires it)" >&2
    return 1
  fi
  local candidates=() c
  command -v python3.12 >/dev/null 2>&1 && candidates+=("$(command -v python3.12)")  # a pyenv shim may not run
  if command -v pyenv >/dev/null 2>&1; then
    while IFS= read -r c; do candidates+=("$c"); done < <(ls -d "$(pyenv root)"/versions/3.12*/bin/python3.12 2>/dev/null | sort -rV)
  fi
  for c in "${candidates[@]}"; do is_312 "$c" && { echo "$c"; return; }; done
  echo "tinker_local_server: SkyRL needs Python >= 3.12 and none was found (set COOKBOOK_TINKER_LOCAL_PYTHON=/path/to/python3.12)" >&2
  return 1
}

setup_venv() {
  # The marker names what was installed: a different spec means a fresh venv.
  if [[ -f "$VENV/.cookbook-ready" && "$(cat "$VENV/.cookbook-ready")" == "$SKYRL_SPEC" ]]; then
    return
  fi
  local py
  py="$(find_python)" || exit 1
  echo "tinker_local_server: installing $SKYRL_SPEC into $VENV (once; several minutes; log: $LOG)" >&2
  rm -rf "$VENV"
  "$py" -m venv "$VENV" >>"$LOG" 2>&1 || fail "creating the virtual environment $VENV with $py failed (see $LOG)"
  # aiohttp: imported by SkyRL's API server but not among its dependencies;
  # uv: SkyRL's API process starts its engine through `uv run`.
  "$VENV/bin/pip" install "$SKYRL_SPEC" aiohttp uv >>"$LOG" 2>&1 \
    || fail "pip install $SKYRL_SPEC aiohttp uv failed (see $LOG)"
  "$VENV/bin/python" -c 'import skyrl.tinker.api, aiohttp' >>"$LOG" 2>&1 \
    || fail "the installed SkyRL does not import (see $LOG)"
  echo "$SKYRL_SPEC" >"$VENV/.cookbook-ready"
}

setup_model() {
  [[ -f "$MODEL/config.json" && -f "$MODEL/tokenizer.json" ]] && return
  [[ -f "$TOKENIZER/tokenizer.json" ]] \
    || fail "no Llama 3 tokenizer at $TOKENIZER (set COOKBOOK_TINKER_LOCAL_TOKENIZER to a folder with tokenizer.json and tokenizer_config.json)"
  rm -rf "$MODEL"
  "$VENV/bin/python" "$SCRIPTS/tinker_local_model.py" "$MODEL" "$TOKENIZER" >>"$LOG" 2>&1 \
    || fail "making the tiny model $MODEL failed (see $LOG)"
}

mkdir -p "$HOME_DIR" || fail "cannot create $HOME_DIR"
setup_venv
setup_model
[[ $setup_only == 1 ]] && { echo "model=$MODEL"; exit 0; }

mkdir -p "$STATE/checkpoints" || fail "cannot create $STATE"
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  fail "port $PORT on 127.0.0.1 is already in use (give another: $0 PORT)"
fi
echo "base_url=http://127.0.0.1:$PORT"
echo "api_key=$API_KEY"
echo "model=$MODEL"

export VIRTUAL_ENV="$VENV" PATH="$VENV/bin:$PATH" JAX_PLATFORMS=cpu
cd "$STATE"
# `uv run --no-project python ...`: SkyRL reads these uv flags off its parent's
# command line to start its engine the same way.
exec uv run --no-project python "$SCRIPTS/tinker_local_asgi.py" \
  --base-model "$MODEL" --backend jax \
  --checkpoints-base "$STATE/checkpoints" --database-url "sqlite:///$STATE/tinker.db" \
  --external-inference-lora-base "$STATE/lora_models" \
  --host 127.0.0.1 --port "$PORT"
