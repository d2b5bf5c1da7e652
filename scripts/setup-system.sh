#!/usr/bin/env bash
# Installs the Debian packages the test suite needs (Xvfb + Qt's xcb libraries for napari, Chromium for
# the browser tests, a PostgreSQL server for the store tests). Idempotent; skips what is present.
# Needs root (or sudo). Set RRSIS_SKIP_SYSTEM=1 to skip entirely.
set -euo pipefail
[ "${RRSIS_SKIP_SYSTEM:-0}" = 1 ] && exit 0
pkgs=(xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-xinerama0 libxcb-image0 libxcb-render-util0
      libxcb-randr0 libxcb-shape0 libxcb-xkb1 libxkbcommon-x11-0 libxcb-cursor0 libgl1 libegl1
      libfontconfig1 libdbus-1-3 chromium fonts-dejavu-core postgresql)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# Any PostgreSQL server version will do when one is already installed.
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  missing=("${missing[@]/postgresql}")
fi
missing=($(printf '%s\n' "${missing[@]}" | sed '/^$/d'))
[ ${#missing[@]} -eq 0 ] && exit 0
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
echo "Installing system packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
