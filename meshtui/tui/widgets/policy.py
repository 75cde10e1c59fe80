"""The GlobalTrafficPolicy editor: lbType, targets and weights, inline validation, and the share
of the cluster's requests each cluster would serve under the draft."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Checkbox, Input, Label, Select, Static

from ..logic import fmt
from ..logic.policy import LB_TYPES, TargetDraft, effective_share, validate_draft

Obj = dict[str, Any]
BAR_WIDTH = 24


@dataclass
class PolicyContext:
    cluster: str
    namespace: str
    name: str
    existing: Obj | None
    members: list[tuple[str, str]]  # (name, clusterKey) of every member but `cluster`
    known_keys: set[str]
    local_ready: bool
    reachable: set[str] = field(default_factory=set)  # clusters exporting the service to `cluster`

    @property
    def key(self) -> str:
        return f"{self.cluster}/{self.namespace}/{self.name}"


class TargetRow(Horizontal):
    def __init__(self, name: str, key: str, enabled: bool, weight: str) -> None:
        super().__init__(classes="target-row")
        self.target_key = key
        self.enabled = Checkbox(name, enabled)
        self.weight = Input(weight, placeholder="default", restrict=r"-?[0-9]*")

    def compose(self) -> ComposeResult:
        yield self.enabled
        yield Label(self.target_key, classes="target-key")
        yield self.weight

    def draft(self) -> TargetDraft:
        return TargetDraft(self.target_key, self.enabled.value, self.weight.value)


class PolicyEditor(Vertical):
    class ApplyRequested(Message):
        pass

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.context: PolicyContext | None = None
        self._baseline: tuple = ()
        self.rows: list[TargetRow] = []
        self.read_only = False

    def compose(self) -> ComposeResult:
        yield Label("select a policy above, or press n for a new one", id="policy-title")
        with Horizontal(classes="row"):
            yield Label("lbType", classes="label")
            yield Select([(t, t) for t in LB_TYPES], value="Locality", allow_blank=False, id="lb-type")
        yield Vertical(id="policy-targets")
        yield Static("", id="policy-errors")
        yield Static("", id="policy-share")
        with Horizontal(classes="row"):
            yield Button("Apply (ctrl+s)", id="policy-apply", variant="primary")
            yield Button("Revert", id="policy-revert")

    # state ------------------------------------------------------------------------------
    def _values(self) -> tuple:
        return (str(self.query_one("#lb-type", Select).value), tuple(r.draft() for r in self.rows))

    @property
    def dirty(self) -> bool:
        return self.context is not None and self._values() != self._baseline

    def draft(self) -> tuple[dict | None, list[str]]:
        lb, targets = self._values()
        return validate_draft(lb, list(targets), self.context.known_keys if self.context else set())

    async def load(self, ctx: PolicyContext) -> None:
        """Show `ctx`'s policy (or a new draft: FailOver to every cluster that exports the service)."""
        self.context = ctx
        if ctx.existing is not None:
            spec = ctx.existing.get("spec") or {}
            lb = spec.get("lbType", "Locality")
            listed = [(t["clusterKey"], True, "" if t.get("weight") is None else str(t["weight"])) for t in spec.get("targets", [])]
        else:
            lb = "FailOver"
            listed = [(key, True, "") for name, key in ctx.members if name in ctx.reachable]
        seen = {k for k, _, _ in listed}
        names = {key: name for name, key in ctx.members}
        rows = [TargetRow(names.get(k, "?"), k, on_, w) for k, on_, w in listed]
        rows += [TargetRow(name, key, False, "") for name, key in ctx.members if key not in seen]
        with self.prevent(Select.Changed):
            self.query_one("#lb-type", Select).value = lb
        container = self.query_one("#policy-targets")
        self.rows = rows
        await container.remove_children()
        await container.mount_all(rows)
        state = "" if ctx.existing else "  (new, not applied yet)"
        self.query_one("#policy-title", Label).update(Text(f"GlobalTrafficPolicy {ctx.namespace}/{ctx.name} in {ctx.cluster}{state}", style="bold"))
        self._baseline = self._values()
        self.revalidate()

    def mark_applied(self) -> None:
        self._baseline = self._values()
        self.revalidate()

    # feedback ---------------------------------------------------------------------------
    def revalidate(self) -> None:
        ctx = self.context
        if ctx is None:
            return
        spec, errors = self.draft()
        self.query_one("#policy-errors", Static).update(Text("\n".join(f"✘ {e}" for e in errors)))
        self.query_one("#policy-apply", Button).disabled = bool(errors) or self.read_only or not self.dirty and ctx.existing is not None
        self.query_one("#policy-revert", Button).disabled = not self.dirty
        self.query_one("#policy-share", Static).update(self._share_text(spec))

    def _share_text(self, spec: dict | None) -> Text:
        ctx = self.context
        assert ctx is not None
        out = Text(f"Effective share of {ctx.cluster}'s requests to {ctx.name}.{ctx.namespace}", style="bold")
        out.append(" (modified)" if self.dirty else "", style="italic")
        out.append("\n")
        if spec is None:
            out.append("  fix the errors above to see it\n")
            return out
        names = {key: name for name, key in ctx.members}
        targets = [(names.get(t["clusterKey"], t["clusterKey"]), t.get("weight")) for t in spec["targets"]]
        share = effective_share(spec["lbType"], ctx.cluster, ctx.local_ready, targets, ctx.reachable)
        if not share:
            out.append("  no cluster can serve it: every request fails with 503\n", style="bold red")
        for name, fraction in sorted(share.items(), key=lambda kv: -kv[1]):
            label = f"{name} (local)" if name == ctx.cluster else name
            out.append(f"  {label:<22} {fmt.bar(fraction, BAR_WIDTH)} {fraction * 100:5.1f}%\n")
        if not ctx.local_ready:
            out.append(f"  {ctx.cluster} has no ready local endpoint of it\n", style="dim")
        return out

    @on(Select.Changed)
    @on(Checkbox.Changed)
    @on(Input.Changed)
    def _changed(self, event: Message) -> None:
        event.stop()
        self.revalidate()

    @on(Button.Pressed, "#policy-apply")
    def _apply(self, event: Button.Pressed) -> None:
        event.stop()
        self.post_message(self.ApplyRequested())

    @on(Button.Pressed, "#policy-revert")
    async def _revert(self, event: Button.Pressed) -> None:
        event.stop()
        if self.context is not None:
            await self.load(self.context)
