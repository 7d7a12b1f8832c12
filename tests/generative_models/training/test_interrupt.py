"""DeferredInterrupt: the first SIGINT/SIGTERM is a request, the second stops at once."""

from __future__ import annotations

import os
import signal

import pytest

from artifex.generative_models.training.interrupt import DeferredInterrupt


@pytest.mark.parametrize(
    ("signum", "raised"), [(signal.SIGINT, KeyboardInterrupt), (signal.SIGTERM, SystemExit)]
)
def test_first_signal_is_deferred_and_stop_raises_what_it_asked_for(signum, raised) -> None:
    before = signal.getsignal(signum)
    with DeferredInterrupt() as interrupt:
        os.kill(os.getpid(), signum)
        assert interrupt.requested and interrupt.signal_name == signal.Signals(signum).name
        with pytest.raises(raised) as caught:
            interrupt.stop()
    if raised is SystemExit:
        assert caught.value.code == 128 + signal.SIGTERM
    assert signal.getsignal(signum) == before


def test_a_second_signal_stops_at_once() -> None:
    with pytest.raises(SystemExit) as caught, DeferredInterrupt():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGTERM)
    assert caught.value.code == 143
