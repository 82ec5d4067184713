"""This clawrelay's device identity: an Ed25519 key, and the device tokens gateways issue to it.

One key per clawrelay home (`device/identity.json`, 0600), created on first use. A gateway that
is not on loopback (and every 2026.2 gateway) wants a signed device block in `connect`; the
first time it sees the key it asks for pairing, and once paired it issues a deviceToken, kept
per gateway URL in `device/tokens.json` (0600) and offered on later connects.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _write_private(path: Path, data: dict[str, Any]) -> None:
    """Whole-file replace, 0600 from the first byte: a crash leaves the old file or the new one."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump(data, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


class DeviceIdentity:
    def __init__(self, home: Path) -> None:
        self.dir = home / "device"
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        path = self.dir / "identity.json"
        if not path.exists():
            from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
            from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat

            seed = Ed25519PrivateKey.generate().private_bytes(Encoding.Raw, PrivateFormat.Raw, NoEncryption())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
            except FileExistsError:
                pass  # another process created it first; use theirs
            else:
                with os.fdopen(fd, "w") as f:
                    json.dump({"seed": _b64url(seed)}, f)
        data = json.loads(path.read_text())
        seed_b64 = data["seed"]
        self._seed = base64.urlsafe_b64decode(seed_b64 + "=" * (-len(seed_b64) % 4))
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

        self._key = Ed25519PrivateKey.from_private_bytes(self._seed)
        self.public_key = self._key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
        self.id = hashlib.sha256(self.public_key).hexdigest()

    def block(
        self,
        *,
        nonce: str,
        client: dict[str, str],
        role: str,
        scopes: list[str],
        token: str,
        version: str = "v3",
    ) -> dict[str, Any]:
        """The `device` object of `connect`, signed over the string the gateway rebuilds."""
        signed_at = int(time.time() * 1000)
        fields = [
            version,
            self.id,
            client["id"],
            client["mode"],
            role,
            ",".join(scopes),
            str(signed_at),
            token,
            nonce,
        ]
        if version == "v3":
            fields += [client.get("platform", "").lower(), client.get("deviceFamily", "").lower()]
        signature = self._key.sign("|".join(fields).encode())
        return {
            "id": self.id,
            "publicKey": _b64url(self.public_key),
            "signature": _b64url(signature),
            "signedAt": signed_at,
            "nonce": nonce,
        }

    # -- per-gateway state -----------------------------------------------------------------

    def _tokens(self) -> dict[str, Any]:
        path = self.dir / "tokens.json"
        try:
            tokens = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}
        return tokens if isinstance(tokens, dict) else {}

    def gateway_state(self, url: str) -> dict[str, Any]:
        state = self._tokens().get(url)
        return state if isinstance(state, dict) else {}

    def remember(self, url: str, **state: Any) -> None:
        tokens = self._tokens()
        entry = {**tokens.get(url, {}), **{k: v for k, v in state.items() if v is not None}}
        if tokens.get(url) != entry:
            tokens[url] = entry
            _write_private(self.dir / "tokens.json", tokens)
