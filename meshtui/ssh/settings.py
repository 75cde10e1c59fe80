"""What `meshtui serve-ssh` is told: files, address and limits."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .ratelimit import RateLimit


@dataclass
class SshSettings:
    authorized_keys: Path
    host_key: Path
    viewer_keys: Path | None = None
    listen: str = "127.0.0.1:2222"
    max_sessions: int = 16
    idle_timeout: float = 900.0  # seconds without a key press; 0 = never
    rate_limit: RateLimit = field(default_factory=lambda: RateLimit(10, 60.0))
    login_timeout: float = 30.0  # seconds to authenticate after connecting
