"""Benchmarks that measure crosscheck itself (cost against model size): see benchmarks/README.md."""
