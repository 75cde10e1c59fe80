"""HTTP data-plane benchmark: the outbound proxy and the cross-cluster path
(outbound -> gateway) against nginx as a keep-alive reverse proxy, all on
loopback, measured with wrk in the same run.

    python -m benchmarks.proxy [--duration 10] [--connections 50]

Needs wrk and nginx (`make tools`, i.e. sh .ci/install-tools). Prints
requests/s, p50 and p99 per target, the ratio of requests/s to nginx, and the
resident memory of each proxy process after its run.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
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


def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, *, host: str, duration: int, connections: int) -> tuple[float, float, float, int]:
    out = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency", "-H", f"Host: {host}", url],
        capture_output=True, text=True, check=True, timeout=duration + 30,
    ).stdout
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


def run(duration: int, connections: int) -> list[Result]:
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.access("/usr/sbin/nginx", os.X_OK) else None)
    if shutil.which("wrk") is None or nginx is None:
        raise SystemExit("benchmarks/proxy.py needs wrk and nginx: run `make tools` (sh .ci/install-tools)")
    procs: list[subprocess.Popen] = []
    results: list[Result] = []
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

            c2 = {k: f"127.0.0.1:{free_port()}" for k in ("outbound", "admin")}
            p2 = start_ready(["-m", "proxy", "--cluster", "cluster-2", "--admin-token", TOKEN,
                              *(f"--{k}={v}" for k, v in c2.items()), "--log-level", "WARNING"])
            procs.append(p2)
            gw_port = int(c1["gateway"].rsplit(":", 1)[1])
            put_config(c2["admin"], route_config("cluster-2", "cluster-1", [
                endpoint(gw_port, "cluster-1", gateway=True, path_prefix="/cluster-1/httpbin-mesh")]))

            targets = [
                ("echo app, direct", f"http://127.0.0.1:{echo_port}/", "echo", lambda: None),
                ("nginx reverse proxy", f"http://127.0.0.1:{nginx_port}/", "echo",
                 lambda: rss_kib(ngx.pid, *children(ngx.pid))),
                ("outbound proxy", f"http://{c1['outbound']}/", HOST, lambda: rss_kib(p1.pid)),
                ("outbound -> gateway", f"http://{c2['outbound']}/", HOST,
                 lambda: rss_kib(p2.pid) + rss_kib(p1.pid)),
            ]
            for name, url, host, rss in targets:
                wrk(url, host=host, duration=1, connections=connections)  # warm up pools and caches
                rps, p50, p99, errors = wrk(url, host=host, duration=duration, connections=connections)
                results.append(Result(name, rps, p50, p99, errors, rss()))
        finally:
            for proc in reversed(procs):
                stop(proc)
    return results


def report(results: list[Result], duration: int, connections: int) -> str:
    ref = next(r for r in results if r.name.startswith("nginx"))
    lines = [
        f"wrk -t1 -c{connections} -d{duration}s, loopback, {os.cpu_count()} cores shared by wrk, app and proxies",
        f"{'target':<22} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'vs nginx':>9} {'RSS MiB':>8}",
    ]
    for r in results:
        rss = f"{r.rss_kib / 1024:.1f}" if r.rss_kib is not None else "-"
        lines.append(f"{r.name:<22} {r.rps:>9.0f} {r.p50_ms:>8.2f} {r.p99_ms:>8.2f} {r.errors:>7} "
                     f"{r.rps / ref.rps:>8.2f}x {rss:>8}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--duration", type=int, default=10, help="seconds per measured target (default 10)")
    p.add_argument("--connections", type=int, default=50, help="wrk connections (default 50)")
    args = p.parse_args(argv)
    results = run(args.duration, args.connections)
    print(report(results, args.duration, args.connections))
    return 0


if __name__ == "__main__":
    sys.exit(main())
