"""The suite's own set-up: one JAX compilation cache for the whole run (tests/conftest.py)."""

import os
import subprocess
import sys

import jax


def test_every_worker_compiles_into_the_runs_one_cache():
    folder = os.environ["JAX_COMPILATION_CACHE_DIR"]
    assert jax.config.jax_compilation_cache_dir == folder and os.path.isdir(folder)


def test_a_process_a_test_starts_finds_the_same_cache():
    code = "import jax; print(jax.config.jax_compilation_cache_dir)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == os.environ["JAX_COMPILATION_CACHE_DIR"]
