"""What only hosts run: the emulated 2**30 tick clock (CPython, and MicroPython ports whose own
ticks wrap elsewhere, such as the 64-bit unix port), CPython's OSError texts for tcpip.socket, and
CPython's properties for a Tcb's absolute sequence numbers. A board (32-bit MicroPython) never
imports this module, so none of it takes heap there.
"""
import sys
import time

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_MASK = const(0x3FFFFFFF)  # tcpip.clock.PERIOD - 1
_HALF = const(1 << 29)  # PERIOD // 2
_MICROPYTHON = sys.implementation.name == "micropython"


# -- ticks that wrap at 2**30 (tcpip.clock) --------------------------------------------------------
def ticks_add(t, delta):
    """(t + delta) mod PERIOD; like MicroPython, |delta| must be < PERIOD/2."""
    if not -_HALF < delta < _HALF:
        raise OverflowError("ticks interval overflow")
    return (t + delta) & _MASK


def ticks_diff(a, b):
    """Signed a - b in [-PERIOD/2, PERIOD/2)."""
    return ((a - b + _HALF) & _MASK) - _HALF


if _MICROPYTHON:
    # MicroPython's ticks are ints, which the stubs make an opaque type (to steer code to
    # ticks_diff/ticks_add): this port's own wrap is masked off here
    def masked_ticks_ms():
        return time.ticks_ms() & _MASK  # pyright: ignore[reportOperatorIssue] (ticks are ints)

    def masked_ticks_us():
        return time.ticks_us() & _MASK  # pyright: ignore[reportOperatorIssue] (ticks are ints)

    sleep_ms = time.sleep_ms
else:
    def masked_ticks_ms():
        return (time.monotonic_ns() // 1000000) & _MASK

    def masked_ticks_us():
        return (time.monotonic_ns() // 1000) & _MASK

    def sleep_ms(ms):
        if ms > 0:
            time.sleep(ms / 1000)


# -- tcpip.socket on CPython -----------------------------------------------------------------------
_EAI_TEXT = {-2: "Name or service not known", -6: "ai_family not supported",
             -7: "ai_socktype not supported", -8: "Servname not supported for ai_socktype"}


def oserror(code):
    """OSError(code, text): e.errno is set on CPython too, and CPython picks the subclass
    (BlockingIOError for EAGAIN/EINPROGRESS, TimeoutError, ConnectionResetError ...)."""
    import os

    return OSError(code, _EAI_TEXT.get(code) or os.strerror(code))


# -- tcpip.tcp.Tcb on CPython ----------------------------------------------------------------------
def absolute_properties(cls):
    """snd_una, snd_nxt, snd_max and rcv_nxt as properties (built on demand from the relative
    values; MicroPython uses Tcb.__getattr__ instead, as a class with a property makes every
    attribute store to its instances slower there, while __getattr__ stops CPython 3.11+
    specializing attribute access). snd_nxt can be set (tests)."""
    from tcpip.wire.tcp import seq_diff

    def set_snd_nxt(self, v):
        self.s_nxt = seq_diff(v, self.s_bhi << 16 | self.s_blo)

    cls.snd_una = property(lambda self: self._absolute("snd_una"))
    cls.snd_nxt = property(lambda self: self._absolute("snd_nxt"), set_snd_nxt)
    cls.snd_max = property(lambda self: self._absolute("snd_max"))
    cls.rcv_nxt = property(lambda self: self._absolute("rcv_nxt"))
