"""Helpers for the HTTP data-plane tests: upstream servers that count their
connections, proxies in this event loop, raw-socket exchanges, config dicts."""
from __future__ import annotations

import asyncio
import contextlib
import datetime
import ipaddress
import socket
import ssl
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

from proxy.config import Limits, ListenSettings
from proxy.http1.server import HttpServer, Request, Response
from proxy.main import DataPlane


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def dead_port() -> int:
    """A loopback port nobody listens on (connects are refused)."""
    return free_port()


@dataclass
class Upstream:
    """An HTTP server on loopback that records what it saw."""

    server: HttpServer
    peers: set[tuple[str, int]] = field(default_factory=set)  # one per TCP connection
    targets: list[bytes] = field(default_factory=list)
    headers: list[list[tuple[bytes, bytes]]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return self.server.address[1]

    @property
    def connections(self) -> int:
        return len(self.peers)


Handler = Callable[[Request, Response], Awaitable[None]]


def text_handler(message: str) -> Handler:
    body = message.encode() + b"\n"

    async def handle(req: Request, resp: Response) -> None:
        await req.body.read_all(1 << 20)
        resp.send(200, [(b"content-type", b"text/plain")], body)

    return handle


async def start_upstream(handler: Handler, *, limits: Limits | None = None,
                         ssl_context: ssl.SSLContext | None = None) -> Upstream:
    up: Upstream

    async def recording(req: Request, resp: Response) -> None:
        up.peers.add(req.peer)
        up.targets.append(req.target)
        up.headers.append(list(req.headers))
        await handler(req, resp)

    server = await HttpServer(recording, limits=limits, ssl_context=ssl_context).listen("127.0.0.1", 0)
    up = Upstream(server)
    return up


@contextlib.asynccontextmanager
async def upstreams(*handlers: Handler) -> AsyncIterator[list[Upstream]]:
    ups = [await start_upstream(h) for h in handlers]
    try:
        yield ups
    finally:
        for up in ups:
            await up.server.shutdown(grace_s=0.5)


@contextlib.asynccontextmanager
async def data_plane(cluster: str, config: dict | None = None, *, outbound: bool = True, gateway: bool = False,
                     admin: bool = False, token: str = "secret", limits: Limits | None = None,
                     config_file: str = "", **kwargs) -> AsyncIterator[DataPlane]:
    settings = ListenSettings(
        cluster=cluster,
        outbound="127.0.0.1:0" if outbound else "",
        gateway="127.0.0.1:0" if gateway else "",
        admin="127.0.0.1:0" if admin else "",
        admin_token=token,
        limits=limits or Limits(),
    )
    plane = DataPlane(settings, config_file=config_file, **kwargs)
    if config is not None:
        plane.live.apply(config, persist=False)
    await plane.start()
    try:
        yield plane
    finally:
        await plane.stop(grace_s=0.5)


def url(plane: DataPlane, listener: str, path: str = "/") -> str:
    return f"http://{plane.addresses()[listener]}{path}"


# -- config dicts -------------------------------------------------------------------------


def endpoint(port: int, cluster: str, *, gateway: bool = False, prefix: str = "") -> dict:
    return {"host": "127.0.0.1", "port": port, "cluster": cluster, "gateway": gateway, "path_prefix": prefix}


def route(name: str, ns: str, port: int, tiers: list[list[tuple[str, list[dict]]]], **extra) -> dict:
    return {
        "namespace": ns, "name": name, "port": port,
        "tiers": [[{"cluster": c, "weight": 100, "endpoints": eps} for c, eps in tier] for tier in tiers],
        **extra,
    }


def gateway_rule(path: str, ns: str, service: str, port: int, endpoints: list[dict], **extra) -> dict:
    return {"path": path, "path_type": "Prefix", "namespace": ns, "service": service, "port": port,
            "endpoints": endpoints, **extra}


def config(cluster: str, routes: list[dict] = (), gateway: list[dict] = (), version: int = 1) -> dict:
    return {"cluster": cluster, "cluster_key": f"default/default/default/{cluster}", "version": version,
            "routes": list(routes), "gateway": list(gateway)}


# -- raw sockets --------------------------------------------------------------------------


async def raw_exchange(port: int, data: bytes, *, timeout: float = 5.0) -> bytes:
    """Send bytes, read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout)
    finally:
        writer.close()


def reset(writer: asyncio.StreamWriter) -> None:
    """Leave by resetting the connection (a client that closes normally may only have
    half-closed it: the server then still answers)."""
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.close()


async def read_head(reader: asyncio.StreamReader, timeout: float = 5.0) -> tuple[int, dict[str, str]]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
    return status, headers


async def read_response(reader: asyncio.StreamReader, *, head_request: bool = False,
                        timeout: float = 5.0) -> tuple[int, dict[str, str], bytes]:
    """One response (Content-Length or chunked body) from a raw connection."""
    status, headers = await read_head(reader, timeout)
    if head_request or status in (204, 304) or status < 200:
        return status, headers, b""
    if "content-length" in headers:
        body = await asyncio.wait_for(reader.readexactly(int(headers["content-length"])), timeout)
    elif headers.get("transfer-encoding") == "chunked":
        parts = []
        while True:
            size = int((await asyncio.wait_for(reader.readuntil(b"\r\n"), timeout)).strip(), 16)
            data = await asyncio.wait_for(reader.readexactly(size + 2), timeout)
            if size == 0:
                break
            parts.append(data[:-2])
        body = b"".join(parts)
    else:
        body = await asyncio.wait_for(reader.read(), timeout)
    return status, headers, body


# -- TLS material -----------------------------------------------------------------------------


@dataclass
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def make_ca(tmp: Path) -> tuple[object, object, Path]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test root")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp / "ca.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key, cert, path


def make_leaf(tmp: Path, ca: tuple[object, object, Path], name: str, *, uri: str = "",
              dns: str = "localhost") -> TlsFiles:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    ca_key, ca_cert, ca_path = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    sans: list[x509.GeneralName] = [x509.DNSName(dns), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    if uri:
        sans.append(x509.UniformResourceIdentifier(uri))
    cert = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp / f"{name}.pem", tmp / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return TlsFiles(ca_path, cert_path, key_path)


def server_context(files: TlsFiles, *, require_client: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(files.cert, files.key)
    if require_client:
        ctx.verify_mode = ssl.CERT_REQUIRED
        ctx.load_verify_locations(files.ca)
    return ctx


def client_context(files: TlsFiles | None, ca: Path) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(ca)
    if files is not None:
        ctx.load_cert_chain(files.cert, files.key)
    return ctx
