#!/usr/bin/env bash
# A real Redis server for the fleet's integration tests: Debian's redis-server, installed once
# (root, or passwordless sudo). The tests never use the system's redis service: they run their own
# `redis-server <conf>` on a free loopback port with its own password and data folder
# (tests/redis_server.py). Prints the path of redis-server.
set -euo pipefail
for p in /usr/bin/redis-server /usr/local/bin/redis-server "$(command -v redis-server || true)"; do
  if [ -n "$p" ] && [ -x "$p" ]; then echo "$p"; exit 0; fi
done
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null && sudo -n true 2>/dev/null \
    || { echo "install-redis: redis-server is missing and this user cannot install it (root or sudo -n)" >&2; exit 1; }
  SUDO="sudo -n"
fi
command -v apt-get >/dev/null \
  || { echo "install-redis: no apt-get here; install redis-server with this system's package manager" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends redis-server >&2 \
  || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q --no-install-recommends redis-server >&2; }
# The package starts the system service where an init system runs (systemd, or its SysV init
# script without one); the tests do not need it.
if command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
  $SUDO systemctl disable --now redis-server >&2 || true
elif command -v service >/dev/null; then
  $SUDO service redis-server stop >&2 || true
fi
for p in /usr/bin/redis-server /usr/local/bin/redis-server "$(command -v redis-server || true)"; do
  if [ -n "$p" ] && [ -x "$p" ]; then echo "$p"; exit 0; fi
done
echo "install-redis: redis-server is still missing after apt-get install" >&2
exit 1
