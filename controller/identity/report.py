"""What the federation's certificate authority holds on disk, read without changing anything:
for `meshtui identity show` and the identity checks of `meshtui check`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.errors import NotFound
from proxy.tls.files import BUNDLE_FILE, CERT_FILE, CertificateFileError, read_chain

from .describe import CertInfo, describe
from .pki import trust_domain_of
from .renewal import renew_at


@dataclass(frozen=True, slots=True)
class IdentityReport:
    trust_domain: str
    anchor: CertInfo  # the anchor that signs issuers now
    previous: CertInfo | None  # the old anchor, still trusted, during a rotation
    issuers: dict[str, CertInfo]  # cluster -> issuer
    leaves: list[CertInfo]
    unreadable: list[str]  # certificate files that could not be read, with the reason

    @property
    def trusted(self) -> list[str]:
        """Fingerprints of the anchors in the bundle."""
        return [c.anchor_fingerprint or "" for c in (self.anchor, self.previous) if c is not None]

    def to_dict(self) -> dict[str, Any]:
        def leaf(c: CertInfo) -> dict[str, Any]:
            return {**c.to_dict(), "renew_at": renew_at(c.not_before, c.not_after).isoformat()}

        return {
            "trustDomain": self.trust_domain,
            "trustAnchor": self.anchor.anchor_fingerprint,
            "rotating": self.previous is not None,
            "anchors": [{"role": "current", **self.anchor.to_dict()}]
                       + ([{"role": "previous", **self.previous.to_dict()}] if self.previous else []),
            "issuers": {c: info.to_dict() for c, info in sorted(self.issuers.items())},
            "leaves": [leaf(c) for c in self.leaves],
            "unreadable": self.unreadable,
        }


def read_report(state_dir: str | Path) -> IdentityReport:
    """Raises NotFound when the state dir holds no trust anchor yet."""
    root = Path(state_dir) / "identity"
    if not (root / "anchor").is_symlink():
        raise NotFound(f"no trust anchor under {root}: the federation's identities are created when its "
                       "data plane first starts (`meshtui demo` or `meshtui controller`)")
    bundle = root / BUNDLE_FILE
    unreadable: list[str] = []

    def read(path: Path) -> CertInfo | None:
        try:
            return describe(path, bundle)
        except CertificateFileError as err:
            unreadable.append(str(err))
            return None

    anchor = read(root / "anchor" / CERT_FILE)
    if anchor is None:
        raise NotFound(f"the trust anchor under {root} is unreadable: {'; '.join(unreadable)}")
    previous = read(root / "anchor-previous" / CERT_FILE) if (root / "anchor-previous").is_symlink() else None
    issuers = {d.name: info for d in sorted((root / "issuers").glob("*")) if (info := read(d / CERT_FILE))}
    leaves = [info for p in sorted((root / "leaves").glob(f"*/*/*/{CERT_FILE}")) if (info := read(p))]
    trust_domain = trust_domain_of(read_chain(root / "anchor" / CERT_FILE)[0]) or ""
    return IdentityReport(trust_domain, anchor, previous, issuers, leaves, unreadable)
