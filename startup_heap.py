"""What start-up built lives as long as the process: kept out of the garbage collector's full passes.

CPython's full (generation 2) collection walks every tracked object. In a serving process most of them are
start-up's (modules, the app, the providers' tables) and never die, so each full pass re-walks them while the
event loop waits: with 250 voice streams on one core the loop stalled up to 110 ms, each stall a full collection
(bench/bench_pipeline_ws.py, README). gc.freeze() moves them to a permanent generation the collector skips.
"""
from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect start-up's garbage, then freeze what is left; returns how many objects were frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
