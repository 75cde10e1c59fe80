"""Settings fixed when a federation is created and kept in its state dir (federation.json)."""
from __future__ import annotations

import json
import os
import random
import socket
from dataclasses import asdict, dataclass
from pathlib import Path

from controller.errors import StoreCorrupt
from controller.store.atomic import write_atomic

DEFAULT_LOOPBACK = "127.0"


@dataclass
class FederationSettings:
    loopback_base: str = DEFAULT_LOOPBACK  # clusters get <base>.11.0/24, <base>.12.0/24, ...
    trust_domain: str = "meshtui.local"

    @classmethod
    def load_or_create(cls, state_dir: Path | None, *, loopback_base: str | None = None) -> "FederationSettings":
        if state_dir is None:
            return cls(loopback_base=loopback_base or DEFAULT_LOOPBACK)
        path = state_dir / "federation.json"
        if path.exists():
            try:
                return cls(**json.loads(path.read_text()))
            except (ValueError, TypeError) as e:
                raise StoreCorrupt(f"{path} is corrupt ({e})") from None
        settings = cls(loopback_base=loopback_base or os.environ.get("MESHTUI_LOOPBACK_BASE") or free_loopback_base())
        write_atomic(path, json.dumps(asdict(settings), indent=2).encode())
        return settings


def random_loopback_base() -> str:
    """A /16 inside 127.0.0.0/8, free right now, for a federation that must not collide with another."""
    for _ in range(30):
        base = f"127.{random.randint(100, 250)}"
        if loopback_free(base):
            return base
    return base


def loopback_free(base: str) -> bool:
    """Whether the first embedded cluster's proxy ports are free on <base>.11.1."""
    from controller.reconcile.state import ADMIN_PORT, GATEWAY_PORT, OUTBOUND_PORT

    for port in (OUTBOUND_PORT, GATEWAY_PORT, ADMIN_PORT):
        with socket.socket() as s:
            try:
                s.bind((f"{base}.11.1", port))
            except OSError:
                return False
    return True


def free_loopback_base() -> str:
    """127.0 (clusters on 127.0.11.1, 127.0.12.1, ...) unless another federation holds it, then a random /16."""
    return DEFAULT_LOOPBACK if loopback_free(DEFAULT_LOOPBACK) else random_loopback_base()
