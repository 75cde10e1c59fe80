"""The modules of the request path that setup.py compiles with mypyc, and which of
the two forms a process runs.

The compiled form is the same source turned into C (mypyc): no bytecode to
interpret, attributes in C structs, direct calls between these modules. It is used
when every module's extension is newer than its source. When any source is newer
(edited since the last `make`), or MESHTUI_PURE=1 is set, all of them are imported
from source instead (`proxy.FORM_WHY` says why): the compiled modules call each other
in C, so a mix would silently run the old code of the edited one.

In these modules a module-level constant is declared `Final`: compiled code then
reads it from a C static, where it would otherwise look the name up in the
module's dict on every use (about 150 instructions). A function imported from
elsewhere and called per request gets a `Final` name of its own for the same
reason (`perf_counter: Final = time.perf_counter`).

Kept free of imports from the rest of the project: setup.py reads MODULES from it.
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
import math
import os
import sys

MODULES = (
    "proxy.config",
    "proxy.external",
    "proxy.metrics",
    "proxy.outbound",
    "proxy.protocols",
    "proxy.tap",
    "proxy.routing.balancers",
    "proxy.routing.health",
    "proxy.routing.table",
    "proxy.http1.client",
    "proxy.http1.express",
    "proxy.http1.flow",
    "proxy.http1.forward",
    "proxy.http1.pool",
    "proxy.http1.relay",
    "proxy.http1.server",
)
GROUP = "proxy.hotpath"  # their shared library: proxy/hotpath__mypyc.*.so
PURE_ENV = "MESHTUI_PURE"


def _paths(root: str, module: str) -> tuple[str, str | None]:
    """The source of `module` under the project folder `root`, and its extension if built."""
    base = os.path.join(root, *module.split("."))
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        if os.path.exists(base + suffix):
            return base + ".py", base + suffix
    return base + ".py", None


def choose(root: str, environ: dict[str, str] | os._Environ[str] = os.environ) -> tuple[str, str]:
    """("mypyc" or "python", why) for the modules under project folder `root`."""
    if environ.get(PURE_ENV, "") not in ("", "0"):
        return "python", f"{PURE_ENV} is set"
    library = _paths(root, GROUP + "__mypyc")[1]
    # the code itself is in the library, the modules' own extensions are shims: a build that
    # failed half way may leave new shims beside an old library
    library_at = os.path.getmtime(library) if library is not None else math.inf  # (missing: said below)
    built = 0
    for module in MODULES:
        source, extension = _paths(root, module)
        if extension is None:
            continue
        built += 1
        if os.path.getmtime(source) > min(os.path.getmtime(extension), library_at):
            return "python", f"{source} changed since it was compiled (run `make` to compile it again)"
    if built == 0:
        return "python", "not compiled (setup.py compiles them when mypy is installed)"
    if built < len(MODULES):
        return "python", f"only {built} of {len(MODULES)} modules are compiled"
    if library is None:
        return "python", f"their shared library {GROUP}__mypyc is missing"
    return "mypyc", f"{len(MODULES)} modules compiled"


class _SourceFirst:
    """A finder that imports MODULES from their .py files, ahead of their extensions."""

    def find_spec(self, fullname: str, path: object = None, target: object = None) -> object:
        if fullname not in MODULES or not path:
            return None
        name = fullname.rpartition(".")[2]
        for folder in path:  # type: ignore[attr-defined]
            source = os.path.join(folder, name + ".py")
            if os.path.exists(source):
                return importlib.util.spec_from_file_location(fullname, source)
        return None


def install(root: str) -> tuple[str, str]:
    """Decide the form for this process, before any of MODULES is imported. Both forms
    behave alike; the benchmarks print which one ran."""
    form, why = choose(root)
    if form == "python":
        sys.meta_path.insert(0, _SourceFirst())
    return form, why
