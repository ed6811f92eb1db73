#!/usr/bin/env bash
# Run the rfcdrill suite on any Linux CI runner (GitLab, Jenkins, Buildkite, a plain VM):
# make a venv, install rfcdrill into it, run every case with root (sudo when not root) and
# leave the report in ./report (index.html, summary.md, results.json, junit.xml, pcaps/).
# Needs python3 with venv, iproute2 and /dev/net/tun; sudo when not run as root.
# Extra arguments go to `rfcdrill run` (e.g. --target kernel, --jobs 4, -k rfc793).
# Exit status: rfcdrill's (0 all as expected, 1 failures, 2 could not run).
#
#   RFCDRILL_VENV   where the venv goes (default: a fresh one in $RUNNER_TEMP or /tmp)
#   RFCDRILL_CASES  the case folder to run (default: cases/ of this checkout)
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${RFCDRILL_VENV:-${RUNNER_TEMP:-${TMPDIR:-/tmp}}/rfcdrill-venv}"
cases="${RFCDRILL_CASES:-$root/cases}"
cd "$root"

as_root=()
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null || { echo "run-in-ci: needs root or sudo" >&2; exit 2; }
  as_root=(sudo)
fi
command -v ip >/dev/null || echo "run-in-ci: 'ip' (iproute2) is missing; the kernel target needs it" >&2
[ -e /dev/net/tun ] || "${as_root[@]}" modprobe tun 2>/dev/null || true

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check "$root"

status=0
"${as_root[@]}" "$venv/bin/rfcdrill" run "$cases" --report report "$@" || status=$?
if [ "${#as_root[@]}" -gt 0 ] && [ -d report ]; then
  sudo chown -R "$(id -u):$(id -g)" report      # let the runner upload and clean it
fi
if [ -f report/summary.md ]; then
  cat report/summary.md
  [ -z "${GITHUB_STEP_SUMMARY:-}" ] || cat report/summary.md >> "$GITHUB_STEP_SUMMARY"
fi
exit "$status"
