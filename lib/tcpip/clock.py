"""Millisecond/microsecond tick clocks that wrap at PERIOD = 2**30 on every runtime.

Compare ticks only with ticks_diff() and move them with ticks_add(); never with < or +.
Clock is real time; tests drive a ManualClock (tests/host/manualclock.py) with the same API.
"""
import sys
import time

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

PERIOD = 1 << 30  # 32-bit MicroPython ports wrap here (a heap int there: use it as a value only)
_MASK = const(0x3FFFFFFF)  # PERIOD - 1 (a small int on 32-bit MicroPython)

_MICROPYTHON = sys.implementation.name == "micropython"


# 32-bit MicroPython ports already wrap at 2**30: use the built-ins (fast, allocation-free; the
# emulation would make 2**30-sized temporaries, which are heap ints there). The 64-bit unix port
# wraps at 2**62 and CPython not at all: emulate PERIOD there so every runtime wraps alike. (The
# tick _MASK is one before 0 where ticks wrap at 2**30.)
_NATIVE = _MICROPYTHON and time.ticks_diff(_MASK, 0) == -1
if _NATIVE:
    ticks_add = time.ticks_add
    ticks_diff = time.ticks_diff
else:
    from tcpip._host import ticks_add, ticks_diff  # noqa: F401 (this module's API)


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
            from tcpip import _host

            self.ticks_ms = _host.masked_ticks_ms
            self.ticks_us = _host.masked_ticks_us
            self.sleep_ms = _host.sleep_ms

