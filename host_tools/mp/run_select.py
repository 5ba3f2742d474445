# `select` (and `uselect`) for scripts under `python -m host_tools run` (run_main.install): the
# runtime's own module, except that poll() services the tcpip stack for as long as it waits, even
# when no tcpip socket is registered. MicroPython's asyncio waits in select.poll (its IOQueue
# makes one when asyncio is imported), so with this module installed first asyncio keeps the
# stack running while every task sleeps (asyncio.sleep), not only while one awaits a socket.
#
# MicroPython: a real select.poll with one more object registered, a pump whose poll ioctl runs
# stack.poll() and reports nothing (select.poll asks such objects about once a millisecond while
# it waits; tcpip sockets are polled the same way). It is never in a result.
# CPython: select.poll cannot see tcpip sockets (no file descriptor), so poll() is
# tcpip.poller.Poll for them, and real file descriptors (ints, or objects with fileno()) are
# polled beside them with the stack's device (the TAP's descriptor) in one select.poll, so either
# wakes the wait. Everything else in the module is the real one (select.select, epoll, ...).
# MicroPython-compatible.
import sys

from select import *  # noqa: F401,F403 (the whole real module)
import select as _select

POLLIN = _select.POLLIN
stack = None  # set by run_main.install


def attach(s):
    global stack
    stack = s


if sys.implementation.name == "micropython":
    import io

    class _Pump(io.IOBase):
        def ioctl(self, req, arg):
            if req != 3:  # MP_STREAM_POLL only; -1 also to GET_FILENO: no file descriptor
                return -1
            if stack is not None:
                stack.poll()
            return 0

    _pump = _Pump()

    class poll:  # noqa: N801 (select.poll's name)
        def __init__(self):
            self._p = _select.poll()
            self._p.register(_pump, POLLIN)

        def register(self, obj, eventmask=POLLIN | _select.POLLOUT):
            self._p.register(obj, eventmask)

        def modify(self, obj, eventmask):
            self._p.modify(obj, eventmask)

        def unregister(self, obj):
            self._p.unregister(obj)

        def poll(self, timeout=-1):
            return [e for e in self._p.poll(timeout) if e[0] is not _pump]

        def ipoll(self, timeout=-1, flags=0):
            for e in self._p.ipoll(timeout, flags):
                if e[0] is not _pump:
                    yield e

else:
    from tcpip.clock import ticks_diff as _ticks_diff
    from tcpip.poller import Poll as _TcpipPoll

    _IDLE_MS = 1000

    def _fd(obj):
        if isinstance(obj, int):
            return obj
        f = getattr(obj, "fileno", None)
        if f is None or getattr(obj, "ioctl", None) is not None:
            return None  # a tcpip socket or another MicroPython-style pollable: tcpip.poller's
        try:
            return f()
        except (OSError, ValueError):
            return None

    class poll:  # noqa: N801 (select.poll's name)
        def __init__(self):
            self._tcpip = _TcpipPoll(stack)
            self._fds = _select.poll()
            self._by_fd = {}  # fd -> (registered object, mask)
            self._dev_fd = None
            dev = getattr(stack, "device", None) if stack is not None else None
            f = getattr(dev, "fileno", None)
            if f is not None:
                self._dev_fd = f()
                self._fds.register(self._dev_fd, _select.POLLIN)

        def register(self, obj, eventmask=POLLIN | _select.POLLOUT):
            fd = _fd(obj)
            if fd is None:
                self._tcpip.register(obj, eventmask)
            else:
                self._by_fd[fd] = (obj, eventmask)
                self._fds.register(fd, eventmask)

        def modify(self, obj, eventmask):
            fd = _fd(obj)
            if fd is None:
                self._tcpip.modify(obj, eventmask)
            elif fd in self._by_fd:
                self._by_fd[fd] = (obj, eventmask)
                self._fds.modify(fd, eventmask)
            else:
                raise OSError(2)  # ENOENT, as select.poll

        def unregister(self, obj):
            fd = _fd(obj)
            if fd is None:
                self._tcpip.unregister(obj)
            elif self._by_fd.pop(fd, None) is not None:
                self._fds.unregister(fd)

        def poll(self, timeout=-1):
            return self._wait(timeout, 0)

        def ipoll(self, timeout=-1, flags=0):
            return iter(self._wait(timeout, flags))

        def _wait(self, timeout, flags):
            if timeout is None or timeout < 0:
                timeout = -1
            clock = stack.clock if stack is not None else None
            start = clock.ticks_ms() if clock is not None else 0
            while True:
                out = self._tcpip.poll(0) if not flags & 1 else list(self._tcpip.ipoll(0, 1))
                for fd, ev in self._fds.poll(0):
                    if fd == self._dev_fd or fd not in self._by_fd:
                        continue
                    obj, mask = self._by_fd[fd]
                    out.append((obj, ev))
                    if flags & 1:  # one-shot, as MicroPython's ipoll
                        self._by_fd[fd] = (obj, 0)
                        self._fds.modify(fd, 0)
                if out or timeout == 0:
                    return out
                left = _IDLE_MS
                if clock is not None:
                    if timeout > 0:
                        left = timeout - _ticks_diff(clock.ticks_ms(), start)
                        if left <= 0:
                            return out
                    t = stack.next_timer_ms()
                    if t < left:
                        left = t
                    if self._dev_fd is None and left > 1:
                        left = 1  # no descriptor to wake us for frames: 1 ms steps
                elif timeout > 0:
                    left = timeout  # no stack: a plain poll
                self._fds.poll(max(0, left))
