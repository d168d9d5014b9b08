"""Semantic maps: per-pixel task importance from YOLO networks, pooled to the CTU grid.

Importing this package does not import torch or ultralytics; the networks load on first use.
"""

from semrl.codec import pool_map
from semrl.semantics.config import ClassWeights, MapConfig, load_class_weights
from semrl.semantics.maps import TASKS, SemanticMap, Task

__all__ = [
    "TASKS",
    "ClassWeights",
    "MapConfig",
    "SemanticMap",
    "Task",
    "load_class_weights",
    "pool_map",
]
