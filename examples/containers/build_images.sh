#!/usr/bin/env bash
# Builds the container images the examples and tests use, from Debian's
# packages, with no registry: a small root filesystem per image, `docker import`ed.
#   orca-examples/busybox:1  busybox-static (sh, httpd, nc, wget)
#   orca-examples/redis:7    redis-server + redis-cli and the libraries ldd lists, plus busybox and a CGI
#                            script (/www/cgi-bin/hits) that counts visits in Redis at host "db"
# Skips an image that already exists. Needs a running engine (scripts/docker_engine.sh) and root for apt-get.
set -euo pipefail

need_pkg() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" && return 0
  [ "$(id -u)" = 0 ] || { echo "images: needs Debian package $1: sudo apt-get install -y $1" >&2; exit 1; }
  apt-get install -y -qq "$1" >/dev/null 2>&1 || { apt-get update -qq >/dev/null && apt-get install -y -qq "$1" >/dev/null; }
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

with_busybox() { # $1 = rootfs
  mkdir -p "$1/bin" "$1/tmp" "$1/etc" "$1/www"
  cp /bin/busybox "$1/bin/busybox"
  for cmd in sh ls cat echo httpd nc wget sleep env printf grep; do ln -sf busybox "$1/bin/$cmd"; done
  echo "root:x:0:0:root:/:/bin/sh" >"$1/etc/passwd"
  echo "nobody:x:65534:65534:nobody:/:/bin/sh" >>"$1/etc/passwd"
  echo "root:x:0:" >"$1/etc/group"
}

copy_with_libs() { # $1 = rootfs, rest = binaries
  local root=$1; shift
  for bin in "$@"; do
    mkdir -p "$root$(dirname "$bin")"
    cp -L "$bin" "$root$bin"
    ldd "$bin" | grep -o '/[^ ]*' | while read -r lib; do
      mkdir -p "$root$(dirname "$lib")"
      cp -L "$lib" "$root$lib"
    done
  done
}

build() { # $1 = image, $2 = function that fills the rootfs
  if have_image "$1"; then echo "images: $1 present"; return; fi
  local root
  root=$(mktemp -d)
  "$2" "$root"
  tar -C "$root" -c . | docker import - "$1" >/dev/null
  rm -rf "$root"
  echo "images: built $1"
}

busybox_rootfs() {
  with_busybox "$1"
  echo "hello from a container" >"$1/www/index.html"
}

redis_rootfs() {
  with_busybox "$1"
  copy_with_libs "$1" /usr/bin/redis-server /usr/bin/redis-cli
  mkdir -p "$1/data" "$1/www/cgi-bin"
  cat >"$1/www/cgi-bin/hits" <<'CGI'
#!/bin/sh
# Counts visits in Redis, reached by its alias "db" on the project network.
n=$(/usr/bin/redis-cli -h db INCR hits 2>&1)
printf 'Content-Type: text/plain\r\n\r\nhits: %s\n' "$n"
CGI
  chmod +x "$1/www/cgi-bin/hits"
}

need_pkg busybox-static
need_pkg redis-server
build orca-examples/busybox:1 busybox_rootfs
build orca-examples/redis:7 redis_rootfs
