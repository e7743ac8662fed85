"""The layout's one-way rule, checked on every import in the code (function-level ones too).

streams/ is the ground floor; capture/, inference/ and sinks/ stand on it and never on each other
(offline tools under inference/ may read capture's readers, simulator and cameras as data); deploy/ is on
top. Live code (the worker, the analysis, the models, pose) imports no offline tool and no capture
code. No module imports another that imports it back.
"""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path

import pytest

from conftest import REPO

PACKAGES = ("streams", "capture", "inference", "sinks", "deploy")
# what each top-level package may import besides itself
ALLOWED = {
    "streams": set(),
    "capture": {"streams"},
    "inference": {"streams"},
    "sinks": {"streams"},
    "deploy": {"streams", "capture", "inference", "sinks"},
}
LIVE = ("inference.worker", "inference.analysis", "inference.models", "inference.pose")
OFFLINE = ("inference.data", "inference.train", "inference.eval", "inference.bench",
           "inference.analyze", "inference.video", "inference.plot", "inference.embed")


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def module_imports(root: Path) -> dict[str, set[str]]:
    """module name -> the project modules (or packages) it imports, anywhere in its body."""
    out: dict[str, set[str]] = {}
    for top in PACKAGES:
        for path in sorted((root / top).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            is_pkg = parts[-1] == "__init__"
            if is_pkg:
                parts = parts[:-1]
            name = ".".join(parts)
            package = parts if is_pkg else parts[:-1]
            deps: set[str] = set()
            for node in ast.walk(ast.parse(path.read_text(), str(path))):
                if isinstance(node, ast.Import):
                    deps.update(a.name for a in node.names)
                elif isinstance(node, ast.ImportFrom):
                    base = node.module or ""
                    if node.level:
                        anchor = package[:len(package) - node.level + 1]
                        base = ".".join(anchor + ([base] if base else []))
                    deps.add(base)
                    # "from pkg import module" imports the module
                    deps.update(f"{base}.{a.name}" for a in node.names)
            out[name] = {d for d in deps if d.split(".")[0] in PACKAGES}
    # keep only names that are modules or packages of the project
    return {m: {d for d in ds if d in out} for m, ds in out.items()}


def violations(imports: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, deps in sorted(imports.items()):
        top = mod.split(".")[0]
        for dep in sorted(deps):
            dtop = dep.split(".")[0]
            if dtop == top:
                if _under(mod, LIVE) and _under(dep, OFFLINE):
                    bad.append(f"{mod} (live) imports the offline tool {dep}")
                continue
            if dtop in ALLOWED[top]:
                continue
            if top == "inference" and dtop == "capture" and _under(mod, OFFLINE):
                continue  # offline tools read recordings, the simulator and cameras as data
            bad.append(f"{mod} imports {dep} against the flow")
    return bad


def cycles(imports: dict[str, set[str]]) -> list[list[str]]:
    """Import circles between modules (a package's __init__ counts as a module)."""
    found, state, stack = [], {}, []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(imports.get(m, ())):
            if d == m or m.startswith(d + "."):
                continue  # a module importing its own package's __init__ is no circle
            if state.get(d) == 1:
                found.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(imports):
        if m not in state:
            visit(m)
    return found


def test_every_import_runs_with_the_flow():
    imports = module_imports(REPO)
    assert len(imports) > 100  # the walk found the code
    assert violations(imports) == []


def test_no_import_circles():
    assert cycles(module_imports(REPO)) == []


@pytest.mark.parametrize("module, source, expected", [
    ("streams/wire.py", "from deploy.cli import main\n", "streams.wire imports deploy.cli"),
    ("inference/analysis/x.py", "def f():\n    from capture.readers import load\n",
     "inference.analysis.x imports capture.readers"),
    ("inference/models/m.py", "from inference.eval import events\n",
     "inference.models.m (live) imports the offline tool inference.eval"),
    ("sinks/s.py", "from inference.worker import Worker\n", "sinks.s imports inference.worker"),
])
def test_the_checker_catches_an_import_against_the_flow(tmp_path, module, source, expected):
    for top in PACKAGES:
        (tmp_path / top).mkdir()
        (tmp_path / top / "__init__.py").write_text("")
    for pkg in ("inference/analysis", "inference/models", "inference/eval", "capture/readers"):
        (tmp_path / pkg).mkdir(exist_ok=True)
        (tmp_path / pkg / "__init__.py").write_text("")
    (tmp_path / "deploy" / "cli.py").write_text("")
    (tmp_path / "inference" / "worker.py").write_text("")
    (tmp_path / module).write_text(textwrap.dedent(source))
    assert any(v.startswith(expected) for v in violations(module_imports(tmp_path)))


def test_the_checker_catches_a_circle(tmp_path):
    for top in PACKAGES:
        (tmp_path / top).mkdir()
        (tmp_path / top / "__init__.py").write_text("")
    (tmp_path / "sinks" / "a.py").write_text("from sinks.b import x\n")
    (tmp_path / "sinks" / "b.py").write_text("def f():\n    from sinks import a\n")
    assert cycles(module_imports(tmp_path)) == [["sinks.a", "sinks.b", "sinks.a"]]
