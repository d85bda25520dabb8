"""Ports of real architectures to Flax NNX with their PyTorch references (the hf extra), shipped with the
project so that the README's examples and ``examples.factories`` import from any directory."""
