#!/usr/bin/env bash
# Puts an `orca` command on PATH that runs this checkout's cli.ts with Deno.
# (`deno install --global` resolves npm packages itself, and some of jco's
# optional per-platform packages are missing from the registry; the
# npm-installed node_modules here work.) Usage: bash scripts/install.sh [BIN_DIR]
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
bin=${1:-$HOME/.local/bin}
deno_bin=$(command -v deno || true)
if [ -z "$deno_bin" ]; then echo "install: deno is not on PATH (npx -y deno@2.9.6 ... works too)" >&2; exit 1; fi
bash "$repo/scripts/deps.sh"
mkdir -p "$bin"
cat >"$bin/orca" <<SH
#!/usr/bin/env bash
exec "$deno_bin" run --allow-read --allow-write --allow-net --allow-env --allow-sys --allow-run --config "$repo/deno.json" "$repo/cli.ts" "\$@"
SH
chmod +x "$bin/orca"
echo "installed $bin/orca"
case ":$PATH:" in *":$bin:"*) ;; *) echo "add $bin to PATH to use it" ;; esac
