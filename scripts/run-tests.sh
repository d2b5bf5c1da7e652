#!/usr/bin/env bash
# Runs the whole suite: GUI tests under a virtual X server (napari does not render offscreen).
set -uo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-2}"
args=(-q "$@")
if [ -z "${DISPLAY:-}" ] && command -v xvfb-run >/dev/null; then
  xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python -m pytest "${args[@]}"
else
  .venv/bin/python -m pytest "${args[@]}"
fi
rc=$?
# pytest exits 5 when nothing was collected: that is a failure for CI too.
exit $rc
