"""The gateway: the door of a cluster for the other clusters' proxies.

The path names the export (`/cluster-1/httpbin-mesh/...`): the longest
matching rule wins, its prefix is stripped, the caller is checked against
the export's audience (clusters) and service account, and the request goes to
a local endpoint of the exported service.

Who calls: with TLS, the URI SAN of the client certificate
(`spiffe://<trust-domain>/cluster/<c>/ns/<ns>/sa/<sa>`). Without TLS (plain
mode, until identities are issued) the caller's cluster and service account
are taken on trust from the `x-meshtui-src-cluster` and `x-meshtui-src-sa`
headers the outbound proxy sets; no account header = account unknown.
"""
from __future__ import annotations

import asyncio
import re
from typing import NamedTuple

from proxy.config import GatewayRule
from proxy.http1.relay import SRC_CLUSTER_HEADER, SRC_SA_HEADER, Destination, Relay
from proxy.http1.express import MESH_HEADER
from proxy.http1.server import HttpServerProtocol, Request, Response
from proxy.outbound import RouteSource
from proxy.routing.table import RouteTable

_MAX_DESTINATIONS = 4096
_NO_IDENTITY = ("", None)  # cached for a peer certificate without a SPIFFE identity


class Caller(NamedTuple):
    cluster: str
    namespace: str
    service_account: str


def parse_spiffe(uri: str) -> Caller | None:
    """`spiffe://<td>/cluster/<c>/ns/<ns>/sa/<sa>` -> Caller; None for anything else."""
    if not uri.startswith("spiffe://"):
        return None
    parts = uri[len("spiffe://"):].split("/")
    if len(parts) != 7 or parts[1] != "cluster" or parts[3] != "ns" or parts[5] != "sa":
        return None
    if not all(parts[i] for i in (0, 2, 4, 6)):
        return None
    return Caller(parts[2], parts[4], parts[6])


def _peer_spiffe(transport: asyncio.BaseTransport) -> tuple[str, Caller] | None:
    cert = transport.get_extra_info("peercert")
    if not cert:
        return None
    for kind, value in cert.get("subjectAltName", ()):
        if kind == "URI":
            caller = parse_spiffe(value)
            if caller is not None:
                return value, caller
    return None


def _connection_caller(conn: HttpServerProtocol) -> tuple[str, Caller] | None:
    """`_peer_spiffe` of a connection, read once per connection (~10 us a time)."""
    found = conn.peer_identity
    if found is None:
        found = conn.peer_identity = _peer_spiffe(conn.transport) or _NO_IDENTITY
    return None if found is _NO_IDENTITY else found


# what the outbound proxy says of its caller in plain mode (see Gateway), up to the line's end
_PLAIN_CALLER = re.compile(rb"\r\n(?i:x-meshtui-(src-cluster|src-sa|service-account)):([^\r\n]*)(?=\r\n)")


def _plain_caller(head: bytes) -> tuple[str, str | None, bytes] | None:
    """(cluster, service account or None, the head without those headers) of a simple GET's
    `head` in plain mode; None when it carries another x-meshtui- header."""
    said: dict[bytes, bytes] = {}
    for name, value in _PLAIN_CALLER.findall(head):
        said.setdefault(name.lower(), value.strip(b" \t"))
    forwarded = _PLAIN_CALLER.sub(b"", head) if said else head
    if said and MESH_HEADER.search(forwarded) is not None:
        return None
    sa = said.get(b"src-sa")
    return said.get(b"src-cluster", b"").decode("latin-1"), sa.decode("latin-1") if sa else None, forwarded


def peer_identity(transport: asyncio.BaseTransport) -> Caller | None:
    """The caller named by the TLS peer certificate; None without TLS or SPIFFE SAN."""
    found = _peer_spiffe(transport)
    return found[1] if found is not None else None


def refusal(rule: GatewayRule, cluster: str, service_account: str | None) -> str | None:
    """Why the caller may not use this export, or None when it may.
    `service_account` None means unknown (plain mode)."""
    export = f"{rule.service}.{rule.namespace}"
    if rule.allowed_clusters and cluster not in rule.allowed_clusters:
        who = f"cluster {cluster}" if cluster else "a caller of unknown cluster"
        return f"{who} is not in the audience of {export} (allowed: {', '.join(rule.allowed_clusters)})"
    if rule.service_account != "*":
        if service_account is None:
            return (f"{export} only accepts service account {rule.service_account}, and the caller's "
                    f"account is unknown without mTLS")
        if service_account != rule.service_account:
            return (f"service account {service_account} of cluster {cluster} may not call {export} "
                    f"(allowed: {rule.service_account})")
    return None


