#!/usr/bin/env bash
# The main job: every case against every available target; the report goes to ./report
# (index.html, summary.md, results.json, junit.xml, pcaps/). Extra arguments go to
# `rfcdrill run` (e.g. --target kernel, --jobs 1, --report DIR).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$root/ci/setup.sh"
cd "$root"
exec rfcdrill run cases --jobs 2 --report report --quiet "$@"
