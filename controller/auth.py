"""API bearer tokens: an admin token (everything) and a viewer token (reads only), kept in
<state>/tokens.json (mode 0600) so the owner of the state dir can always reach its controller."""
from __future__ import annotations

import hmac
import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from controller.errors import StoreCorrupt
from controller.store.atomic import ensure_private_dir, write_atomic

ADMIN = "admin"
VIEWER = "viewer"
ROLES = (ADMIN, VIEWER)
TOKENS_FILE = "tokens.json"


def new_token() -> str:
    return "mt_" + secrets.token_urlsafe(32)  # never starts with "-", so `--token T` always parses


@dataclass(frozen=True)
class Tokens:
    """role -> token. Lookups compare in constant time so a token cannot be guessed byte by byte."""

    by_role: dict[str, str]

    @classmethod
    def generate(cls) -> "Tokens":
        return cls({role: new_token() for role in ROLES})

    def role_of(self, token: str) -> str | None:
        found = None
        for role, known in self.by_role.items():
            if hmac.compare_digest(token.encode(), known.encode()):
                found = role
        return found

    @property
    def admin(self) -> str:
        return self.by_role[ADMIN]

    @property
    def viewer(self) -> str:
        return self.by_role[VIEWER]


def tokens_path(state_dir: Path) -> Path:
    return Path(state_dir) / TOKENS_FILE


def read_tokens(state_dir: Path) -> Tokens | None:
    """The tokens of this state dir, or None when none were made yet."""
    path = tokens_path(state_dir)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as e:
        raise StoreCorrupt(f"{path} cannot be read ({e}); delete it to make new tokens") from None
    if not isinstance(data, dict) or not all(isinstance(data.get(role), str) and data[role] for role in ROLES):
        raise StoreCorrupt(f"{path} must map {', '.join(ROLES)} to tokens; delete it to make new tokens")
    return Tokens({role: data[role] for role in ROLES})


def load_or_create_tokens(state_dir: Path) -> Tokens:
    tokens = read_tokens(state_dir)
    if tokens is None:
        ensure_private_dir(Path(state_dir))
        tokens = Tokens.generate()
        write_atomic(tokens_path(state_dir), json.dumps(tokens.by_role, indent=2).encode())
    return tokens
