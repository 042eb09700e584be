"""Benchmarks (not part of a run): the speed grid, tracking overhead, baselines, the plain-Keras yardstick.

make bench
"""
