"""Start-up's objects are frozen out of the collector's full passes (startup_heap.py)."""
import gc

from startup_heap import freeze_startup_heap


def test_what_start_up_built_is_frozen_and_its_garbage_is_not():
    gc.unfreeze()
    try:
        class Cycle:
            pass

        garbage = Cycle()
        garbage.me = garbage  # a reference cycle only a collection frees
        kept = [object() for _ in range(1000)]
        del garbage
        frozen = freeze_startup_heap()
        assert frozen >= len(kept) and gc.get_freeze_count() == frozen
        assert not [o for o in gc.get_objects() if type(o) is Cycle]  # collected before the freeze, not frozen
    finally:
        gc.unfreeze()
