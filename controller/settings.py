"""Settings fixed when a federation is created and kept in its state dir (federation.json)."""
from __future__ import annotations

import json
import random
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
        settings = cls(loopback_base=loopback_base or DEFAULT_LOOPBACK)
        write_atomic(path, json.dumps(asdict(settings), indent=2).encode())
        return settings


def random_loopback_base() -> str:
    """A /16 inside 127.0.0.0/8 for a federation that must not collide with another on this machine."""
    return f"127.{random.randint(100, 250)}"
