"""HTTP data-plane benchmark: the outbound proxy and the cross-cluster path
(outbound -> gateway, plain and over mTLS: streams of one mux session) against
nginx as a keep-alive reverse proxy, all on loopback, measured with wrk in the
same run; prints what mTLS costs against the plain cross-cluster path
(requests/s, CPU time per request of the outbound and the gateway process, and
the gateway's TLS handshakes: one for the whole run while the outbound proxy's
HTTP/1.1 connections ride one mux session, proxy/mux), and what a tap subscriber (every event, read as fast
as the admin port streams them, in the compact format the controller reads;
then in whole JSON lines) costs the outbound proxy.

    python -m benchmarks.proxy [--duration 10] [--connections 50] [--profile DIR]

Needs wrk and nginx (`make tools`, i.e. sh .ci/install-tools). Prints
requests/s, p50 and p99 per target, the ratio of requests/s to nginx, the
resident memory of each proxy process after its run, and the CPU time per
request of the echo app and of the proxy processes (user + system, from
/proc: less sensitive to a busy machine than requests/s). `--profile DIR`
records each proxy target with py-spy (when installed) into DIR.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from controller.identity import IdentityAuthority
from controller.reconcile.routes import spiffe_gateway_identity
import proxy

ROOT = Path(__file__).resolve().parents[1]
MTLS_TARGET = "outbound->gateway mTLS"
TAP_TARGET = "outbound proxy + tap"  # the stream the controller reads (format=compact)
TAP_JSON_TARGET = "  + tap, json lines"  # one whole JSON event a line (format=json, curl's)
# two identical outbound proxies loaded at once, one of them tapped (compact): see tap_side_by_side
TAP_SIDE_TARGET = "tap, side by side"
# what the embedded federation issues for this hop: the gateway's leaf, the caller's
MTLS_LEAVES = (("cluster-1", "meshtui-system", "gateway"), ("cluster-2", "default", "default"))
TOKEN = "bench"
HOST = "httpbin.httpbin:8080"

NGINX_CONF = """\
worker_processes 1;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream echo {{
        server 127.0.0.1:{echo_port};
        keepalive 64;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://echo;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }}
    }}
}}
"""


@dataclass
class Result:
    name: str
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    rss_kib: int | None
    echo_cpu_us: float  # CPU time of the echo app per request
    cpu_us: float | None  # CPU time of the proxy (nginx, ours) per request
    tap_lines: int | None = None  # lines the tap subscriber received during the run
    handshakes: int | None = None  # TLS handshakes the gateway accepted by the end of the run (mTLS target)
    cpu_us_each: tuple[float, ...] = ()  # cpu_us per proxy process (outbound, then gateway)
    twin_rps: float | None = None  # TAP_SIDE_TARGET: the untapped twin's requests/s and CPU per request
    twin_cpu_us: float | None = None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")


def start_ready(args: list[str]) -> subprocess.Popen:
    """Start one of our programs and wait for its `ready` line."""
    proc = subprocess.Popen([sys.executable, *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    line = proc.stdout.readline()
    if line.strip() != "ready":
        proc.kill()
        raise RuntimeError(f"{' '.join(args)} did not start (said {line!r})")
    return proc


def put_config(admin: str, config: dict) -> None:
    req = urllib.request.Request(f"http://{admin}/config", data=json.dumps(config).encode(), method="PUT",
                                 headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200


def endpoint(port: int, cluster: str, **kw) -> dict:
    return {"host": "127.0.0.1", "port": port, "cluster": cluster, **kw}


def route_config(cluster: str, group_cluster: str, endpoints: list[dict]) -> dict:
    return {
        "cluster": cluster, "cluster_key": f"default/default/default/{cluster}", "version": 1,
        "routes": [{"namespace": "httpbin", "name": "httpbin", "port": 8080,
                    "tiers": [[{"cluster": group_cluster, "weight": 100, "endpoints": endpoints}]]}],
        "gateway": [],
    }


def rss_kib(*pids: int) -> int:
    total = 0
    for pid in pids:
        status = Path(f"/proc/{pid}/status").read_text()
        total += int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))
    return total


def cpu_s(*pids: int) -> float:
    """User + system CPU seconds used so far by these processes."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / tick


