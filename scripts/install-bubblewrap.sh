#!/usr/bin/env bash
# Installs bubblewrap (`bwrap`), the isolation tool of cookbook's code sandbox,
# when it is missing: apt-get, as root or through password-less sudo. When it
# cannot, it says why and exits 1: the sandbox then falls back to resource
# limits only (with a warning), and on CI (CI=true) its tests fail.
set -uo pipefail
command -v bwrap >/dev/null 2>&1 && exit 0
say() { echo "scripts/install-bubblewrap.sh: cannot install bubblewrap: $*" >&2; exit 1; }
command -v apt-get >/dev/null 2>&1 || say "no apt-get here; install bubblewrap with this system's package manager"
if [ "$EUID" -eq 0 ]; then
    sudo=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo=(sudo -n)
else
    say "apt-get needs root (or password-less sudo); run: sudo apt-get install bubblewrap"
fi
export DEBIAN_FRONTEND=noninteractive
# The package lists may be stale or absent (fresh containers): update once if the first try fails.
"${sudo[@]}" apt-get install -y -q bubblewrap >/dev/null 2>&1 \
    || { "${sudo[@]}" apt-get update -q >/dev/null 2>&1 && "${sudo[@]}" apt-get install -y -q bubblewrap >/dev/null 2>&1; } \
    || say "apt-get install -y bubblewrap failed (no package index or no network to the Debian mirror?)"
command -v bwrap >/dev/null 2>&1 || say "the package installed but bwrap is not on PATH"
echo "scripts/install-bubblewrap.sh: installed $(bwrap --version)"
