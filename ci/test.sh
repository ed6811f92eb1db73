#!/usr/bin/env bash
# The project's tests: unit and integration tests, then the case suite under pytest on
# every available target. Both run with pytest-xdist on two workers.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/ci/setup.sh"
cd "$root"
status=0
pytest -n 2 -q tests "$@" || status=$?
pytest -n 2 -q cases "$@" || status=$((status ? status : $?))
exit $status
