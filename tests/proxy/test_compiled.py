"""The request path's two forms (proxy/compiled.py): mypyc-compiled after `make`, from
source when a module changed since, or when MESHTUI_PURE=1 says so."""
from __future__ import annotations

import importlib.machinery
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import proxy
from proxy import compiled

ROOT = Path(__file__).resolve().parents[2]
SUFFIX = importlib.machinery.EXTENSION_SUFFIXES[0]


def fake_tree(tmp_path: Path, built: tuple[str, ...] = compiled.MODULES, shared: bool = True) -> Path:
    """Sources of every module, an (empty) extension for those in `built`, each newer than its
    source, and (`shared`) their shared library."""
    if shared:
        library = tmp_path.joinpath(*f"{compiled.GROUP}__mypyc".split("."))
        library.parent.mkdir(parents=True, exist_ok=True)
        library.with_name(library.name + SUFFIX).write_bytes(b"")
    for module in compiled.MODULES:
        base = tmp_path.joinpath(*module.split("."))
        base.parent.mkdir(parents=True, exist_ok=True)
        source = base.with_name(base.name + ".py")
        source.write_text("")
        os.utime(source, (1_000_000, 1_000_000))
        if module in built:
            extension = base.with_name(base.name + SUFFIX)
            extension.write_bytes(b"")
            os.utime(extension, (2_000_000, 2_000_000))
    return tmp_path


def test_every_module_built_and_newer_than_its_source_runs_compiled(tmp_path):
    assert compiled.choose(str(fake_tree(tmp_path)), {}) == ("mypyc", f"{len(compiled.MODULES)} modules compiled")


def test_a_source_edited_after_the_build_makes_all_of_them_run_from_source(tmp_path):
    root = fake_tree(tmp_path)
    edited = root / "proxy" / "http1" / "relay.py"
    os.utime(edited, (3_000_000, 3_000_000))
    form, why = compiled.choose(str(root), {})
    assert form == "python"
    assert str(edited) in why and "make" in why


def test_a_library_older_than_a_source_runs_from_source_though_the_shims_are_new(tmp_path):
    root = fake_tree(tmp_path)  # (a build that failed half way: new shims, the old library)
    library = root / "proxy" / f"hotpath__mypyc{SUFFIX}"
    os.utime(library, (500_000, 500_000))
    form, why = compiled.choose(str(root), {})
    assert form == "python" and "changed since it was compiled" in why


def test_the_environment_asks_for_source(tmp_path):
    root = fake_tree(tmp_path)
    assert compiled.choose(str(root), {"MESHTUI_PURE": "1"}) == ("python", "MESHTUI_PURE is set")
    assert compiled.choose(str(root), {"MESHTUI_PURE": "0"})[0] == "mypyc"


def test_nothing_built_or_only_some_runs_from_source(tmp_path):
    assert compiled.choose(str(fake_tree(tmp_path / "none", built=())), {})[0] == "python"
    form, why = compiled.choose(str(fake_tree(tmp_path / "some", built=compiled.MODULES[:3])), {})
    assert (form, why) == ("python", f"only 3 of {len(compiled.MODULES)} modules are compiled")
    form, why = compiled.choose(str(fake_tree(tmp_path / "no library", shared=False)), {})
    assert (form, why) == ("python", "their shared library proxy.hotpath__mypyc is missing")


@pytest.mark.skipif(shutil.which("cc") is None, reason="no C compiler: setup.py leaves the request path in Python")
@pytest.mark.skipif(os.environ.get("MESHTUI_PURE", "") not in ("", "0"), reason="MESHTUI_PURE is set")
def test_the_installed_request_path_is_the_compiled_one():
    import proxy.http1.relay

    assert proxy.FORM == "mypyc", f"`make` should have compiled the request path: {proxy.FORM_WHY}"
    assert proxy.http1.relay.__file__.endswith(SUFFIX)


def run_in(root: Path, env: dict[str, str]) -> list[str]:
    code = "import proxy, proxy.http1.relay as r, proxy.tap as t; print(proxy.FORM, r.__file__, t.__file__, proxy.FORM_WHY)"
    out = subprocess.run([sys.executable, "-c", code], cwd=root, env={**os.environ, **env},
                         capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.split(maxsplit=3)


@pytest.mark.skipif(proxy.FORM != "mypyc", reason="needs the compiled request path")
def test_a_process_imports_every_module_from_source_once_one_changed(tmp_path):
    copy = tmp_path / "proxy"
    shutil.copytree(ROOT / "proxy", copy, ignore=shutil.ignore_patterns("__pycache__"))  # keeps mtimes
    form, relay, tap, _ = run_in(tmp_path, {})
    assert (form, relay.endswith(SUFFIX), tap.endswith(SUFFIX)) == ("mypyc", True, True)
    assert relay.startswith(str(copy))

    (copy / "tap.py").touch()
    form, relay, tap, why = run_in(tmp_path, {})
    assert (form, relay.endswith("relay.py"), tap.endswith("tap.py")) == ("python", True, True)
    assert why.startswith(f"{copy / 'tap.py'} changed since it was compiled")

    os.utime(copy / "tap.py", (1_000_000, 1_000_000))  # older than its extension again
    assert run_in(tmp_path, {"MESHTUI_PURE": "1"})[:2] == ["python", str(copy / "http1" / "relay.py")]
