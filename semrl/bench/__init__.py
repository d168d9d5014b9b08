"""Rate-accuracy benchmarks: BD-rate math, QP-offset policies and the benchmark runner.

``semrl.bench.bdrate`` and ``semrl.bench.policy`` import neither torch nor ultralytics;
``semrl.bench.runner`` loads them at first use.
"""
