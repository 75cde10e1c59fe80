"""The federation's certificate authority, kept in `<state>/identity/`:

    anchors/<id>/cert.pem, key.pem     every trust anchor still trusted (key 0600)
    anchor -> anchors/<id>             the anchor that signs issuers now
    anchor-previous -> anchors/<id>    the old anchor, only during a rotation's overlap
    bundle.pem                         the trusted anchors: current (+ previous)
    issuers/<cluster>/                 cert.pem, key.pem, bundle.pem -> ../../bundle.pem
    leaves/<cluster>/<ns>/<sa>/        cert.pem (leaf + issuer), key.pem, bundle.pem -> ../../../../bundle.pem

Anchors are switched through a symlink so an anchor's key and certificate always change
together. Leaves and issuers are two files, each replaced atomically, key first; a pair
found mismatched (a crash between the two renames) is simply re-issued.

Rotation (`rotate_anchor`, or its two steps): a new anchor joins the bundle next to the
old one, then issuers and leaves are re-issued from it; peers trust both until
`finish_rotation` drops the old anchor. For zero failed handshakes under load, have every
proxy reload the bundle after `begin_rotation` and before `reissue_all`."""
from __future__ import annotations

import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from controller.errors import Conflict, StoreCorrupt, StoreWriteFailed
from controller.store.atomic import fsync_dir, write_atomic
from proxy.tls.files import BUNDLE_FILE, CERT_FILE, KEY_FILE, CertificateFileError, LeafFiles, read_chain
from proxy.tls.names import DEFAULT_TRUST_DOMAIN, Identity, check_label, check_subdomain

from .pki import KeyPair, fingerprint, issued_by, key_matches, make_anchor, make_issuer, make_leaf, trust_domain_of
from .renewal import needs_renewal, renew_at

Clock = Callable[[], datetime]

DEFAULT_LEAF_TTL = timedelta(hours=24)
DEFAULT_ISSUER_TTL = timedelta(days=365)
DEFAULT_ANCHOR_TTL = timedelta(days=3650)

_CERT_MODE = 0o644
_KEY_MODE = 0o600


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def whole_second(moment: datetime) -> datetime:
    """X.509 times have one-second resolution; issuing from whole seconds keeps lifetimes exact."""
    return moment.replace(microsecond=0)


def as_timedelta(ttl: timedelta | float, what: str) -> timedelta:
    ttl = ttl if isinstance(ttl, timedelta) else timedelta(seconds=ttl)
    if ttl <= timedelta(0):
        raise ValueError(f"{what} must be positive, got {ttl}")
    return ttl


def write_file(path: Path, data: bytes, mode: int) -> None:
    try:
        write_atomic(path, data, mode)
    except OSError as err:
        raise StoreWriteFailed(f"cannot write {path}: {err.strerror or err}") from err


def make_private_dir(path: Path) -> None:
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as err:
        raise StoreWriteFailed(f"cannot create directory {path}: {err.strerror or err}") from err


def replace_symlink(link: Path, target: str) -> None:
    """Point `link` at `target` (a relative path), replacing whatever is there, atomically."""
    tmp = link.with_name(f".{link.name}.link.tmp")
    try:
        if tmp.is_symlink() or tmp.exists():
            tmp.unlink()
        os.symlink(target, tmp)
        os.replace(tmp, link)
    except OSError as err:
        raise StoreWriteFailed(f"cannot link {link} -> {target}: {err.strerror or err}") from err


