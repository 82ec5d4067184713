#!/usr/bin/env bash
# A real OpenSSH server for the ssh carrier's integration tests: Debian's openssh-server, installed
# once (root, or passwordless sudo). The tests never use the system's sshd service: they run their
# own `sshd -D` on a free loopback port with their own host key and config (tests/sshd.py).
# Prints the path of sshd.
set -euo pipefail
for p in /usr/sbin/sshd /usr/local/sbin/sshd; do
  if [ -x "$p" ]; then echo "$p"; exit 0; fi
done
SUDO=
if [ "$(id -u)" != 0 ]; then
  command -v sudo >/dev/null && sudo -n true 2>/dev/null \
    || { echo "install-sshd: openssh-server is missing and this user cannot install it (root or sudo -n)" >&2; exit 1; }
  SUDO="sudo -n"
fi
command -v apt-get >/dev/null \
  || { echo "install-sshd: no apt-get here; install OpenSSH's sshd with this system's package manager" >&2; exit 1; }
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q --no-install-recommends openssh-server >&2 \
  || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q --no-install-recommends openssh-server >&2; }
# The package starts the system service where an init system runs; the tests do not need it.
command -v systemctl >/dev/null && [ -d /run/systemd/system ] && $SUDO systemctl disable --now ssh >&2 || true
echo /usr/sbin/sshd
