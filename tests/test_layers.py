"""The tree is the diagram: crosscheck's layers import only the layers above them, nothing imports in a
cycle, imports sit at the top of modules, and ``import torch_ref`` loads no JAX.

The layers, top to bottom: ``atomic`` (the standard library only), ``numerics`` (NumPy only),
``weights``, ``runtime``, ``porting`` (what a user's port meets), ``probes``, ``suite`` (the seed
cases of ``crosscheck run``), ``reporting``, ``training``, ``study``, ``cli``. ``layer_rules`` is
imported by jaxlin and torch_ref and imports nothing of theirs.
"""

from __future__ import annotations

import ast
import os
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
LAYERS = (
    "atomic",
    "numerics",
    "weights",
    "runtime",
    "porting",
    "probes",
    "suite",
    "reporting",
    "training",
    "study",
    "cli",
)
# Imports inside functions, each for a reason: heavy frameworks in command handlers (a fast --help),
# and optional extras that only some callers have.
DEFERRED = {
    ("crosscheck.cli.run", "command"),
    ("crosscheck.cli.batch_probe", "command"),
    ("crosscheck.cli.study", "command"),
    ("crosscheck.cli.locate", "command"),
    ("crosscheck.cli.train", "command"),
    ("crosscheck.cli.common", "jax_device_or_exit"),
    ("crosscheck.cli.common", "session"),
    ("crosscheck.weights.arrays", "_torch"),
    ("crosscheck.study.plots", "_pyplot"),
    ("crosscheck.training.plots", "pyplot"),
}


def _modules(package: str) -> dict[str, pathlib.Path]:
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


MODULES = _modules("crosscheck")


def _imports(module: str, path: pathlib.Path) -> list[tuple[str, str | None]]:
    """``(imported module, enclosing function or None)`` for every import statement of a module."""
    tree = ast.parse(path.read_text())
    found = []

    def visit(node, function):
        for child in ast.iter_child_nodes(node):
            inside = child.name if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) else function
            if isinstance(child, ast.Import):
                found.extend((alias.name, function) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
                    base = ".".join(
                        package.split(".")[: len(package.split(".")) - child.level + 1] + [base]
                    ).strip(".")
                for alias in child.names:
                    target = f"{base}.{alias.name}"
                    found.append((target if target in MODULES else base, function))
            visit(child, inside)

    visit(tree, None)
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_crosscheck_module_belongs_to_a_layer():
    loose = [m for m in MODULES if _layer(m) is None and m not in ("crosscheck", "crosscheck.__main__")]
    assert loose == []


def test_each_layer_imports_only_the_layers_above_it():
    upward = []
    for module, path in MODULES.items():
        here = _layer(module)
        for target, _ in _imports(module, path):
            there = _layer(target) if target.startswith("crosscheck.") else None
            if here is not None and there is not None and there > here:
                upward.append(f"{module} ({LAYERS[here]}) imports {target} ({LAYERS[there]})")
    assert upward == []


def test_no_import_cycle():
    graph = {m: {t for t, _ in _imports(m, p) if t in MODULES and t != m} for m, p in MODULES.items()}
    cycles, state = [], {}

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(stack[stack.index(target) :] + [target]))
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert cycles == []


def test_imports_sit_at_the_top_but_for_the_listed_deferred_ones():
    deferred = {(m, f) for m, p in MODULES.items() for _, f in _imports(m, p) if f is not None}
    assert deferred == DEFERRED


@pytest.mark.parametrize("layer", ["atomic", "numerics"])
def test_the_base_layers_import_no_framework(layer):
    allowed = {"atomic": set(), "numerics": {"numpy", "ml_dtypes"}}[layer]
    for module, path in MODULES.items():
        if _layer(module) == LAYERS.index(layer):
            external = {t.split(".")[0] for t, _ in _imports(module, path) if not t.startswith("crosscheck")}
            assert external - set(sys.stdlib_module_names) <= allowed, module


@pytest.mark.parametrize("package", ["layer_rules", "jaxlin", "torch_ref"])
def test_the_module_packages_do_not_import_crosscheck_and_rules_import_no_framework(package):
    for module, path in _modules(package).items():
        roots = {t.split(".")[0] for t, _ in _imports(module, path)}
        assert "crosscheck" not in roots, module
        if package == "layer_rules":
            assert roots - set(sys.stdlib_module_names) <= {"layer_rules"}, module


def test_import_torch_ref_loads_no_jax():
    code = "import sys, torch_ref; print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'jaxlib', 'flax')))"
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_help_loads_neither_jax_nor_torch():
    code = (
        "import sys\nfrom crosscheck.cli import main\ntry:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'torch', 'flax'}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"