class Gateway:
    def __init__(self, *, cluster: str, routes: RouteSource, relay: Relay, tls: bool,
                 timeout_s: float = 30.0) -> None:
        self.cluster = cluster
        self.routes = routes
        self.relay = relay
        self.tls = tls  # the listener requires client certificates
        self.timeout_s = timeout_s  # for the local endpoint's response head
        self._table: RouteTable | None = None
        self._destinations: dict[tuple[int, str, str], Destination] = {}

    def __call__(self, req: Request, resp: Response) -> None:
        path, q, query = req.target.partition(b"?")
        table = self.routes.table
        found = table.gateway_rule(path.decode("latin-1"))
        if found is None:
            resp.send_text(404, f"no export at path {path.decode('latin-1')} in cluster {self.cluster}")
            return
        rule, rest = found
        if self.tls:
            found = _connection_caller(req.transport.get_protocol())
            if found is None:
                resp.send_text(403, "client certificate carries no SPIFFE identity "
                                    "(spiffe://<trust-domain>/cluster/<c>/ns/<ns>/sa/<sa>)")
                return
            identity, caller = found
            src_cluster, sa = caller.cluster, caller.service_account
        else:  # plain-mode fallback: the caller says who it is
            src_cluster = (req.header(SRC_CLUSTER_HEADER) or b"").decode("latin-1")
            claimed = req.header(SRC_SA_HEADER)
            sa, identity = (claimed.decode("latin-1") if claimed else None), ""
        reason = refusal(rule, src_cluster, sa)
        if reason is not None:
            resp.send_text(403, reason)
            return
        self.relay.relay(req, resp, self._destination(table, rule, src_cluster, identity),
                         rest.encode("latin-1") + q + query)

    def express(self, proto: HttpServerProtocol, m: re.Match[bytes], head: bytes) -> bool:
        """The express lane (see proxy/http1/express.py): a simple GET for an export the caller
        may use (the general path answers the others)."""
        client_target = m["target"]
        path, q, query = client_target.partition(b"?")
        table = self.routes.table
        found = table.gateway_rule(path.decode("latin-1"))
        if found is None:
            return False
        rule, rest = found
        if self.tls:
            caller = _connection_caller(proto)
            if caller is None or MESH_HEADER.search(head) is not None:
                return False
            identity, who = caller
            src_cluster, sa, forwarded = who.cluster, who.service_account, head
        else:
            plain = _plain_caller(head) if MESH_HEADER.search(head) is not None else ("", None, head)
            if plain is None:
                return False
            (src_cluster, sa, forwarded), identity = plain, ""
        if refusal(rule, src_cluster, sa) is not None:
            return False
        return self.relay.express(proto, self._destination(table, rule, src_cluster, identity), head, forwarded,
                                  client_target, rest.encode("latin-1") + q + query)

    def _destination(self, table: RouteTable, rule: GatewayRule, src_cluster: str, identity: str) -> Destination:
        """Where a caller's requests for `rule` go in the current table (made once per caller)."""
        if table is not self._table:
            self._table = table
            self._destinations = {}
        key = (id(rule), src_cluster, identity)  # the table holds its rules while it is `_table`
        dest = self._destinations.get(key)
        if dest is None:
            hash_key = src_cluster.encode() if rule.balancer == "hashing" else b""
            choose_local = table.choose_local
            dest = Destination(
                namespace=rule.namespace,
                service=rule.service,
                choose=lambda tried: choose_local(rule, hash_key=hash_key, exclude=tried),
                timeout_s=self.timeout_s,
                authority=f"{rule.service}.{rule.namespace}:{rule.port}",
                src_cluster=src_cluster,
                src_identity=identity,
            )
            if len(self._destinations) >= _MAX_DESTINATIONS:
                self._destinations.clear()
            self._destinations[key] = dest
        return dest

