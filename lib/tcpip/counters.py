"""Per-reason counters: one list of small ints, named by one space-separated string.

    stack.counters.tcp_rx        one counter by name (diagnostics and tests, not per-packet code)
    stack.counters.nonzero()     {name: value} of those above 0; snapshot(): all of them

Code that counts indexes the list (`stack.cnt`, the same list as `stack.counters.v`) with
constants of its own, `_TCP_RX = const(34)`, which the compiler folds away: no attribute name, no
dict and no object per counter on a board. The stack's names are tcpip.counter_names.NAMES,
loaded only when counters are shown or read by name. tests/host/test_counters.py checks every
module's constants against the names (a layer's against its own). A layer made later (DHCP, DNS)
gets a list of its own from extend(), shown with the stack's.
"""
try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

CORE = const(106)  # the stack's counters (tcpip.counter_names.NAMES)


class Counters:
    """Counters(names=None): `v` the values, `names` their names (space-separated, in order;
    None: the stack's, tcpip.counter_names.NAMES, loaded when needed); `more` the Counters of
    layers made later (extend), shown with these."""

    def __init__(self, names=None):
        self.names = names
        self.v = [0] * (CORE if names is None else len(names.split()))
        self.more = ()

    def _names(self):
        names = self.names
        if names is None:
            from tcpip.counter_names import NAMES

            names = self.names = NAMES  # loaded once, on the first look by name
        return names

    def index(self, name):
        """The index of counter `name`, -1 if it has none. Allocates nothing (diagnostic code
        that reads counters by name while it measures must not disturb the heap)."""
        names = self._names()
        n = len(name)
        end = len(names)
        p = names.find(name)
        while p >= 0:
            e = p + n
            if (p == 0 or names.startswith(" ", p - 1)) and (e == end or names.startswith(" ", e)):
                return names.count(" ", 0, p)
            p = names.find(name, p + 1)
        return -1

    def extend(self, names):
        """The counters of a layer made later (DHCP, DNS; names space-separated): the list it
        counts into with its own constants, shown with these by name, nonzero() and snapshot().
        A layer made again gets its earlier list back (its counts go on)."""
        for c in self.more:
            if c.names == names:
                return c.v
        c = Counters(names)
        self.more += (c,)
        return c.v

    def __getattr__(self, name):
        i = self.index(name)
        if i >= 0:
            return self.v[i]
        for c in self.more:
            i = c.index(name)
            if i >= 0:
                return c.v[i]
        raise AttributeError(name)

    def snapshot(self):
        """All counters as a dict (allocates: not for hot paths)."""
        out = {}
        self._into(out, False)
        return out

    def nonzero(self):
        out = {}
        self._into(out, True)
        return out

    def _into(self, out, nonzero):
        v = self.v
        i = 0
        for n in self._names().split():
            if v[i] or not nonzero:
                out[n] = v[i]
            i += 1
        for c in self.more:
            c._into(out, nonzero)
