"""A client inside a cluster: requests sent through that cluster's outbound proxy with the
service name as Host, as a pod's traffic reaches its sidecar. Used by `meshtui curl`,
`meshtui load` and the demo's generated traffic."""
from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable
from urllib.parse import urlsplit

import aiohttp

from controller.errors import InvalidResource, Unavailable
from controller.reconcile.state import LOOPBACK_ANNOTATION, OUTBOUND_PORT

SERVICE_ACCOUNT_HEADER = "x-meshtui-service-account"
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=30.0, sock_connect=2.0)


def split_url(url: str) -> tuple[str, str]:
    """'http://svc.ns:8080/p?q' -> ('svc.ns:8080', '/p?q'); a URL without scheme is http."""
    if "://" not in url:
        url = "http://" + url
    parts = urlsplit(url)
    if parts.scheme != "http":
        raise InvalidResource("URL", "scheme", f"{url}: only http:// is sent through the outbound proxy (it originates TLS itself)")
    if not parts.netloc:
        raise InvalidResource("URL", "host", f"{url}: no service name (expected http://svc.ns[:port]/path)")
    target = parts.path or "/"
    if parts.query:
        target += "?" + parts.query
    return parts.netloc, target


def outbound_address(cluster: dict[str, Any]) -> str:
    """Where a Cluster's outbound proxy listens: its runtime status, else its loopback range."""
    name = cluster["metadata"]["name"]
    address = ((cluster.get("status") or {}).get("outbound") or {}).get("address")
    if address:
        return address
    loopback = cluster["metadata"].get("annotations", {}).get(LOOPBACK_ANNOTATION)
    if not loopback:
        raise Unavailable(f"cluster {name} has no embedded outbound proxy (it is a Kubernetes cluster); "
                          "send requests from a pod inside it")
    return f"{loopback}.1:{OUTBOUND_PORT}"


@dataclass(frozen=True, slots=True)
class Answer:
    status: int
    reason: str
    headers: tuple[tuple[str, str], ...]
    body: bytes
    latency_ms: float


def request_headers(authority: str, headers: Iterable[tuple[str, str]], service_account: str = "") -> dict[str, str]:
    out = {"Host": authority}
    for k, v in headers:
        out[k] = v
    if service_account:
        out[SERVICE_ACCOUNT_HEADER] = service_account
    return out


async def send(session: aiohttp.ClientSession, outbound: str, url: str, *, method: str = "GET",
               headers: Iterable[tuple[str, str]] = (), body: bytes | None = None, service_account: str = "") -> Answer:
    authority, target = split_url(url)
    started = time.perf_counter()
    try:
        async with session.request(method, f"http://{outbound}{target}", data=body, allow_redirects=False,
                                   headers=request_headers(authority, headers, service_account),
                                   timeout=REQUEST_TIMEOUT) as resp:
            data = await resp.read()
            return Answer(resp.status, resp.reason or "", tuple(resp.headers.items()), data,
                          (time.perf_counter() - started) * 1000)
    except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as e:
        raise Unavailable(f"no answer from {outbound} (outbound proxy) for {url}: {e or type(e).__name__}") from None


def nearest_rank(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    i = max(0, min(len(sorted_values) - 1, int(q * len(sorted_values) + 0.999999) - 1))
    return sorted_values[i]


@dataclass
class LoadReport:
    sent: int = 0
    statuses: Counter = field(default_factory=Counter)  # status code -> answers
    errors: Counter = field(default_factory=Counter)  # why no answer -> count
    bodies: Counter = field(default_factory=Counter)  # answer body (first line) -> count
    latencies_ms: list[float] = field(default_factory=list)
    elapsed_s: float = 0.0

    @property
    def successes(self) -> int:
        """Answers that are not 5xx (the proxies' classification)."""
        return sum(n for code, n in self.statuses.items() if code < 500)

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.sent if self.sent else None

    def quantile(self, q: float) -> float | None:
        return nearest_rank(sorted(self.latencies_ms), q)

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.sent, "success_rate": self.success_rate,
            "rps": self.sent / self.elapsed_s if self.elapsed_s else 0.0,
            "p50_ms": self.quantile(0.5), "p95_ms": self.quantile(0.95), "p99_ms": self.quantile(0.99),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "errors": dict(self.errors), "answers": dict(self.bodies.most_common()),
        }


def _first_line(body: bytes) -> str:
    return body.decode("utf-8", errors="replace").strip().splitlines()[0][:120] if body.strip() else "(empty)"


async def run_load(session: aiohttp.ClientSession, outbound: str, url: str, *, rps: float, duration_s: float,
                   concurrency: int = 50, method: str = "GET", headers: Iterable[tuple[str, str]] = (),
                   body: bytes | None = None, service_account: str = "") -> LoadReport:
    """Open loop: request i is sent at start + i/rps whatever the answers' pace, with at most
    `concurrency` in flight (beyond that a request waits for a free slot)."""
    if rps <= 0 or duration_s <= 0 or concurrency < 1:
        raise InvalidResource("load", "rps/duration/concurrency", "must be positive")
    headers = list(headers)
    report = LoadReport()
    slots = asyncio.Semaphore(concurrency)
    loop = asyncio.get_running_loop()
    tasks: set[asyncio.Task] = set()

    async def one() -> None:
        try:
            answer = await send(session, outbound, url, method=method, headers=headers, body=body,
                                service_account=service_account)
        except Unavailable as e:
            report.errors[e.message.rpartition(": ")[2] or "no answer"] += 1
        else:
            report.statuses[answer.status] += 1
            report.bodies[_first_line(answer.body)] += 1
            report.latencies_ms.append(answer.latency_ms)
        finally:
            slots.release()

    start = loop.time()
    total = max(1, int(rps * duration_s))
    for i in range(total):
        await asyncio.sleep(max(0.0, start + i / rps - loop.time()))
        await slots.acquire()
        report.sent += 1
        task = asyncio.create_task(one())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
    if tasks:
        await asyncio.gather(*tasks)
    report.elapsed_s = loop.time() - start
    return report
