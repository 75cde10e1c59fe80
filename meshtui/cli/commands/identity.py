"""`meshtui identity show`: the trust anchor(s), every cluster's issuer and every leaf with its
expiry. `meshtui identity rotate-anchor`: a new trust anchor with no failed request, every
running proxy reloaded between the steps (controller/identity/rotation.py).

Both work on the state dir's certificate authority (<state>/identity/), from the controller's
machine; rotate-anchor reaches the running proxies through the controller's Cluster status."""
from __future__ import annotations

import argparse
import asyncio
from datetime import datetime, timezone

import aiohttp

from controller.errors import Unavailable
from controller.federation.admin import AdminError, ProxyAdmin, running_admins
from controller.identity import read_report, rotate_anchor
from controller.identity.report import IdentityReport
from meshtui.cli import output
from meshtui.cli.connect import open_controller, state_dir_of

NAME = "identity"
HELP = "show the federation's certificates, or rotate its trust anchor"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=("show", "rotate-anchor"))
    parser.add_argument("-o", "--output", choices=("table", "yaml", "json"), default="table")


def report_text(report: IdentityReport, now: datetime) -> str:
    def until(moment: datetime) -> str:
        # output.age() measures from a past moment: the one as far behind now as `moment` is ahead
        left = f"in {output.age((now - (moment - now)).isoformat(), now)}" if moment > now else "expired"
        return f"{moment.isoformat(timespec='seconds')} ({left})"

    lines = [f"trust domain   {report.trust_domain}",
             f"trust anchor   {report.anchor.anchor_fingerprint}  valid until {until(report.anchor.not_after)}"]
    if report.previous is not None:
        lines.append(f"previous       {report.previous.anchor_fingerprint}  (still trusted: a rotation is in progress)")
    lines.append("")
    lines.append(output.table(["ISSUER", "NOT_AFTER", "ANCHOR"], [
        [cluster, until(info.not_after), (info.anchor_fingerprint or "untrusted")[:16]]
        for cluster, info in sorted(report.issuers.items())]))
    lines.append("")
    lines.append(output.table(["LEAF", "NOT_AFTER", "ANCHOR"], [
        [info.identity.uri if info.identity else str(info.path), until(info.not_after),
         (info.anchor_fingerprint or "untrusted")[:16]] for info in report.leaves]))
    lines += [f"unreadable: {u}" for u in report.unreadable]
    return "\n".join(lines)


async def show(args: argparse.Namespace) -> int:
    report = await asyncio.to_thread(read_report, state_dir_of(args))
    if args.output == "table":
        print(report_text(report, datetime.now(timezone.utc)))
    else:
        print(output.dump(report.to_dict(), args.output))
    return 0


async def rotate(args: argparse.Namespace) -> int:
    state_dir = state_dir_of(args)
    async with open_controller(args) as controller:
        clusters = await controller.list("Cluster")
    async with aiohttp.ClientSession() as session:
        admins = running_admins(session, state_dir, clusters)
        if not admins:
            print("no running proxy found: proxies load the new certificates when they start")

        async def reload_all(why: str) -> None:
            async def one(name: str, admin: ProxyAdmin) -> str:
                try:
                    await admin.reload_tls()
                    return ""
                except AdminError as e:
                    return f"{name}: {e}"

            failed = [f for f in await asyncio.gather(*(one(n, a) for n, a in sorted(admins.items()))) if f]
            if failed:
                raise Unavailable(f"rotation stopped: not every proxy reloaded to {why}: {'; '.join(failed)}; the "
                                  "bundle trusts both anchors, run `meshtui identity rotate-anchor` again to resume")
            if admins:
                print(f"  {len(admins)} proxies reloaded to {why}")

        fingerprint = await rotate_anchor(state_dir, None, reload_all, lambda line: print(line, flush=True))
    print(f"trust anchor rotated: {fingerprint}")
    return 0


async def run(args: argparse.Namespace) -> int:
    return await (show(args) if args.action == "show" else rotate(args))
