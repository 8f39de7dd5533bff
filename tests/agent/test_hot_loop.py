"""The hot loops' collector settings hold while any loop of the process runs."""

import gc
import threading

from agent.hot_loop import YOUNG_THRESHOLD, tuned_gc


def test_settings_hold_until_the_last_of_overlapping_loops_ends():
    before = gc.get_threshold()
    first_in, second_done = threading.Event(), threading.Event()
    seen: list[tuple[int, int, int]] = []

    def second_loop() -> None:
        first_in.wait()
        with tuned_gc():
            seen.append(gc.get_threshold())
        second_done.set()

    thread = threading.Thread(target=second_loop)
    thread.start()
    with tuned_gc():
        assert gc.get_threshold() == (YOUNG_THRESHOLD, *before[1:])
        assert gc.get_freeze_count() > 0
        first_in.set()
        second_done.wait(5)
        # the second loop ended first: the first one still runs with the settings
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    thread.join()
    assert seen == [(YOUNG_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
