#!/usr/bin/env bash
# Installs the npm dependencies (with npm, as DESIGN.md says) exactly as
# package-lock.json pins them, when the lock file changed since the last
# install. `npm ci` never rewrites the lock. Cheap when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=node_modules/.orca-lock.sha256
want=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then exit 0; fi
echo "orca: installing npm dependencies" >&2
npm ci --no-audit --no-fund --loglevel=error >&2
echo "$want" >"$stamp"
