"""Trust-anchor rotation without a failed request (`meshtui identity rotate-anchor`).

    1. begin_rotation   a new anchor signs from now on; the bundle trusts old and new
    2. reload           every proxy trusts both anchors
    3. reissue_all      issuers and leaves re-issued from the new anchor
    4. reload           every proxy presents its new leaves (peers trust both)
    5. finish_rotation  the old anchor leaves the bundle and the disk
    6. reload           every proxy trusts the new anchor only

Connections opened before a step keep working (TLS verifies only at the handshake), and at
every moment each side trusts the anchor of the leaf the other side presents. The authority
lock is held throughout, so a renewal cannot interleave. A rotation interrupted after step 1
(a proxy that did not reload, a crash) is resumed by running it again.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Awaitable, Callable

from .authority import IdentityAuthority
from .lock import AuthorityLock

ReloadAll = Callable[[str], Awaitable[None]]  # reload every proxy; raises when one did not


async def rotate_anchor(state_dir: str | Path, trust_domain: str | None, reload_all: ReloadAll,
                        say: Callable[[str], None] = lambda _: None) -> str:
    """Returns the new anchor's fingerprint. `reload_all(why)` must reload every running proxy
    and raise if one could not; the rotation then stops where it is (safe: the bundle trusts
    both anchors) and running it again resumes it."""
    lock = AuthorityLock(state_dir)
    await asyncio.to_thread(lock.acquire)
    try:
        ca = await asyncio.to_thread(IdentityAuthority, state_dir, trust_domain)
        if ca.rotating:
            say(f"resuming the unfinished rotation to anchor {ca.anchor_fingerprint[:16]}")
        else:
            await asyncio.to_thread(ca.begin_rotation)
            say(f"new trust anchor {ca.anchor_fingerprint[:16]}: the bundle trusts the old and the new anchor")
        await reload_all("trust both anchors")
        reissued = await asyncio.to_thread(ca.reissue_all)
        say(f"re-issued {len(reissued)} leaves (and every issuer) from the new anchor")
        await reload_all("present the new leaves")
        await asyncio.to_thread(ca.finish_rotation)
        say("the old anchor left the bundle")
        await reload_all("trust the new anchor only")
        return ca.anchor_fingerprint
    finally:
        lock.release()
