"""What a progress bar hears from work run again whole after PostgreSQL undid it."""

from __future__ import annotations

from sepa_engine.progress import Rerunnable


class Heard:
    def __init__(self) -> None:
        self.totals: list[int | None] = []
        self.done = 0

    def total(self, count: int | None) -> None:
        self.totals.append(count)

    def advance(self, count: int = 1) -> None:
        self.done += count


def test_a_run_again_moves_the_bar_only_past_where_the_undone_run_stopped() -> None:
    heard = Heard()
    progress = Rerunnable(heard)
    first = progress.run()
    first.total(10)
    first.advance(4)
    first.advance(2)  # undone here, at 6 of 10
    again = progress.run()
    again.total(10)
    again.advance(4)
    assert heard.done == 6  # the bar stays where it was, rather than going to 10 of 10
    again.advance(4)
    again.advance(2)
    assert (heard.done, heard.totals) == (10, [10, 10])  # done once, never past the total


def test_a_single_run_is_heard_as_it_goes() -> None:
    heard = Heard()
    run = Rerunnable(heard).run()
    for _ in range(3):
        run.advance()
    assert heard.done == 3