class TapReader:
    """A tap subscriber (GET /tap on an admin port, no filter) reading the stream (in
    `form`: compact, as the controller subscribes for `meshtui tap` and the TUI, or json)
    as fast as it comes, in a thread, for as long as it is open. `lines` counts lines:
    in a compact stream one a request whose three events went out together, one an event
    otherwise, and a handful of route definitions; in JSON lines one an event."""

    def __init__(self, admin: str, form: str) -> None:
        host, port = admin.rsplit(":", 1)
        self.sock = socket.create_connection((host, int(port)), timeout=5)
        self.sock.sendall(b"GET /tap?format=%s HTTP/1.1\r\nHost: bench\r\n\r\n" % form.encode())
        self.lines = 0
        self.thread = threading.Thread(target=self._read, daemon=True)
        self.thread.start()

    def _read(self) -> None:
        self.sock.settimeout(None)
        try:
            while data := self.sock.recv(1 << 16):
                self.lines += data.count(b"\n")
        except OSError:
            pass  # closed under it (close())

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.thread.join(5)
        self.sock.close()


def gateway_handshakes(admin: str) -> int:
    with urllib.request.urlopen(f"http://{admin}/tls", timeout=5) as r:
        return json.load(r)["gateway_handshakes"]


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, host: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    return wrk_figures(start_wrk(url, host=host, duration=duration, connections=connections), duration)


def start_wrk(url: str, *, host: str, duration: int, connections: int) -> subprocess.Popen:
    return subprocess.Popen(["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {host}",
                             url], stdout=subprocess.PIPE, text=True)


