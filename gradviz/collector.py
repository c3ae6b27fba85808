"""When Python's cyclic garbage collector runs.

A traced graph is millions of small objects that point at each other and all stay
alive while it is shown. The collector would re-scan every one of them at each automatic
collection and free nothing (it cost 40% of a 100,000-term run), so it is paused while a
graph is built and the graph is frozen while it is shown. But whatever is thrown away
must still be freed: a batch's lines, --check's thousands of traces. Pausing it for the
whole process instead made a 4,096-input --check grow to 5.5 GB.
"""

from __future__ import annotations

import contextlib
import gc


@contextlib.contextmanager
def gc_paused():
    """Pause the cyclic garbage collector for a block (nested blocks are fine)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@contextlib.contextmanager
def frozen():
    """Every object that exists now is left out of collections for the block (``gc.freeze``):
    collections inside look only at what the block allocates. After the block they are
    ordinary objects again, freed when no longer used."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
