"""The workload identities of the embedded federation (DESIGN section 5), on disk under
<state>/identity/ (controller/identity/authority.py):

- per cluster with a proxy: the gateway's leaf (meshtui-system/gateway) and a client leaf
  for each service account that calls from the cluster: every Workload's
  (namespace, serviceAccountName) and default/default;
- a proxy's --tls-dir is <state>/identity/leaves/<cluster>/.

Every change happens under the authority lock with a freshly opened authority, so that
`meshtui identity rotate-anchor` in another process and this runtime never interleave.
The methods here block (file writes, fsync, the lock): call them through asyncio.to_thread.
"""
from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

from controller.identity import IdentityAuthority, authority_lock, read_report
from controller.identity.pki import fingerprint
from controller.identity.report import IdentityReport
from controller.reconcile.state import FederationState
from proxy.tls import CERT_FILE, DEFAULT_ACCOUNT, GATEWAY_ACCOUNT, GATEWAY_NAMESPACE, read_chain

Wanted = frozenset[tuple[str, str, str]]  # (cluster, namespace, service account)


def wanted_identities(state: FederationState, clusters: Iterable[str]) -> Wanted:
    """Pure: the leaves the proxies of `clusters` need."""
    clusters = set(clusters)
    out = set()
    for cluster in clusters:
        out.add((cluster, GATEWAY_NAMESPACE, GATEWAY_ACCOUNT))
        out.add((cluster, DEFAULT_ACCOUNT, DEFAULT_ACCOUNT))
    for (cluster, namespace), workloads in state.workloads.items():
        if cluster in clusters:
            for w in workloads:
                out.add((cluster, namespace, w["spec"].get("serviceAccountName") or DEFAULT_ACCOUNT))
    return frozenset(out)


def _signatures(root: Path) -> dict[str, tuple]:
    """cluster -> what its leaves and the bundle look like on disk (changes on every rewrite)."""
    out: dict[str, list] = {}
    bundle = root / "bundle.pem"
    for cert in sorted((root / "leaves").glob("*/*/*/cert.pem")):
        try:
            st = cert.stat()
        except OSError:
            continue
        out.setdefault(cert.parts[-4], []).append((str(cert), st.st_ino, st.st_mtime_ns))
    try:
        b = bundle.stat()
        stamp = (b.st_ino, b.st_mtime_ns)
    except OSError:
        stamp = None
    return {c: (stamp, *v) for c, v in out.items()}


class FederationIdentities:
    def __init__(self, state_dir: Path, trust_domain: str, *, leaf_ttl: timedelta | float | None = None) -> None:
        self.state_dir = Path(state_dir)
        self.trust_domain = trust_domain
        self.leaf_ttl = leaf_ttl
        self.root = self.state_dir / "identity"

    def tls_dir(self, cluster: str) -> Path:
        return self.root / "leaves" / cluster

    def _authority(self) -> IdentityAuthority:
        if self.leaf_ttl is None:
            return IdentityAuthority(self.state_dir, self.trust_domain)
        return IdentityAuthority(self.state_dir, self.trust_domain, leaf_ttl=self.leaf_ttl)

    def sync(self, wanted: Wanted) -> set[str]:
        """Issue the wanted leaves that are missing or due, delete the others; returns the
        clusters whose files changed (their proxies must reload)."""
        with authority_lock(self.state_dir):
            before = _signatures(self.root)
            ca = self._authority()
            for cluster, namespace, account in sorted(wanted):
                ca.leaf(cluster, namespace, account)
            ca.retain(set(wanted))
            return _changed(before, _signatures(self.root))

    def renew(self) -> set[str]:
        """Re-issue the leaves due for renewal; returns the clusters whose files changed."""
        with authority_lock(self.state_dir):
            before = _signatures(self.root)
            self._authority().renew_due()
            return _changed(before, _signatures(self.root))

    def anchor_fingerprint(self) -> str:
        """The signing anchor's (the `anchor` symlink switches atomically: no lock needed)."""
        return fingerprint(read_chain(self.root / "anchor" / CERT_FILE)[0])

    def report(self) -> IdentityReport:
        return read_report(self.state_dir)


def _changed(before: dict[str, tuple], after: dict[str, tuple]) -> set[str]:
    return {c for c in set(before) | set(after) if before.get(c) != after.get(c)}
