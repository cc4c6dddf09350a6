#!/usr/bin/env bash
# Checks the unit files with systemd-analyze (Debian package `systemd`):
# `verify` on a copy whose ExecStart points at a freshly built binary (the
# real one names /usr/local/bin/sidehook, absent on a build machine), and
# `security`, which must rate the service 2.0 or lower.
# Skips, successfully, where systemd-analyze is not installed.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v systemd-analyze >/dev/null; then
  echo "systemd-analyze not installed (apt-get install systemd): unit checks skipped"
  exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
go build -o "$tmp/sidehook" .
sed "s#/usr/local/bin/sidehook#$tmp/sidehook#" systemd/sidehook.service >"$tmp/sidehook.service"
cp systemd/sidehook.socket "$tmp/"
# verify only warns about unknown keys: any output fails the check.
out=$(systemd-analyze verify "$tmp/sidehook.service" "$tmp/sidehook.socket" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi
systemd-analyze security --offline=true systemd/sidehook.service | tail -1
# --threshold is on the 0-100 scale behind the 0.0-10.0 figure.
systemd-analyze security --offline=true --threshold=20 systemd/sidehook.service >/dev/null
echo "unit files ok"
