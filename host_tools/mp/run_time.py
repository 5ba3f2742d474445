# `time` (and `utime`) for scripts under `python -m host_tools run` (run_main.install): the
# runtime's own module, except that sleep(), sleep_ms() and sleep_us() service the tcpip stack
# while they wait (Stack.run_until, which waits in the device's wait()), so a script that loops
# over `check something; time.sleep(1)` keeps answering ARP, ping and TCP meanwhile. On CPython
# it also has MicroPython's sleep_ms, sleep_us, ticks_ms, ticks_us, ticks_add and ticks_diff
# (tcpip.clock's, which wrap at 2**30), so such a script runs there unchanged. Only the thread
# that installed it services the stack; other threads sleep plainly. MicroPython-compatible.
from time import *  # noqa: F401,F403 (the whole real module)
import time as _time

try:
    import _thread
except ImportError:  # a port without threads
    _thread = None

stack = None  # set by run_main.install
_owner = None  # the installing thread's ident

if not hasattr(_time, "ticks_ms"):  # CPython: MicroPython's tick functions
    from tcpip.clock import Clock as _Clock, ticks_add, ticks_diff  # noqa: F401

    _clock = _Clock()
    ticks_ms = _clock.ticks_ms
    ticks_us = _clock.ticks_us

_real_sleep_ms = getattr(_time, "sleep_ms", None)
_real_sleep_us = getattr(_time, "sleep_us", None)


def attach(s):
    """Service stack s in sleeps from now on (from this thread)."""
    global stack, _owner
    stack = s
    _owner = _thread.get_ident() if _thread is not None else None


def _never():
    return False


def _servicing():
    if stack is None:
        return False
    return _thread is None or _thread.get_ident() == _owner


def sleep_ms(ms):
    if ms > 0 and _servicing():
        stack.run_until(_never, int(ms))
    elif _real_sleep_ms is not None:
        _real_sleep_ms(ms)
    elif ms > 0:
        _time.sleep(ms / 1000)


def sleep_us(us):
    if us >= 1000 and _servicing():
        stack.run_until(_never, us // 1000)
        us %= 1000
    if us > 0:
        if _real_sleep_us is not None:
            _real_sleep_us(us)
        else:
            _time.sleep(us / 1000000)


def sleep(seconds):
    if seconds > 0 and _servicing():
        sleep_us(int(seconds * 1000000))
    else:
        _time.sleep(seconds)
