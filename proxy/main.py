"""One proxy process: outbound proxy, gateway and admin port of one cluster.

    python -m proxy --cluster C [--outbound H:P] [--gateway H:P] [--admin H:P]
                    [--config-file F] [--admin-token T | --admin-token-file F] [--tls-dir D]
                    [--h2-idle-timeout S] [--h2-keepalive S] [--tunnel-idle-timeout S]

The admin token may also come from $MESHTUI_ADMIN_TOKEN.

With --tls-dir (see proxy/tls/identities.py) every cross-cluster hop is mTLS: the gateway
requires a client certificate from the trust bundle and takes the caller's cluster and
service account from it; the outbound proxy presents the leaf of the caller's service
account to remote gateways over pooled connections. The files are re-read on
POST /tls/reload (admin token), which the controller sends after each renewal or rotation
step; they are never polled.

Each listener is optional. The config file, when present, is loaded at start
(static stability: the last routes survive a restart without the controller)
and rewritten on every accepted PUT /config. Prints `ready` on stdout once
every listener is up; SIGTERM/SIGINT stop accepting, let in-flight requests
finish for a few seconds, then exit.

`DataPlane` runs the same thing inside an existing event loop.
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import ssl
import sys
from collections.abc import Mapping
from pathlib import Path

from proxy.admin import Admin, ConfigError, LiveConfig
from proxy.config import ListenSettings
from proxy.gateway import Gateway
from proxy.http1.pool import Pools, TlsFor, plain
from proxy.http1.relay import Relay
from proxy.http1.runtime import install_uvloop, split_hostport
from proxy.http1.server import HttpServer
from proxy.metrics import Metrics
from proxy.outbound import OutboundProxy
from proxy.protocol_plane import ProtocolPlane  # h2-beyond: HTTP/2, gRPC, WebSocket, TCP
from proxy.external import originating
from proxy.http2.settings import LongLived
from proxy.routing.health import EndpointHealth
from proxy.tap import TapHub
from proxy.tls import ProxyIdentities, TLSDirError

log = logging.getLogger("proxy")

DRAIN_S = 5.0
_LONGLIVED = LongLived()
TOKEN_ENV = "MESHTUI_ADMIN_TOKEN"


class DataPlane:
    def __init__(self, settings: ListenSettings, *, config_file: str = "", tls_for: TlsFor = plain,
                 gateway_ssl: ssl.SSLContext | None = None, longlived: LongLived | None = None) -> None:
        """`gateway_ssl`: the gateway's server context (client certificates required
        for mTLS); `tls_for`: how to reach each upstream (see proxy.http1.pool). With
        `settings.tls_dir` both come from the identities in that directory (raises
        TLSDirError when it cannot serve the listeners asked for)."""
        self.settings = settings
        cluster = settings.cluster
        self.identities: ProxyIdentities | None = None
        if settings.tls_dir:
            self.identities = ProxyIdentities(settings.tls_dir, gateway=bool(settings.gateway),
                                              outbound=bool(settings.outbound))
            tls_for, gateway_ssl = self.identities.tls_for, self.identities.gateway_context
        self.health = EndpointHealth()
        self.metrics = Metrics(cluster)
        self.tap = TapHub()
        self.live = LiveConfig(cluster, self.health, config_file)
        self.pools = Pools(settings.limits, originating(tls_for))  # h2-beyond: TLS to ExternalServices
        self.gateway_ssl = gateway_ssl
        self.admin = Admin(live=self.live, health=self.health, metrics=self.metrics, tap=self.tap,
                           token=settings.admin_token, identities=self.identities)
        self.servers: dict[str, HttpServer] = {}
        # h2-beyond: the listeners also speak HTTP/2 (see proxy/protocol_plane.py)
        self.protocols = ProtocolPlane(cluster=cluster, live=self.live, health=self.health, metrics=self.metrics,
                                       tap=self.tap, identities=self.identities, limits=settings.limits,
                                       longlived=longlived)
        self._admin_server: HttpServer | None = None
        self.admin_address: tuple[str, int] | None = None

    def _relay(self, direction: str, inbound_tls: bool) -> Relay:
        return Relay(cluster=self.settings.cluster, direction=direction, health=self.health,
                     metrics=self.metrics, tap=self.tap, pools=self.pools, inbound_tls=inbound_tls)

    async def start(self) -> None:
        s = self.settings
        try:
            if self.live.load():
                log.info("%s: serving saved config version %d from %s",
                         s.cluster, self.live.config.version, self.live.path)
        except ConfigError as exc:
            log.error("%s; starting with no routes until the controller sends a config", exc)
        limits = s.limits
        try:
            if s.outbound:
                handler = OutboundProxy(cluster=s.cluster, routes=self.live, relay=self._relay("outbound", False),
                                        identities=self.identities)
                server = self.protocols.server("outbound", handler)
                server.express = handler.express
                self.servers["outbound"] = await server.listen(*split_hostport(s.outbound))
            if s.gateway:
                tls = self.gateway_ssl is not None
                handler = Gateway(cluster=s.cluster, routes=self.live, relay=self._relay("gateway", tls), tls=tls,
                                  timeout_s=limits.request_timeout_s)
                server = self.protocols.server("gateway", handler, ssl_context=self.gateway_ssl)
                server.express = handler.express
                self.servers["gateway"] = await server.listen(*split_hostport(s.gateway))
            if s.admin:
                self._admin_server = await HttpServer(self.admin, limits=limits).listen(*split_hostport(s.admin))
                self.admin_address = self._admin_server.address
            if s.outbound:  # h2-beyond: L4 listeners of the tcp routes, beside the outbound listener
                self.protocols.start_tcp(self.addresses())
        except BaseException:
            await self.stop(grace_s=0.0)
            raise

    def addresses(self) -> dict[str, str]:
        out = {name: "%s:%d" % srv.address for name, srv in self.servers.items()}
        if self.admin_address is not None:
            out["admin"] = "%s:%d" % self.admin_address
        return out

    async def stop(self, grace_s: float = DRAIN_S) -> None:
        """Stop accepting, let in-flight requests finish (at most `grace_s`), close."""
        self.admin.stopping = True
        for srv in self.servers.values():
            srv.close()
        await asyncio.gather(*(srv.wait_closed(grace_s) for srv in self.servers.values()), self.protocols.drain(grace_s))
        self.servers.clear()
        self.pools.close()
        self.protocols.close()
        await self.live.flush()
        if self._admin_server is not None:
            self.admin.close()  # the tap streams end
            await self._admin_server.shutdown(grace_s=1.0)
            self._admin_server = None


async def run(settings: ListenSettings, config_file: str, longlived: LongLived | None = None) -> None:
    plane = DataPlane(settings, config_file=config_file, longlived=longlived)
    await plane.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    log.info("%s listening: %s", settings.cluster,
             " ".join(f"{k}={v}" for k, v in plane.addresses().items()) or "nothing")
    print("ready", flush=True)
    await stop.wait()
    log.info("%s stopping: draining in-flight requests (at most %g s)", settings.cluster, DRAIN_S)
    await plane.stop(DRAIN_S)


def admin_token(flag: str, file: str, env: Mapping[str, str]) -> str:
    """--admin-token, else the content of --admin-token-file, else $MESHTUI_ADMIN_TOKEN."""
    if flag:
        return flag
    if file:
        return Path(file).read_text().strip()
    return env.get(TOKEN_ENV, "")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m proxy", description="meshtui data plane proxy (one cluster)")
    p.add_argument("--cluster", required=True, help="the cluster this proxy serves")
    p.add_argument("--outbound", default="", metavar="HOST:PORT", help="outbound proxy listener")
    p.add_argument("--gateway", default="", metavar="HOST:PORT", help="gateway listener")
    p.add_argument("--admin", default="", metavar="HOST:PORT", help="admin/metrics listener")
    p.add_argument("--config-file", default="", metavar="FILE", help="saved route config (read at start, "
                                                                      "rewritten on each PUT /config)")
    p.add_argument("--admin-token", default="", metavar="TOKEN",
                   help=f"bearer token for admin writes (visible in the process list: prefer "
                        f"--admin-token-file or ${TOKEN_ENV})")
    p.add_argument("--admin-token-file", default="", metavar="FILE", help="file holding the admin token")
    p.add_argument("--tls-dir", default="", metavar="DIR",
                   help="mTLS identities: DIR/<namespace>/<service-account>/{cert,key,bundle}.pem "
                        "(meshtui-system/gateway for the gateway, default/default and the callers' accounts "
                        "for the outbound proxy)")
    p.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    # h2-beyond: long-lived connections (proxy/http2/settings.py)
    p.add_argument("--h2-idle-timeout", type=float, default=_LONGLIVED.h2_idle_timeout_s, metavar="S",
                   help="close an HTTP/2 connection with no open stream after S seconds")
    p.add_argument("--h2-keepalive", type=float, default=_LONGLIVED.h2_keepalive_s, metavar="S",
                   help="PING a silent HTTP/2 client or gateway after S seconds (0 = never)")
    p.add_argument("--tunnel-idle-timeout", type=float, default=_LONGLIVED.tunnel_idle_timeout_s, metavar="S",
                   help="close a WebSocket or TCP tunnel with no byte either way for S seconds (0 = never)")
    args = p.parse_args(argv)
    for flag in ("outbound", "gateway", "admin"):
        value = getattr(args, flag)
        if value:
            try:
                split_hostport(value)
            except ValueError as exc:
                p.error(f"--{flag}: {exc}")
    try:
        token = admin_token(args.admin_token, args.admin_token_file, os.environ)
    except OSError as exc:
        p.error(f"--admin-token-file: cannot read {args.admin_token_file}: {exc.strerror or exc}")
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = ListenSettings(cluster=args.cluster, outbound=args.outbound, gateway=args.gateway,
                              admin=args.admin, admin_token=token, tls_dir=args.tls_dir)
    try:
        longlived = LongLived(h2_idle_timeout_s=args.h2_idle_timeout, h2_keepalive_s=args.h2_keepalive,
                              tunnel_idle_timeout_s=args.tunnel_idle_timeout)
    except ValueError as exc:
        p.error(str(exc))
    install_uvloop()
    try:
        asyncio.run(run(settings, args.config_file, longlived))
    except TLSDirError as exc:
        print(f"proxy: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"proxy: cannot listen: {exc.strerror or exc}", file=sys.stderr)
        return 1
    return 0
