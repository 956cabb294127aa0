"""The layering of DESIGN.md, checked on the source: every import under tidu/ (module level and
inside functions) goes up the list, never down, and no module takes a `_private` name from
another top-level package. Also: no file under tidu/ is over 600 lines.

Each top-level module or package has a rank from the list below (the preamble's rows; the
several modules of rows 1, 5 and 14 are ranked in the order listed, so within a row a module
imports only those before it). A module may import a module of lower rank, or of equal rank
inside its own top-level package.
"""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "tidu"

# rank of each module, by the longest dotted prefix that matches
RANKS = {
    "tidu.backend": 1.0, "tidu.errors": 1.1, "tidu._checks": 1.2, "tidu._registry": 1.3,
    "tidu.utils": 1.4, "tidu.version": 1.5,
    "tidu.autograd": 2,
    "tidu.kernels": 3,
    "tidu.functional": 4,
    "tidu.initializers": 5.0, "tidu.regularizers": 5.1, "tidu.activations": 5.2,
    "tidu.losses": 5.3, "tidu.metrics": 5.4,
    "tidu.layers": 6,
    "tidu.optimizers": 7,
    "tidu.data": 8.0, "tidu.datasets": 8.1,
    "tidu.saving": 9, "tidu.export": 9,
    "tidu.callbacks": 10,
    "tidu.training": 11,
    "tidu.distributed": 12,
    "tidu.models": 13,
    "tidu.tuning": 14.0, "tidu.lab": 14.1, "tidu.distributed.experiment": 14.2,
    "tidu.distributed.cli": 14.3, "tidu.cli": 14.4, "tidu": 14.5,
}

MAX_LINES = 600


def _module_name(path):
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_module(dotted):
    path = ROOT.joinpath(*dotted.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _rank(module):
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        rank = RANKS.get(".".join(parts[:n]))
        if rank is not None:
            return rank
    return None


def _package(module):
    """The top-level package: 'tidu.layers' for tidu.layers.core, 'tidu' for tidu itself."""
    return ".".join(module.split(".")[:2])


def _imports(path):
    """(line, imported module, imported names) of every import of tidu in the file, at any depth."""
    module = _module_name(path)
    is_package = path.name == "__init__.py"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "tidu":
                    yield node.lineno, alias.name, ()
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = module.split(".")
                base = base[:len(base) - node.level + (1 if is_package else 0)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if source.split(".")[0] != "tidu":
                continue
            names = [a.name for a in node.names]
            submodules = [n for n in names if _is_module(f"{source}.{n}")]
            for n in submodules:                 # `from tidu import backend`: the module itself
                yield node.lineno, f"{source}.{n}", ()
            others = tuple(n for n in names if n not in submodules)
            if others:
                yield node.lineno, source, others


def _files():
    return sorted(PACKAGE.rglob("*.py"))


def _violations():
    """{(file, imported): 'file:line: reason'} over every module under tidu/."""
    found = {}
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        module = _module_name(path)
        rank = _rank(module)
        if rank is None:
            found[(rel, module)] = f"{rel}: module {module} has no rank in the layering"
            continue
        for line, imported, names in _imports(path):
            target = _rank(imported)
            where = f"{rel}:{line}"
            if target is None:
                found[(rel, imported)] = f"{where}: imports {imported}, which has no rank in the layering"
            elif target > rank or (target == rank and _package(imported) != _package(module)):
                found[(rel, imported)] = (f"{where}: imports {imported} (rank {target}) from {module} "
                                          f"(rank {rank}): down the layering")
            if _package(imported) != _package(module):
                private = [n for n in names if n.startswith("_") and not n.startswith("__")]
                private += [p for p in imported.split(".")[2:] if p.startswith("_")]
                for name in private:
                    found[(rel, f"{imported}.{name}")] = (f"{where}: takes the private {name} from "
                                                          f"{imported}, another package")
    return found


def _check(found, what):
    if found:
        pytest.fail(f"{len(found)} {what}:\n" + "\n".join(sorted(found.values())))


def test_imports_go_up_the_layering_and_take_no_private_names():
    _check(_violations(), "import-order violations")


def test_no_file_is_over_600_lines():
    found = {}
    for path in _files():
        rel = path.relative_to(ROOT).as_posix()
        n = len(path.read_text(encoding="utf-8").splitlines())
        if n > MAX_LINES:
            found[rel] = f"{rel}: {n} lines (at most {MAX_LINES})"
    _check(found, "files over 600 lines")


# --- the checker itself, on made-up sources -----------------------------------------------
def test_the_checker_sees_function_level_relative_and_private_imports(tmp_path, monkeypatch):
    root = tmp_path
    (root / "tidu" / "layers").mkdir(parents=True)
    (root / "tidu" / "functional").mkdir()
    for f in ("tidu/__init__.py", "tidu/layers/__init__.py", "tidu/functional/__init__.py",
              "tidu/functional/math.py", "tidu/backend.py"):
        (root / f).write_text("")
    (root / "tidu" / "layers" / "core.py").write_text("from . import base\n")
    (root / "tidu" / "layers" / "base.py").write_text("")
    (root / "tidu" / "functional" / "ops.py").write_text(
        "from tidu import backend\n"
        "def f():\n"
        "    from tidu.layers import core\n"          # down: functional (4) -> layers (6)
        "    from tidu.backend import _private\n"     # a private name of another package
        "    from .math import _tensor\n")            # private, but the same package: fine
    monkeypatch.setitem(globals(), "ROOT", root)
    monkeypatch.setitem(globals(), "PACKAGE", root / "tidu")
    found = _violations()
    assert set(found) == {("tidu/functional/ops.py", "tidu.layers.core"),
                          ("tidu/functional/ops.py", "tidu.backend._private")}
    assert "tidu/functional/ops.py:3" in found[("tidu/functional/ops.py", "tidu.layers.core")]
