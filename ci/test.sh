#!/usr/bin/env bash
# The project's tests: unit and integration tests, then the case suite under pytest on
# every available target (both with pytest-xdist on two workers), then the case suite on the
# third-party stacks through their adapters (lwIP and gVisor's netstack, built by their build
# scripts on first use; a target that cannot be built fails this step).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/ci/setup.sh"
cd "$root"
status=0
pytest -n 2 -q tests "$@" || status=$?
pytest -n 2 -q cases "$@" || status=$((status ? status : $?))
rfcdrill run cases --target lwip --target gvisor --jobs 2 --quiet || status=$((status ? status : $?))
exit $status
