#!/usr/bin/env bash
# Installs the npm dependencies (with npm, as DESIGN.md says) when the lock file
# changed since the last install. Cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.orca-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "orca: installing npm dependencies" >&2
# npm ci refuses this lock: the registry lacks some optional per-platform
# packages (see DESIGN.md), so install from the lock with npm install.
npm install --no-audit --no-fund --loglevel=error >&2
echo "$want" >"$stamp"
