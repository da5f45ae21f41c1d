#!/usr/bin/env bash
# Installs the Debian tools the tests run beside Orca when they are missing (as root): pebble and
# pebble-challtestsrv (a test ACME CA and its DNS), openssl (the CA's own certificate), chromium (the dashboard's
# browser test), tmux (orca top's) and git (orca gitops'). Tests that need one it could not install are skipped, saying so.
set -uo pipefail
missing=()
command -v pebble >/dev/null 2>&1 || missing+=(pebble)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
command -v curl >/dev/null 2>&1 || missing+=(curl)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v tmux >/dev/null 2>&1 || missing+=(tmux)
# git with its daemon: orca gitops' test serves a repository with `git daemon`.
[ -x "$(git --exec-path 2>/dev/null)/git-daemon" ] || missing+=(git)
if [ ${#missing[@]} -eq 0 ]; then echo "test tools: present"; exit 0; fi
if [ "$(id -u)" != 0 ]; then echo "test tools: missing ${missing[*]}; run: sudo apt-get install -y ${missing[*]}" >&2; exit 0; fi
echo "test tools: installing ${missing[*]} (apt-get)"
(apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq "${missing[@]}"; }) >/dev/null 2>&1
command -v pebble >/dev/null 2>&1 && echo "test tools: ready" || echo "test tools: pebble could not be installed" >&2
