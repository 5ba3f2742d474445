"""poll(): select.poll over tcpip sockets, driving the stack while it waits.

    from tcpip.poller import poll, POLLIN, POLLOUT
    p = poll()
    p.register(s, POLLIN)
    for obj, ev in p.poll(1000):     # services the stack until s is readable or 1 s passed
        ...

This is the polling loop for CPython (where select.poll cannot see a tcpip socket) and it works
on MicroPython too (where select.poll also works, through the socket's ioctl). While waiting it
calls stack.poll() and then sleeps in the device's wait(ms) (or 1 ms steps of the stack's clock
when the device has none), never longer than the stack's next timer.

Objects: tcpip sockets, or anything with MicroPython's ioctl(3, flags) poll protocol. Like
MicroPython's select.poll: POLLERR and POLLHUP are reported whether asked for or not, a closed
socket reports POLLNVAL, unregister() of an unknown object is ignored, and ipoll(timeout, 1)
is one-shot (an object that was reported is not reported again until modify()).
"""
from tcpip.clock import Clock, ticks_diff

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

POLLIN = const(0x01)
POLLOUT = const(0x04)
POLLERR = const(0x08)
POLLHUP = const(0x10)
POLLNVAL = const(0x20)

_MP_STREAM_POLL = const(3)
_IDLE_MS = const(1000)     # longest single wait with no timer due and no timeout
_MULTI_STACK_MS = const(5)  # wait slice when the objects live on several stacks


class Poll:
    """select.poll() for tcpip sockets: register/modify/unregister/poll(ms)/ipoll(ms, flags)."""

    def __init__(self, stack=None):
        self._objs = []   # registered objects
        self._masks = []  # their event masks (one-shot sets 0 after an event)
        self._stack = stack

    def register(self, obj, eventmask=POLLIN | POLLOUT):
        for i in range(len(self._objs)):
            if self._objs[i] is obj:
                self._masks[i] = eventmask
                return
        self._objs.append(obj)
        self._masks.append(eventmask)

    def modify(self, obj, eventmask):
        for i in range(len(self._objs)):
            if self._objs[i] is obj:
                self._masks[i] = eventmask
                return
        raise OSError(2)  # ENOENT, as MicroPython's select.poll

    def unregister(self, obj):
        for i in range(len(self._objs)):
            if self._objs[i] is obj:
                self._objs.pop(i)
                self._masks.pop(i)
                return

    def poll(self, timeout=-1):
        """[(obj, events), ...] of the ready objects, waiting up to timeout ms (-1/None: no limit;
        0: service the stack once and look)."""
        out = []
        self._wait(timeout, out, False)
        return out

    def ipoll(self, timeout=-1, flags=0):
        """Like poll(), as an iterator; flags & 1: one-shot (clear the mask of what is reported)."""
        out = []
        self._wait(timeout, out, flags & 1)
        return iter(out)

    # -- internals -------------------------------------------------------------------------------
    def _stacks(self):
        found = []
        if self._stack is not None:
            found.append(self._stack)
        for o in self._objs:
            s = getattr(o, "stack", None)
            if s is not None and s not in found:
                found.append(s)
        if not found:
            from tcpip import socket as _socket
            if _socket._default_stack is not None:
                found.append(_socket._default_stack)
        return found

    def _collect(self, out, oneshot):
        for i in range(len(self._objs)):
            o = self._objs[i]
            mask = self._masks[i]
            r = _readiness(o, mask)
            if r:
                out.append((o, r))
                if oneshot:
                    self._masks[i] = 0
        return len(out)

    def _wait(self, timeout, out, oneshot):
        if timeout is None or timeout < 0:
            timeout = -1
        stacks = self._stacks()
        clock = stacks[0].clock if stacks else Clock()
        wait = None
        if len(stacks) == 1:
            wait = getattr(stacks[0].device, "wait", None)
        start = clock.ticks_ms()
        while True:
            for s in stacks:
                s.poll()
            if self._collect(out, oneshot) or timeout == 0:
                return
            left = _IDLE_MS
            if timeout > 0:
                left = timeout - ticks_diff(clock.ticks_ms(), start)
                if left <= 0:
                    return
            for s in stacks:
                t = s.next_timer_ms()
                if t < left:
                    left = t
            if len(stacks) > 1 and left > _MULTI_STACK_MS:
                left = _MULTI_STACK_MS
            if wait is not None:
                wait(left)
            elif left > 0:
                clock.sleep_ms(1)


def _readiness(obj, mask):
    f = getattr(obj, "_readiness", None)
    if f is not None:
        return f(mask)  # a tcpip socket: its flags without servicing the stack again
    return obj.ioctl(_MP_STREAM_POLL, mask)


def poll(stack=None):
    """A new Poll (select.poll()). stack: serviced even with nothing registered (default: the
    stacks of the registered sockets, else tcpip.socket's default stack)."""
    return Poll(stack)
