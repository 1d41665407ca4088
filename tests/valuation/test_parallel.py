"""A large batch is split over forked processes and gives exactly what one process gives."""

from __future__ import annotations

import datetime

import pandas as pd
import pytest

from opendata.models import Parcel
from valuation import engine, parallel
from valuation.locate import subject_from_capakey


def _double(rows: pd.DataFrame, work: list[int], threads: int) -> list[tuple[int, int]]:
    return [(int(v) * 2, w) for v, w in zip(rows["v"], work, strict=True)]


def _fail_in_second_half(rows: pd.DataFrame, work: list[int], threads: int) -> list[int]:
    if work and work[0] >= 50:
        raise ValueError("bad row in the second half")
    return work


def test_parts_come_back_in_order(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 10)
    rows = pd.DataFrame({"v": range(101)})
    assert parallel.workers_for(len(rows)) >= 2 or pytest.skip("one core only")
    out = parallel.parallel_chunks(_double, rows, list(range(101)))
    assert out == [(2 * i, i) for i in range(101)]


def test_a_failing_part_fails_the_whole_call(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 10)
    if parallel.workers_for(100) < 2:
        pytest.skip("one core only")
    with pytest.raises(RuntimeError, match="bad row in the second half"):
        parallel.parallel_chunks(_fail_in_second_half, pd.DataFrame({"v": range(100)}), list(range(100)))


@pytest.mark.django_db
def test_forked_batch_equals_one_process(demo_model, models_in, monkeypatch) -> None:
    keys = list(
        Parcel.objects.filter(source="demo", buildings__storeys__isnull=False)
        .values_list("capakey", flat=True)
        .distinct()[:60]
    )
    targets = [
        engine.Target(subject=subject_from_capakey(key), valuation_date=datetime.date(2026, 11, 1))
        for key in keys
    ]
    monkeypatch.setattr(parallel, "workers_for", lambda n: 1)
    _, alone = engine.value_targets(targets)
    monkeypatch.setattr(parallel, "workers_for", lambda n: 2)
    _, forked = engine.value_targets(targets)
    assert sum(isinstance(r, dict) for r in alone) >= 50

    def plain(results: list) -> list:
        return [r if isinstance(r, dict) else str(r) for r in results]

    assert plain(forked) == plain(alone)


def test_parts_stream_with_a_smaller_parent_share(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 10)
    monkeypatch.setattr(parallel, "PART_ROWS", 7)
    rows = pd.DataFrame({"v": range(100)})
    assert parallel.workers_for(len(rows)) == 2 or pytest.skip("needs exactly two cores")
    parts = list(parallel.parallel_parts(_double, rows, list(range(100)), caller_load=0.2))
    # The parent values (1 - 0.2) / 2 = 40% of the rows, the child the rest, in parts of 7 at most;
    # the parent's parts come first among its own, interleaved with the child's received meanwhile.
    assert parts[0][0] == 0
    offsets = [offset for offset, _ in parts]
    assert [o for o in offsets if o < 40] == list(range(0, 40, 7))
    assert [o for o in offsets if o >= 40] == list(range(40, 100, 7))
    assert all(len(part) <= 7 for _, part in parts)
    assert [r for _, part in sorted(parts) for r in part] == [(2 * i, i) for i in range(100)]


def test_a_caller_that_stops_early_ends_the_workers(monkeypatch) -> None:
    monkeypatch.setattr(parallel, "MIN_ROWS_PER_PROCESS", 10)
    monkeypatch.setattr(parallel, "PART_ROWS", 5)
    rows = pd.DataFrame({"v": range(100)})
    assert parallel.workers_for(len(rows)) >= 2 or pytest.skip("one core only")
    started = []
    real_fork = parallel.os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            started.append(pid)
        return pid

    monkeypatch.setattr(parallel.os, "fork", fork)
    stream = parallel.parallel_parts(_double, rows, list(range(100)))
    next(stream)
    stream.close()  # e.g. the caller's database write failed
    assert started
    for pid in started:  # reaped: no such child any more
        with pytest.raises(ChildProcessError):
            parallel.os.waitpid(pid, 0)
