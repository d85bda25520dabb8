"""The sharded tests need 8 devices: on CPU the process must start with
``XLA_FLAGS=--xla_force_host_platform_device_count=8`` (tests/test_sharding.py starts it so)."""

from pathlib import Path

import jax
import pytest

DEVICES = 8


def pytest_collection_modifyitems(config, items):
    if jax.device_count() >= DEVICES:
        return
    skip = pytest.mark.skip(
        reason=f"needs {DEVICES} devices; set XLA_FLAGS=--xla_force_host_platform_device_count={DEVICES}"
    )
    here = Path(__file__).parent
    for item in items:  # the hook sees the whole session's items: only this folder's need the devices
        if here in Path(item.path).parents:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def mesh():
    """The (data=2, heads=4) mesh, with XLA propagating shardings (GSPMD)."""
    auto = (jax.sharding.AxisType.Auto,) * 2
    return jax.make_mesh((2, 4), ("data", "heads"), axis_types=auto, devices=jax.devices()[:DEVICES])
