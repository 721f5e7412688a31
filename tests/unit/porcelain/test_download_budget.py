"""The byte budget of a download's packed objects (``_Budget`` in ama.porcelain.download):
what waits, what goes on, and that nothing goes on once the download failed."""

from __future__ import annotations

import threading

import pytest

from ama.porcelain.download import _Budget, _Closed


def _taking(budget: _Budget, n: int) -> tuple[threading.Thread, list[object]]:
    outcome: list[object] = []

    def take() -> None:
        try:
            budget.take(n)
            outcome.append("took")
        except _Closed as e:
            outcome.append(e)

    thread = threading.Thread(target=take)
    thread.start()
    return thread, outcome


def test_a_take_waits_for_room_and_any_amount_fits_an_empty_budget() -> None:
    budget = _Budget(10)
    budget.take(25)  # more than the limit, and nothing held: it goes on
    thread, outcome = _taking(budget, 4)
    thread.join(0.2)
    assert thread.is_alive() and outcome == []  # 25 held: 4 more must wait
    budget.give(25)
    thread.join(5)
    assert outcome == ["took"]
    budget.take(6)  # 4 + 6 fit the limit of 10
    thread, outcome = _taking(budget, 1)
    thread.join(0.2)
    assert thread.is_alive()
    budget.give(1)
    thread.join(5)
    assert outcome == ["took"]


def test_a_closed_budget_lets_no_waiting_fetch_go_on() -> None:
    budget = _Budget(10)
    budget.take(10)
    waiting = [_taking(budget, 5) for _ in range(3)]
    budget.close()
    for thread, outcome in waiting:
        thread.join(5)
        assert not thread.is_alive() and isinstance(outcome[0], _Closed)
    with pytest.raises(_Closed):
        budget.take(0)
