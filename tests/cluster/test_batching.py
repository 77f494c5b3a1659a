"""The automatic batch size of scan-many: one model per task until every worker has answered, then about
``TARGET_TASK_S`` of scanning per task, never more than a fair share of what remains."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from compsec.cluster.batching import AUTO, MAX_BATCH, TAIL_BATCHES, TARGET_TASK_S, BatchSizer


def _rows(seconds: list[float]) -> list[dict]:
    return [{"seconds": s} for s in seconds]


def test_first_tasks_hold_one_model_each():
    sizer = BatchSizer(AUTO, workers=2)
    assert sizer.next_size(1000) == 1
    sizer.observe(_rows([0.01]))
    assert sizer.next_size(1000) == 1  # one worker has not answered yet
    sizer.observe(_rows([0.01]))
    assert sizer.next_size(1000) == MAX_BATCH  # 10 ms a model: a 2 s task would hold 200


def test_slow_models_stay_one_per_task_and_fast_ones_are_grouped():
    slow, fast = BatchSizer(AUTO, workers=1), BatchSizer(AUTO, workers=1)
    slow.observe(_rows([30.0]))
    fast.observe(_rows([0.1]))
    assert slow.next_size(500) == 1
    assert fast.next_size(500) == int(TARGET_TASK_S / 0.1)


def test_the_tail_is_shared_between_workers():
    sizer = BatchSizer(AUTO, workers=2)
    sizer.observe(_rows([0.001, 0.001]))
    assert sizer.next_size(40) == 40 // (TAIL_BATCHES * 2)
    assert sizer.next_size(3) == 1


def test_skipped_rows_teach_nothing():
    sizer = BatchSizer(AUTO, workers=1)
    sizer.observe([{"skipped": True, "seconds": 0.0}])
    assert sizer.next_size(100) == 1


@given(batch=st.integers(0, 100), workers=st.integers(1, 16), remaining=st.integers(1, 10_000),
       seconds=st.lists(st.floats(0, 1e4, allow_nan=False), max_size=50))
def test_a_batch_holds_between_one_model_and_what_remains(batch, workers, remaining, seconds):
    sizer = BatchSizer(batch, workers)
    sizer.observe(_rows(seconds))
    size = sizer.next_size(remaining)
    assert 1 <= size <= remaining
    if batch:
        assert size == min(batch, remaining)  # a fixed --batch is obeyed
    else:
        assert size <= MAX_BATCH


def test_an_automatic_batch_is_killed_after_one_models_time_a_fixed_one_after_all_of_them():
    from compsec.cluster.config import ScanManyConfig
    from compsec.cluster.driver import HARD_GRACE_S, _hard_limit

    assert _hard_limit(ScanManyConfig(timeout_s=10), 20) == 10 + HARD_GRACE_S
    assert _hard_limit(ScanManyConfig(timeout_s=10, batch=5), 5) == 50 + HARD_GRACE_S