def _load_pair(directory: Path) -> KeyPair:
    """The certificate and key in `directory`; raises CertificateFileError when either is unusable."""
    cert = read_chain(directory / CERT_FILE)[0]
    try:
        key = serialization.load_pem_private_key((directory / KEY_FILE).read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as err:
        raise CertificateFileError(f"cannot load private key {directory / KEY_FILE}: {err}") from err
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not key_matches(cert, key):
        raise CertificateFileError(f"private key {directory / KEY_FILE} does not match {directory / CERT_FILE}")
    return KeyPair(cert, key)


class IdentityAuthority:
    def __init__(
        self,
        state_dir: str | Path,
        trust_domain: str | None = None,
        *,
        clock: Clock = utcnow,
        leaf_ttl: timedelta | float = DEFAULT_LEAF_TTL,
        issuer_ttl: timedelta | float = DEFAULT_ISSUER_TTL,
        anchor_ttl: timedelta | float = DEFAULT_ANCHOR_TTL,
    ):
        self.root = Path(state_dir) / "identity"
        self.clock = clock
        self.leaf_ttl = as_timedelta(leaf_ttl, "leaf_ttl")
        self.issuer_ttl = as_timedelta(issuer_ttl, "issuer_ttl")
        self.anchor_ttl = as_timedelta(anchor_ttl, "anchor_ttl")
        make_private_dir(self.root)
        if (self.root / "anchor").is_symlink():
            self._anchor = self._load_anchor(self.root / "anchor")
            stored = self._trust_domain_of(self._anchor.cert)
            if trust_domain is not None and trust_domain != stored:
                raise Conflict(f"{self.root} holds the trust domain {stored!r}, not {trust_domain!r}")
            self.trust_domain = stored
        else:
            self.trust_domain = check_subdomain("trust domain", trust_domain or DEFAULT_TRUST_DOMAIN)
            self._anchor = self._new_anchor()
            replace_symlink(self.root / "anchor", f"anchors/{self._anchor_id(self._anchor.cert)}")
        self._previous = self._load_anchor(self.root / "anchor-previous").cert if self.rotating else None
        self._write_bundle()

    # -- anchors and bundle ---------------------------------------------------------------

    @property
    def bundle_path(self) -> Path:
        return self.root / BUNDLE_FILE

    @property
    def rotating(self) -> bool:
        return (self.root / "anchor-previous").is_symlink()

    @property
    def anchor_fingerprint(self) -> str:
        return fingerprint(self._anchor.cert)

    def trusted_anchors(self) -> list[x509.Certificate]:
        return [self._anchor.cert] + ([self._previous] if self._previous is not None else [])

    @staticmethod
    def _anchor_id(cert: x509.Certificate) -> str:
        return fingerprint(cert)[:16]

    @staticmethod
    def _trust_domain_of(anchor: x509.Certificate) -> str:
        domain = trust_domain_of(anchor)
        if domain is None:
            raise StoreCorrupt(f"trust anchor {anchor.subject.rfc4514_string()} carries no spiffe://<trust-domain> URI")
        return domain

    def _load_anchor(self, link: Path) -> KeyPair:
        try:
            return _load_pair(link)
        except CertificateFileError as err:
            raise StoreCorrupt(f"trust anchor unusable: {err}") from err

    def _new_anchor(self) -> KeyPair:
        now = whole_second(self.clock())
        anchor = make_anchor(self.trust_domain, now, now + self.anchor_ttl)
        self._write_pair(self.root / "anchors" / self._anchor_id(anchor.cert), anchor)
        return anchor

    def _write_bundle(self) -> None:
        data = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in self.trusted_anchors())
        try:
            current = self.bundle_path.read_bytes()
        except OSError:
            current = None
        if current != data:
            write_file(self.bundle_path, data, _CERT_MODE)

    # -- issuers ----------------------------------------------------------------------------

    def issuer(self, cluster: str) -> KeyPair:
        """The cluster's issuer: the one on disk while it is usable, signed by the current
        anchor and not due for renewal; otherwise a new one."""
        return self._issuer_at(check_label("cluster", cluster), self.clock())

    def _issuer_at(self, cluster: str, now: datetime) -> KeyPair:
        directory = self.root / "issuers" / cluster
        try:
            pair = _load_pair(directory)
        except CertificateFileError:
            return self._issue_issuer(cluster, now)
        if not issued_by(pair.cert, self._anchor.cert) or now >= renew_at(pair.cert.not_valid_before_utc, pair.cert.not_valid_after_utc):
            return self._issue_issuer(cluster, now)
        return pair

    def _issue_issuer(self, cluster: str, now: datetime) -> KeyPair:
        now = whole_second(now)
        pair = make_issuer(self._anchor, self.trust_domain, cluster, now, now + self.issuer_ttl)
        self._write_pair(self.root / "issuers" / cluster, pair, bundle_link="../../" + BUNDLE_FILE)
        return pair

    # -- leaves -----------------------------------------------------------------------------

    def _leaf_dir(self, ident: Identity) -> Path:
        return self.root / "leaves" / ident.cluster / ident.namespace / ident.service_account

    def leaf(self, cluster: str, namespace: str, service_account: str, ttl: timedelta | float | None = None) -> LeafFiles:
        """The identity's leaf: the one on disk while it is usable, chains to the current anchor
        and is not due for renewal (`ttl` then does not apply); otherwise a new one of `ttl`
        (default the authority's leaf_ttl)."""
        ident = Identity(self.trust_domain, cluster, namespace, service_account)
        lifetime = self.leaf_ttl if ttl is None else as_timedelta(ttl, "ttl")
        now = self.clock()
        current = self._usable_leaf(self._leaf_dir(ident))
        if current is not None and not needs_renewal(current, now):
            return current
        return self._issue_leaf(ident, lifetime, now)

    def _usable_leaf(self, directory: Path) -> LeafFiles | None:
        try:
            _load_pair(directory)
            chain = read_chain(directory / CERT_FILE)
        except CertificateFileError:
            return None
        if not issued_by(chain[-1], self._anchor.cert):
            return None
        return LeafFiles.from_dir(directory)

    def _issue_leaf(self, ident: Identity, ttl: timedelta, now: datetime) -> LeafFiles:
        issuer = self._issuer_at(ident.cluster, now)
        pair = make_leaf(issuer, ident, whole_second(now), ttl)
        directory = self._leaf_dir(ident)
        self._write_pair(directory, pair, chain=[issuer.cert], bundle_link="../../../../" + BUNDLE_FILE)
        return LeafFiles.from_dir(directory)

    def leaves(self) -> list[LeafFiles]:
        """Every leaf on disk whose certificate parses, sorted by directory."""
        found = []
        for cert in sorted((self.root / "leaves").glob(f"*/*/*/{CERT_FILE}")):
            try:
                found.append(LeafFiles.from_dir(cert.parent))
            except CertificateFileError:
                continue
        return found

    def _leaf_identities(self) -> list[tuple[Identity, Path]]:
        out = []
        for cert in sorted((self.root / "leaves").glob(f"*/*/*/{CERT_FILE}")):
            cluster, namespace, sa = cert.parent.parts[-3:]
            out.append((Identity(self.trust_domain, cluster, namespace, sa), cert.parent))
        return out

    def renew_due(self, now: datetime | None = None) -> list[LeafFiles]:
        """Re-issue every leaf that needs renewal at `now` (or is unusable or on an old anchor),
        keeping its lifetime; returns the new leaves."""
        now = self.clock() if now is None else now
        renewed = []
        for ident, directory in self._leaf_identities():
            current = self._usable_leaf(directory)
            if current is not None and not needs_renewal(current, now):
                continue
            lifetime = current.lifetime if current is not None else self._lifetime_on_disk(directory)
            renewed.append(self._issue_leaf(ident, lifetime, now))
        return renewed

    def retain(self, keep: set[tuple[str, str, str]]) -> list[str]:
        """Delete every leaf whose (cluster, namespace, service account) is not in `keep`, so
        identities nobody uses any more are not renewed for ever; returns the removed ones."""
        removed = []
        for ident, directory in self._leaf_identities():
            if (ident.cluster, ident.namespace, ident.service_account) not in keep:
                shutil.rmtree(directory, ignore_errors=True)
                removed.append(f"{ident.cluster}/{ident.namespace}/{ident.service_account}")
        for empty in sorted((self.root / "leaves").glob("*/*"), reverse=True) + sorted((self.root / "leaves").glob("*")):
            if empty.is_dir() and not any(empty.iterdir()):
                empty.rmdir()
        return removed

    def _lifetime_on_disk(self, directory: Path) -> timedelta:
        try:
            return LeafFiles.from_dir(directory).lifetime
        except CertificateFileError:
            return self.leaf_ttl

    # -- trust-anchor rotation -------------------------------------------------------------

    def begin_rotation(self) -> str:
        """Add a new anchor to the bundle and make it the signing anchor; nothing is re-issued
        yet. Returns the new anchor's fingerprint."""
        if self.rotating:
            raise Conflict("a trust-anchor rotation is already in progress: finish it first (finish_rotation)")
        old = self._anchor
        new = self._new_anchor()
        replace_symlink(self.root / "anchor-previous", f"anchors/{self._anchor_id(old.cert)}")
        replace_symlink(self.root / "anchor", f"anchors/{self._anchor_id(new.cert)}")
        fsync_dir(self.root)
        self._anchor, self._previous = new, old.cert
        self._write_bundle()
        return fingerprint(new.cert)

    def reissue_all(self) -> list[LeafFiles]:
        """Re-issue every issuer and leaf not signed from the current anchor; returns the new leaves."""
        for directory in sorted((self.root / "issuers").glob("*")):
            self.issuer(directory.name)
        now = self.clock()
        reissued = []
        for ident, directory in self._leaf_identities():
            if self._usable_leaf(directory) is None:
                reissued.append(self._issue_leaf(ident, self._lifetime_on_disk(directory), now))
        return reissued

    def rotate_anchor(self) -> list[LeafFiles]:
        """begin_rotation() then reissue_all(): the bundle trusts old and new anchors."""
        self.begin_rotation()
        return self.reissue_all()

    def finish_rotation(self) -> None:
        """Drop the previous anchor from the bundle and delete it. Refused while a leaf or an
        issuer still chains to it."""
        if not self.rotating:
            raise Conflict("no trust-anchor rotation is in progress")
        stale = [str(d.relative_to(self.root)) for _, d in self._leaf_identities() if self._usable_leaf(d) is None]
        stale += [
            str(d.relative_to(self.root))
            for d in sorted((self.root / "issuers").glob("*"))
            if not self._chains_to_current(d)
        ]
        if stale:
            raise Conflict(f"cannot finish the trust-anchor rotation: still on the old anchor: {', '.join(stale[:5])}"
                           f"{' and more' if len(stale) > 5 else ''}; run reissue_all first")
        old_dir = (self.root / "anchor-previous").resolve()
        self._previous = None
        self._write_bundle()
        (self.root / "anchor-previous").unlink()
        shutil.rmtree(old_dir, ignore_errors=True)
        fsync_dir(self.root)

    def _chains_to_current(self, directory: Path) -> bool:
        try:
            return issued_by(read_chain(directory / CERT_FILE)[0], self._anchor.cert)
        except CertificateFileError:
            return False

    # -- disk -------------------------------------------------------------------------------

    def _write_pair(self, directory: Path, pair: KeyPair, chain: list[x509.Certificate] = (), bundle_link: str = "") -> None:
        make_private_dir(directory)
        write_file(directory / KEY_FILE, pair.key_pem, _KEY_MODE)
        write_file(directory / CERT_FILE, pair.cert_pem + b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain), _CERT_MODE)
        if bundle_link and not (directory / BUNDLE_FILE).is_symlink():
            replace_symlink(directory / BUNDLE_FILE, bundle_link)