def wrk_figures(proc: subprocess.Popen, duration: int) -> tuple[float, float, float, int]:
    """requests/s, p50 and p99 (ms) and errors of a finished `start_wrk`."""
    out, _ = proc.communicate(timeout=duration + 30)
    if proc.returncode:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {out}")
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))

    def pct(p: str) -> float:
        value, unit = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", out, re.M).groups()
        return float(value) * _UNITS[unit]

    errors = 0
    if m := re.search(r"Non-2xx or 3xx responses: (\d+)", out):
        errors += int(m.group(1))
    if m := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out):
        errors += sum(int(g) for g in m.groups())
    return rps, pct("50"), pct("99"), errors


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def profiled(pid: int, out: Path, duration: int) -> subprocess.Popen | None:
    """py-spy recording a process for `duration` seconds; None without py-spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not os.access(spy, os.X_OK):
        print("--profile: py-spy not found (pip install py-spy)", file=sys.stderr)
        return None
    return subprocess.Popen([spy, "record", "--native", "-d", str(duration), "-r", "250", "-f", "speedscope",
                             "-o", str(out), "-p", str(pid)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run(duration: int, connections: int, profile: Path | None = None, rounds: int = 1) -> list[list[Result]]:
    """Each round measures every target once, one after the other; the results by round."""
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if shutil.which("wrk") is None or nginx is None:
        raise SystemExit("benchmarks/proxy.py needs wrk and nginx: run `make tools` (sh .ci/install-tools)")
    procs: list[subprocess.Popen] = []
    results: list[list[Result]] = [[] for _ in range(rounds)]
    with tempfile.TemporaryDirectory(prefix="meshtui-bench-") as tmp:
        try:
            echo_port = free_port()
            procs.append(start_ready(["-m", "proxy.samples.echo", "--listen", f"127.0.0.1:{echo_port}",
                                      "--message", "Hi, I am from cluster-1 and controlled by mesh!"]))

            nginx_port = free_port()
            conf = Path(tmp, "nginx.conf")
            conf.write_text(NGINX_CONF.format(dir=tmp, echo_port=echo_port, port=nginx_port))
            ngx = subprocess.Popen([nginx, "-p", tmp, "-c", str(conf)], stderr=subprocess.DEVNULL)
            procs.append(ngx)
            wait_port(nginx_port)

            c1 = {k: f"127.0.0.1:{free_port()}" for k in ("outbound", "gateway", "admin")}
            p1 = start_ready(["-m", "proxy", "--cluster", "cluster-1", "--admin-token", TOKEN,
                              *(f"--{k}={v}" for k, v in c1.items()), "--log-level", "WARNING"])
            procs.append(p1)
            cfg1 = route_config("cluster-1", "cluster-1", [endpoint(echo_port, "cluster-1")])
            cfg1["gateway"] = [{"path": "/cluster-1/httpbin-mesh", "path_type": "Prefix", "namespace": "httpbin",
                                "service": "httpbin", "port": 8080,
                                "endpoints": [endpoint(echo_port, "cluster-1")]}]
            put_config(c1["admin"], cfg1)

            # the outbound proxy's twin, for TAP_SIDE_TARGET
            twin = {k: f"127.0.0.1:{free_port()}" for k in ("outbound", "admin")}
            p1_twin = start_ready(["-m", "proxy", "--cluster", "cluster-1", "--admin-token", TOKEN,
                                   *(f"--{k}={v}" for k, v in twin.items()), "--log-level", "WARNING"])
            procs.append(p1_twin)
            put_config(twin["admin"], route_config("cluster-1", "cluster-1", [endpoint(echo_port, "cluster-1")]))

            c2 = {k: f"127.0.0.1:{free_port()}" for k in ("outbound", "admin")}
            p2 = start_ready(["-m", "proxy", "--cluster", "cluster-2", "--admin-token", TOKEN,
                              *(f"--{k}={v}" for k, v in c2.items()), "--log-level", "WARNING"])
            procs.append(p2)
            gw_port = int(c1["gateway"].rsplit(":", 1)[1])
            put_config(c2["admin"], route_config("cluster-2", "cluster-1", [
                endpoint(gw_port, "cluster-1", gateway=True, path_prefix="/cluster-1/httpbin-mesh")]))

            # the same hop over mTLS, with the leaves the embedded federation issues
            ca = IdentityAuthority(tmp)
            for cluster, namespace, account in MTLS_LEAVES:
                ca.leaf(cluster, namespace, account)
            leaves = Path(tmp, "identity", "leaves")
            c1t = {k: f"127.0.0.1:{free_port()}" for k in ("gateway", "admin")}
            p1t = start_ready(["-m", "proxy", "--cluster", "cluster-1", "--admin-token", TOKEN,
                               *(f"--{k}={v}" for k, v in c1t.items()), f"--tls-dir={leaves / 'cluster-1'}",
                               "--log-level", "WARNING"])
            procs.append(p1t)
            put_config(c1t["admin"], cfg1)
            c2t = {k: f"127.0.0.1:{free_port()}" for k in ("outbound", "admin")}
            p2t = start_ready(["-m", "proxy", "--cluster", "cluster-2", "--admin-token", TOKEN,
                               *(f"--{k}={v}" for k, v in c2t.items()), f"--tls-dir={leaves / 'cluster-2'}",
                               "--log-level", "WARNING"])
            procs.append(p2t)
            put_config(c2t["admin"], route_config("cluster-2", "cluster-1", [
                endpoint(int(c1t["gateway"].rsplit(":", 1)[1]), "cluster-1", gateway=True,
                         path_prefix="/cluster-1/httpbin-mesh",
                         server_identity=spiffe_gateway_identity(ca.trust_domain, "cluster-1"))]))

            echo_pid = procs[0].pid
            targets = [
                ("echo app, direct", f"http://127.0.0.1:{echo_port}/", "echo", []),
                ("nginx reverse proxy", f"http://127.0.0.1:{nginx_port}/", "echo", [ngx.pid, *children(ngx.pid)]),
                ("outbound proxy", f"http://{c1['outbound']}/", HOST, [p1.pid]),
                (TAP_TARGET, f"http://{c1['outbound']}/", HOST, [p1.pid]),
                (TAP_JSON_TARGET, f"http://{c1['outbound']}/", HOST, [p1.pid]),
                (TAP_SIDE_TARGET, f"http://{twin['outbound']}/", HOST, [p1_twin.pid]),
                ("outbound -> gateway", f"http://{c2['outbound']}/", HOST, [p2.pid, p1.pid]),
                (MTLS_TARGET, f"http://{c2t['outbound']}/", HOST, [p2t.pid, p1t.pid]),
            ]
            for name, url, host, pids in targets:
                wrk(url, host=host, duration=1, connections=connections)  # warm up pools and caches
            for round_number, (name, url, host, pids) in ((r, t) for r in range(rounds) for t in targets):
                if name == TAP_SIDE_TARGET:  # the tapped one: the twin in odd rounds
                    sides = [(f"http://{c1['outbound']}/", c1["admin"], p1.pid), (url, twin["admin"], pids[0])]
                    results[round_number].append(tap_side_by_side(*sides[::-1] if round_number % 2 else sides,
                                                                  duration=duration, connections=connections,
                                                                  echo_pid=procs[0].pid))
                    continue
                spies = []
                if profile is not None and round_number == 0 and pids and pids[0] in (p1.pid, p2.pid, p2t.pid):
                    for pid in pids:
                        out = profile / f"{name.replace(' ', '').replace('->', '-')}-{pid}.speedscope.json"
                        spies.append(profiled(pid, out, duration))
                tap = TapReader(c1["admin"], "compact" if name == TAP_TARGET else "json") \
                    if name in (TAP_TARGET, TAP_JSON_TARGET) else None
                cpu0 = cpu_s(echo_pid, *pids), cpu_s(echo_pid), [cpu_s(pid) for pid in pids]
                rps, p50, p99, errors = wrk(url, host=host, duration=duration, connections=connections)
                cpu1 = cpu_s(echo_pid, *pids), cpu_s(echo_pid), [cpu_s(pid) for pid in pids]
                if tap is not None:
                    tap.close()
                for spy in spies:
                    if spy is not None:
                        spy.wait(30)
                n = rps * duration
                echo_us = (cpu1[1] - cpu0[1]) / n * 1e6
                proxy_us = ((cpu1[0] - cpu0[0]) - (cpu1[1] - cpu0[1])) / n * 1e6 if pids else None
                results[round_number].append(Result(name, rps, p50, p99, errors, rss_kib(*pids) if pids else None,
                                                    echo_us, proxy_us, tap.lines if tap is not None else None,
                                                    gateway_handshakes(c1t["admin"]) if name == MTLS_TARGET
                                                    else None,
                                                    tuple((b - a) / n * 1e6 for a, b in zip(cpu0[2], cpu1[2]))))
        finally:
            for proc in reversed(procs):
                stop(proc)
    return results


def tap_side_by_side(plain: tuple[str, str, int], tapped: tuple[str, str, int], *, duration: int,
                     connections: int, echo_pid: int) -> Result:
    """Two identical outbound proxies (url, admin, pid), loaded at once by a wrk each, one
    of them with a compact tap subscriber: what the subscriber costs, as the share of the
    tapped proxy's CPU per request that the plain one does not spend. Both see the same
    machine at the same moments, which requests/s measured one after the other on a
    shared host do not (each proxy gets about the CPU the scheduler gives it; requests/s
    here are not comparable with the other targets'). With two CPUs or more, the twins
    share one CPU and everything else (wrk, the echo app, the subscriber) runs on the
    others: the scheduler cannot then favour one twin by where it wakes the others up
    (with no subscriber at all, the twins' figures agree within about 2%)."""
    procs = [plain[2], tapped[2]]
    with pinned(procs, [os.getpid(), echo_pid]):
        tap = TapReader(tapped[1], "compact")
        cpu0 = [cpu_s(pid) for pid in procs]
        runs = [start_wrk(url, host=HOST, duration=duration, connections=connections)
                for url, _, _ in (plain, tapped)]
        (rps_plain, *_), (rps, p50, p99, errors) = [wrk_figures(run, duration) for run in runs]
        cpu1 = [cpu_s(pid) for pid in procs]
        tap.close()
    plain_us, tapped_us = ((b - a) / (r * duration) * 1e6 for a, b, r in zip(cpu0, cpu1, (rps_plain, rps)))
    return Result(TAP_SIDE_TARGET, rps, p50, p99, errors, rss_kib(tapped[2]), 0.0, tapped_us, tap.lines,
                  twin_rps=rps_plain, twin_cpu_us=plain_us)


@contextlib.contextmanager
def pinned(twins: list[int], others: list[int]) -> Iterator[None]:
    """While inside: every thread of the `twins` processes on the last CPU this process
    may use, those of `others` (and what they start meanwhile) on the rest; then as
    before. Nothing is pinned with fewer than two CPUs."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        yield
        return
    before = {pid: os.sched_getaffinity(pid) for pid in twins + others}
    try:
        for pid in twins:
            _set_affinity(pid, {cpus[-1]})
        for pid in others:
            _set_affinity(pid, set(cpus[:-1]))
        yield
    finally:
        for pid, where in before.items():
            _set_affinity(pid, where)


def _set_affinity(pid: int, cpus: set[int]) -> None:
    """Of every thread of process `pid`."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(thread), cpus)
        except ProcessLookupError:
            pass  # the thread ended meanwhile


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    return ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2


def _goal(label: str, values: list[float], met: bool, unit: str = "x") -> str:
    each = " ".join(f"{v:.2f}" if unit == "x" else f"{v:.1%}" for v in values)
    median = _median(values)
    shown = f"{median:.2f}x" if unit == "x" else f"{median:.1%}"
    return f"  {label}: {shown} [{each}]  {'MET' if met else 'NOT MET'}"


def report(rounds: list[list[Result]], duration: int, connections: int) -> str:
    """The median of each figure over the rounds, then each goal's ratio: per round (in
    brackets), and their median against the goal."""
    by_name: dict[str, list[Result]] = {}
    for results in rounds:
        for r in results:
            by_name.setdefault(r.name, []).append(r)
    lines = [
        f"wrk -t1 -c{connections} -d{duration}s, {len(rounds)} round(s) of every target in turn, loopback, "
        f"{os.cpu_count()} cores shared by wrk, app and proxies; medians over the rounds",
        f"the proxies' request path: {proxy.FORM} ({proxy.FORM_WHY})",
        f"{'target':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs nginx':>9} {'RSS MiB':>8} "
        f"{'echo us/req':>11} {'proxy us/req':>12}",
    ]
    ref_rps = _median([r.rps for r in by_name["nginx reverse proxy"]])
    for name, rs in by_name.items():
        if name == TAP_SIDE_TARGET:
            continue  # (its own lines below: its requests/s are shared with a twin)
        rss = max((r.rss_kib for r in rs if r.rss_kib is not None), default=None)
        cpu = _median([r.cpu_us for r in rs]) if rs[0].cpu_us is not None else None
        rps = _median([r.rps for r in rs])
        lines.append(f"{name:<22} {rps:>9.0f} {_median([r.p50_ms for r in rs]):>8.2f} "
                     f"{_median([r.p99_ms for r in rs]):>8.2f} {sum(r.errors for r in rs):>7} "
                     f"{rps / ref_rps:>8.2f}x {f'{rss / 1024:.1f}' if rss is not None else '-':>8} "
                     f"{_median([r.echo_cpu_us for r in rs]):>11.0f} {f'{cpu:.0f}' if cpu is not None else '-':>12}")

    def paired(a: str, b: str, ratio) -> list[float]:
        return [ratio(x, y) for x, y in zip(by_name.get(a, []), by_name.get(b, []))]

    lines.append("goals, with each round's figure in brackets:")
    outbound = by_name.get("outbound proxy")
    if outbound:
        vs = paired("outbound proxy", "nginx reverse proxy", lambda x, y: x.rps / y.rps)
        lines.append(_goal("outbound proxy >= 0.8x nginx's requests/s", vs, _median(vs) >= 0.8))
        p99 = paired("outbound proxy", "nginx reverse proxy", lambda x, y: x.p99_ms / y.p99_ms)
        lines.append(_goal("outbound proxy p99 <= 1.5x nginx's", p99, _median(p99) <= 1.5))
        # per process of ours (a cross-cluster target's figure is its two proxies' sum)
        per_proxy = {name: max(r.rss_kib / len(r.cpu_us_each) for r in rs) / 1024 for name, rs in by_name.items()
                     if rs[0].rss_kib is not None and name not in ("nginx reverse proxy", TAP_SIDE_TARGET)}
        worst = max(per_proxy.values())
        lines.append(f"  RSS per proxy < 40 MB: at most {worst:.1f} MiB ({per_proxy['outbound proxy']:.1f} plain, "
                     f"{per_proxy.get(MTLS_TARGET, 0):.1f} with --tls-dir)  {'MET' if worst * 1.048576 < 40 else 'NOT MET'}")
    if outbound and TAP_TARGET in by_name:
        cost = paired(TAP_TARGET, "outbound proxy", lambda x, y: 1 - x.rps / y.rps)
        extra = _median(paired(TAP_TARGET, "outbound proxy", lambda x, y: x.cpu_us - y.cpu_us))
        lines_read = sum(r.tap_lines or 0 for r in by_name[TAP_TARGET])
        each = " ".join(f"{v:.1%}" for v in cost)
        lines.append(f"  a tap subscriber (the controller's compact stream; {lines_read} lines read), one target after "
                     f"the other: {_median(cost):.1%} of the outbound proxy's requests/s [{each}]; +{extra:.0f} us/req "
                     f"of its CPU (the host's drift between two targets is of the same size: see side by side)")
    if TAP_SIDE_TARGET in by_name:
        rs = by_name[TAP_SIDE_TARGET]
        share = [1 - r.twin_cpu_us / r.cpu_us for r in rs]
        extra = _median([r.cpu_us - r.twin_cpu_us for r in rs])
        lines.append(_goal("a tap subscriber, side by side (two twin proxies loaded at once, one tapped: the share of "
                           "its CPU per request the untapped twin does not spend)", share, _median(share) < 0.10,
                           unit="%") + f"; +{extra:.0f} us/req")
        each = " ".join(f"{r.rps / r.twin_rps:.2f}" for r in rs)
        lines.append(f"    (requests/s tapped vs untapped twin meanwhile: [{each}]; "
                     f"{_median([r.twin_cpu_us for r in rs]):.0f} vs {_median([r.cpu_us for r in rs]):.0f} us/req)")
    if outbound and TAP_JSON_TARGET in by_name:
        cost = paired(TAP_JSON_TARGET, "outbound proxy", lambda x, y: 1 - x.rps / y.rps)
        extra = _median(paired(TAP_JSON_TARGET, "outbound proxy", lambda x, y: x.cpu_us - y.cpu_us))
        lines.append(f"  (reading whole JSON lines instead: {_median(cost):.1%}; +{extra:.0f} us/req)")
    if "outbound -> gateway" in by_name and MTLS_TARGET in by_name:
        for name in ("outbound -> gateway", MTLS_TARGET):
            each = [_median([r.cpu_us_each[i] for r in by_name[name]]) for i in range(2)]
            lines.append(f"  {name}: {each[0]:.0f} + {each[1]:.0f} us/req (outbound + gateway)")
        cost = paired(MTLS_TARGET, "outbound -> gateway", lambda x, y: 1 - x.rps / y.rps)
        lines.append(_goal("mTLS costs < 15% of the plain cross-cluster requests/s", cost, _median(cost) < 0.15,
                           unit="%"))
        handshakes = by_name[MTLS_TARGET][-1].handshakes
        shared = "one mux session" if handshakes == 1 else "NOT one mux session"
        lines.append(f"  {handshakes} TLS handshake(s) at the gateway in all (warm-up included) for {connections} "
                     f"client connections: {shared}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per measured target (default 10)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    p.add_argument("--rounds", type=int, default=3,
                   help="measure every target this many times, in turn, and report medians (default 3)")
    p.add_argument("--profile", type=Path, default=None, metavar="DIR",
                   help="record the proxies with py-spy into DIR (speedscope files)")
    args = p.parse_args(argv)
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    results = run(args.duration, args.connections, args.profile, args.rounds)
    print(report(results, args.duration, args.connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
