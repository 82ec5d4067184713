"""A real OpenSSH server on a free loopback port, for the ssh carrier's tests and bench/.

Its own host key, client key, authorized_keys and sshd_config in one folder; `sshd -D` in its
own process group, stopped by PID. It logs in the user running the tests (key only), so the
"remote" side is this machine seen through a real SSH session: a non-login shell, its own
environment, the remote `timeout`, SFTP.
"""

from __future__ import annotations

import getpass
import os
import socket
import subprocess
import time
from pathlib import Path

from peer import ROOT, _stop_group, free_port


def sshd_bin() -> str:
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-sshd.sh")], capture_output=True, text=True, timeout=600
    )
    if out.returncode != 0:
        raise RuntimeError(f"install-sshd.sh failed:\n{out.stderr[-3000:]}")
    return out.stdout.strip().splitlines()[-1]


def _keygen(path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "clawrelay-test", "-f", str(path)], check=True
    )


class Sshd:
    def __init__(self, folder: Path, *, sftp: bool = True) -> None:
        self.dir = folder
        self.sftp = sftp  # False: a server without the sftp subsystem (some minimal or hardened hosts)
        self.port = free_port()
        self.host = "127.0.0.1"
        self.user = getpass.getuser()
        self.host_key = folder / "host_ed25519"
        self.client_key = folder / "client_ed25519"
        self.known_hosts = folder / "known_hosts"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, sshd: str, timeout: float = 30.0) -> Sshd:
        self.dir.mkdir(parents=True, exist_ok=True)
        _keygen(self.host_key)
        _keygen(self.client_key)
        (self.dir / "authorized_keys").write_text(Path(f"{self.client_key}.pub").read_text())
        pub = Path(f"{self.host_key}.pub").read_text().split()
        self.known_hosts.write_text(f"[{self.host}]:{self.port} {pub[0]} {pub[1]}\n")
        config = self.dir / "sshd_config"
        config.write_text(
            "\n".join(
                [
                    f"Port {self.port}",
                    f"ListenAddress {self.host}",
                    f"HostKey {self.host_key}",
                    f"PidFile {self.dir / 'sshd.pid'}",
                    f"AuthorizedKeysFile {self.dir / 'authorized_keys'}",
                    "StrictModes no",
                    "UsePAM no",
                    "PasswordAuthentication no",
                    "KbdInteractiveAuthentication no",
                    "PermitRootLogin prohibit-password",
                    "PubkeyAuthentication yes",
                    f"AllowUsers {self.user}",
                    *(["Subsystem sftp internal-sftp"] if self.sftp else []),
                    "LogLevel ERROR",
                    "MaxStartups 50:30:100",
                    "MaxSessions 50",
                    "",
                ]
            )
        )
        if os.geteuid() == 0:
            Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # privilege separation folder
        log = open(self.dir / "sshd.log", "ab")  # noqa: SIM115 (the child owns it)
        self.proc = subprocess.Popen(
            [sshd, "-D", "-e", "-f", str(config)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"sshd exited {self.proc.returncode}: {(self.dir / 'sshd.log').read_text()}"
                )
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return self
            except OSError:
                time.sleep(0.1)
        raise RuntimeError("sshd did not listen in time")

    def routes_entry(self, **extra: str) -> str:
        """The `ssh:` mapping of a host in routes.yaml that reaches this server."""
        fields = {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "known_hosts": str(self.known_hosts),
            "key": str(self.client_key),
            **extra,
        }
        return "{" + ", ".join(f'{k}: "{v}"' for k, v in fields.items()) + "}"

    def ssh_argv(self, *command: str) -> list[str]:
        """The OpenSSH client's own command line to this server (the bench baseline)."""
        return [
            "ssh",
            "-p",
            str(self.port),
            "-i",
            str(self.client_key),
            "-o",
            f"UserKnownHostsFile={self.known_hosts}",
            "-o",
            "StrictHostKeyChecking=yes",
            "-o",
            "BatchMode=yes",
            "-F",
            "/dev/null",
            f"{self.user}@{self.host}",
            *command,
        ]

    def stop(self) -> None:
        if self.proc is not None:
            _stop_group(self.proc)
            self.proc.wait()
            self.proc = None
