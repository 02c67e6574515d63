"""The block-list index and the garbage collector: a loaded index is never walked by a full collection."""

from __future__ import annotations

import gc

from stopgate_server.store.blocklist import spare_from_garbage_collection


def test_what_is_alive_after_a_load_isspare_from_garbage_collection() -> None:
    index = {"acme": {f"+336{i:08d}" for i in range(1000)}}
    try:
        spare_from_garbage_collection()
        tracked = set(map(id, gc.get_objects()))
        assert id(index["acme"]) not in tracked
        assert id(index) not in tracked
        later = {"+33612345678"}  # created after the load: collected as usual
        assert id(later) in set(map(id, gc.get_objects()))
    finally:
        gc.unfreeze()
