"""Millisecond/microsecond tick clocks that wrap at PERIOD = 2**30 on every runtime.

Compare ticks only with ticks_diff() and move them with ticks_add(); never with < or +.
Clock is real time; tests drive a ManualClock (tests/host/manualclock.py) with the same API.
"""
import sys
import time

try:
    from micropython import const
except ImportError:
    def const(x):
        return x

PERIOD = 1 << 30  # 32-bit MicroPython ports wrap here (a heap int there: use it as a value only)
_MASK = const(0x3FFFFFFF)  # PERIOD - 1 (a small int on 32-bit MicroPython)
_HALF = const(1 << 29)  # PERIOD // 2

_MICROPYTHON = sys.implementation.name == "micropython"


def _ticks_add(t, delta):
    """(t + delta) mod PERIOD; like MicroPython, |delta| must be < PERIOD/2."""
    if not -_HALF < delta < _HALF:
        raise OverflowError("ticks interval overflow")
    return (t + delta) & _MASK


def _ticks_diff(a, b):
    """Signed a - b in [-PERIOD/2, PERIOD/2)."""
    return ((a - b + _HALF) & _MASK) - _HALF


# 32-bit MicroPython ports already wrap at 2**30: use the built-ins (fast, allocation-free; the
# emulation would make 2**30-sized temporaries, which are heap ints there). The 64-bit unix port
# wraps at 2**62 and CPython not at all: emulate PERIOD there so every runtime wraps alike.
_NATIVE = _MICROPYTHON and time.ticks_add(0, -1) == _MASK
if _NATIVE:
    ticks_add = time.ticks_add
    ticks_diff = time.ticks_diff
else:
    ticks_add = _ticks_add
    ticks_diff = _ticks_diff


class Clock:
    """Real time. Attributes (not methods) so a call costs one lookup on the hot path.

    On 32-bit MicroPython ports these are time.ticks_ms/ticks_us/ticks_add/ticks_diff/sleep_ms.
    The 64-bit unix port's own ticks wrap at 2**62 (time.ticks_add(0, -1) == 2**62 - 1): its
    ticks are masked to PERIOD here and compared with the emulated functions, so one tick value
    can go to either this clock's or the module's ticks_add/ticks_diff and the wrap is the same
    as on rp2. CPython derives ticks from time.monotonic_ns() the same way.
    """

    def __init__(self):
        self.period = PERIOD
        self.ticks_add = ticks_add
        self.ticks_diff = ticks_diff
        if _NATIVE:
            self.ticks_ms = time.ticks_ms
            self.ticks_us = time.ticks_us
            self.sleep_ms = time.sleep_ms
        else:
            self.ticks_ms = _masked_ticks_ms
            self.ticks_us = _masked_ticks_us
            self.sleep_ms = _sleep_ms


if _MICROPYTHON:
    def _masked_ticks_ms():
        return time.ticks_ms() & _MASK

    def _masked_ticks_us():
        return time.ticks_us() & _MASK

    _sleep_ms = time.sleep_ms
else:
    def _masked_ticks_ms():
        return (time.monotonic_ns() // 1000000) & _MASK

    def _masked_ticks_us():
        return (time.monotonic_ns() // 1000) & _MASK

    def _sleep_ms(ms):
        if ms > 0:
            time.sleep(ms / 1000)
