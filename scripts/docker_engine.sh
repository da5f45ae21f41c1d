#!/usr/bin/env bash
# Makes sure a Docker engine answers on /var/run/docker.sock: installs Debian's
# docker.io when missing (as root) and starts dockerd with the vfs storage
# driver, which works on these machines. Prints what it did; exit 1 if no engine.
set -uo pipefail
sock=/var/run/docker.sock
answers() { curl -sf --unix-socket "$sock" http://localhost/_ping >/dev/null 2>&1; }
if answers; then echo "docker engine: running"; exit 0; fi
if ! command -v dockerd >/dev/null 2>&1; then
  if [ "$(id -u)" != 0 ]; then echo "docker engine: dockerd missing; run: sudo apt-get install -y docker.io" >&2; exit 1; fi
  echo "docker engine: installing docker.io (apt-get)"
  (apt-get install -y -qq docker.io >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq docker.io; }) >/dev/null 2>&1
fi
if [ "$(id -u)" != 0 ]; then echo "docker engine: not running, and starting dockerd needs root" >&2; exit 1; fi
echo "docker engine: starting dockerd --storage-driver=vfs"
nohup dockerd --storage-driver=vfs >/var/log/orca-dockerd.log 2>&1 &
for _ in $(seq 1 60); do
  if answers; then echo "docker engine: ready"; exit 0; fi
  sleep 0.5
done
echo "docker engine: dockerd did not answer; see /var/log/orca-dockerd.log" >&2
tail -n 20 /var/log/orca-dockerd.log >&2
exit 1
