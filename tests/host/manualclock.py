"""ManualClock: the clock tests drive (tcpip.clock's contract: ticks_ms / ticks_us / sleep_ms,
wrapping at PERIOD = 2**30 on every runtime). MicroPython-compatible: the dual tests use it there."""
from tcpip.clock import PERIOD, ticks_add, ticks_diff

_MASK = PERIOD - 1


class ManualClock:
    """Test clock: time moves only by advance()/advance_us()/set()/sleep_ms().

    Ticks follow the contract: ticks_ms() = ms mod PERIOD, ticks_us() = ms*1000 mod PERIOD
    (plus any advance_us()). The module's ticks_add/ticks_diff apply.
    """

    def __init__(self, start_ms=0):
        self.period = PERIOD
        self.ticks_add = ticks_add
        self.ticks_diff = ticks_diff
        self._us = 0
        self.set(start_ms)

    def ticks_ms(self):
        return (self._us // 1000) & _MASK

    def ticks_us(self):
        return self._us & _MASK

    def set(self, ms):
        """Jump to tick value ms (taken mod PERIOD); may go backwards."""
        self._us = (ms & _MASK) * 1000

    def advance(self, ms):
        if ms < 0:
            raise ValueError("negative advance")
        self._us += ms * 1000

    def advance_us(self, us):
        if us < 0:
            raise ValueError("negative advance")
        self._us += us

    def sleep_ms(self, ms):
        if ms > 0:
            self._us += ms * 1000
