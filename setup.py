"""Compiles the proxy's request path (the modules proxy/compiled.py lists) with mypyc.

Everything else about the package is in pyproject.toml. Without a C compiler, or with
MESHTUI_COMPILE=0, the package installs as plain Python and runs the same code slower.
"""
import os
import runpy
import sys

from setuptools import setup
from setuptools.command.build_ext import build_ext

HERE = os.path.dirname(os.path.abspath(__file__))


class OptionalBuildExt(build_ext):
    """A failed compile leaves the package in plain Python instead of failing the install.
    Every extension is built again each time: a module's own extension is a shim whose C
    does not change with its source, and proxy/compiled.py takes an extension older than
    its source for a stale one."""

    def run(self) -> None:
        self.force = True
        try:
            super().run()
        except Exception as exc:  # noqa: BLE001 - any compiler failure
            print(f"meshtui: the request path stays in Python: compiling it failed: {exc}", file=sys.stderr)


def compiled_modules() -> list:
    if os.environ.get("MESHTUI_COMPILE", "1") == "0":
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        print("meshtui: mypy is not installed: the request path stays in Python", file=sys.stderr)
        return []
    listed = runpy.run_path(os.path.join(HERE, "proxy", "compiled.py"))
    paths = [os.path.join(*module.split(".")) + ".py" for module in listed["MODULES"]]
    return mypycify(["--ignore-missing-imports", "--follow-imports=silent", *paths], group_name=listed["GROUP"])


setup(ext_modules=compiled_modules(), cmdclass={"build_ext": OptionalBuildExt})
