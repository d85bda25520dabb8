"""crosscheck's public API: every name in ``__all__`` imports, each is the function or class (never a
module of the same name), and ``import crosscheck`` alone loads no framework."""

import os
import subprocess
import sys
import types

import crosscheck

PUBLIC = {"check", "compare", "assert_close", "Bound", "save_weights", "load_weights", "copy_torch_to_jax",
          "copy_jax_to_torch", "WeightsError", "probe", "gamma", "unit_roundoff", "dot_bound"}  # fmt: skip


def test_the_public_names_are_all_there_and_none_is_a_module():
    assert PUBLIC <= set(crosscheck.__all__)
    for name in crosscheck.__all__:
        value = getattr(crosscheck, name)
        assert not isinstance(value, types.ModuleType), name
        assert callable(value), name
    from crosscheck import WeightsError, assert_close, check, compare, copy_torch_to_jax, load_weights

    assert issubclass(WeightsError, ValueError) and callable(check) and callable(compare)
    assert callable(assert_close) and callable(copy_torch_to_jax) and callable(load_weights)


def test_an_unknown_name_is_an_attribute_error():
    try:
        crosscheck.nonesuch  # noqa: B018
    except AttributeError as error:
        assert "module 'crosscheck' has no attribute 'nonesuch'" in str(error)
    else:
        raise AssertionError("crosscheck.nonesuch did not raise")


def test_import_crosscheck_and_its_numerics_load_no_framework():
    code = (
        "import sys, crosscheck\nfrom crosscheck import compare, Bound\ncompare([1.0], [1.0], bound=1e-3)\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'jax', 'torch', 'flax'}))"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env=os.environ | {"PYTHONPATH": root})  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_no_subpackage_or_module_is_named_like_a_public_name():
    """Importing ``crosscheck.<name>.x`` would set ``crosscheck.<name>`` to the package, shadowing the
    public function of that name (the batch-size probe lives in ``probes/`` for this reason)."""
    import importlib.util

    clashes = [
        name for name in crosscheck.__all__ if importlib.util.find_spec(f"crosscheck.{name}") is not None
    ]
    assert clashes == []
