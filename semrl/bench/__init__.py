"""Rate-accuracy benchmarks: BD-rate math, the benchmark runner and its reports.

``semrl.bench.bdrate`` is the BD-rate math; ``semrl.bench.runner`` runs methods at operating
points on ``semrl.bench.items`` (images or clips), through ``semrl.bench.encoding`` (x265 encode,
FFmpeg check) and ``semrl.bench.tasknet`` (scores by ``semrl.fidelity``), cached by
``semrl.bench.cache``; ``semrl.bench.report`` turns the points into the figures and files.
``semrl.bench.bdrate`` imports neither torch nor ultralytics; the others load them at first use.
"""
