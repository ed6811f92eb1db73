#!/usr/bin/env bash
# The project's tests: unit and integration tests, then the case suite under pytest on
# every target (both with pytest-xdist on two workers): the kernel, the stack in its three
# profiles, and lwIP and gVisor's netstack through their adapters, built by their build
# scripts on first use. A plain run leaves out an adapter that does not build; here that
# fails CI, with the reason.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/ci/setup.sh"
cd "$root"
status=0
pytest -n 2 -q tests "$@" || status=$?
python -c '
import sys
from harness.targets import DEFAULT, resolve
missing = [f"{name}: {resolve(name).unavailable}" for name in DEFAULT if resolve(name).unavailable]
sys.exit("unavailable targets:\n" + "\n".join(missing) if missing else 0)' || status=1
pytest -n 2 -q cases --target kernel --target stack --target stack-linux --target stack-alt \
    --target lwip --target gvisor "$@" || status=$((status ? status : $?))
exit $status
