"""The cyclic garbage collector, paused around bulk work (docs/scaling.md#billing)."""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Run the block with the cyclic garbage collector off.

    Bulk work — a usage batch parsed into ~100,000 objects, a billing chunk holding thousands of
    contracts and hundreds of thousands of usage intervals — makes objects that reference counting
    frees on its own. Meanwhile the collector, triggered by the allocations, walks every live
    object again and again: a quarter of a billing run's time. The collector is process-wide: a
    caller (or another thread) that turned it off first is left to turn it back on.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
