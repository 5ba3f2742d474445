"""tcpip.counters: one list of ints named by one string, indexed by per-module const()s.

The modules that count keep their own `_NAME = const(i)` indexes (the compiler folds them, so a
board carries no attribute, dict entry or object per counter); these tests hold every one of those
constants to the names' order, so a counter can never be counted under another's name.
"""
import importlib
import os
import re

import pytest

from tcpip import counters
from tcpip.counter_names import NAMES
from tcpip.counters import Counters

LIB = os.path.join(os.path.dirname(__file__), "..", "..", "lib", "tcpip")
CONST = re.compile(r"^_([A-Z0-9_]+) = const\((\d+)\)", re.M)
INDEXED = re.compile(r"(?:cnt|\bc)\[_([A-Z0-9_]+)\]")


def _module_names(src):
    """The NAMES string a module defines for its own counters, or None."""
    m = re.search(r"^NAMES = \(\n((?:\s+\"[^\"]*\"\n)+)\)", src, re.M)
    if m is None:
        return None
    return "".join(re.findall(r"\"([^\"]*)\"", m.group(1))).split()


def _names_for(src):
    """The counter names a module's constants index: its own NAMES, else those of the module its
    "# counters: ..." comment names (a driver's bring-up module counts into the driver's)."""
    own = _module_names(src)
    if own is not None:
        return own
    m = re.search(r"^# counters: [^\n]*\((tcpip\.[\w.]+)\.NAMES", src, re.M)
    if m is None:
        return CORE
    return importlib.import_module(m.group(1)).NAMES.split()


def _sources():
    out = []
    for root, _dirs, files in os.walk(LIB):
        for f in sorted(files):
            if f.endswith(".py"):
                p = os.path.join(root, f)
                with open(p) as fh:
                    out.append((os.path.relpath(p, LIB), fh.read()))
    return out


CORE = NAMES.split()


@pytest.mark.parametrize("path,src", _sources(), ids=lambda x: x if isinstance(x, str) and x.endswith(".py") else "")
def test_counter_constants_match_their_names(path, src):
    names = _names_for(src)
    consts = dict((k.lower(), int(v)) for k, v in CONST.findall(src))
    for name, value in consts.items():
        if name in names:
            assert names.index(name) == value, "%s: _%s = const(%d), but it is counter %d" % (
                path, name.upper(), value, names.index(name))
    # every counter the module indexes is one of its names, through its own constant
    for used in INDEXED.findall(src):
        assert used.lower() in names, "%s counts _%s, which is not a counter name" % (path, used)
        assert used.lower() in consts, "%s counts _%s without defining it" % (path, used)


def test_names_are_unique():
    assert len(set(CORE)) == len(CORE)
    assert counters.CORE == len(CORE)  # the list a stack counts into has a place for each
    for path, src in _sources():
        own = _module_names(src)
        if own is not None and path != "counter_names.py":
            assert len(set(own)) == len(own), path
            # a layer's counters are shown with the stack's: no name may be in both
            assert not set(own) & set(CORE), path


def test_by_name_nonzero_snapshot():
    c = Counters("a b c")
    assert c.v == [0, 0, 0]
    c.v[1] += 2
    assert c.b == 2 and c.a == 0
    assert c.nonzero() == {"b": 2}
    assert c.snapshot() == {"a": 0, "b": 2, "c": 0}
    with pytest.raises(AttributeError):
        c.d


def test_extend_shows_a_layer_and_gives_its_list_back():
    c = Counters("a b")
    v = c.extend("x y")
    v[1] += 5
    assert c.y == 5 and c.nonzero() == {"y": 5}
    assert list(c.snapshot()) == ["a", "b", "x", "y"]
    assert c.extend("x y") is v  # the layer made again counts on
    w = c.extend("z")
    w[0] += 1
    assert c.nonzero() == {"y": 5, "z": 1}


def test_the_stack_counts_into_its_counters(stack_factory=None):
    from tcpip.stack import Stack

    class Dev:
        mac = b"\x02\x00\x00\x00\x00\x01"
        mtu = 1500

        def recv_into(self, buf):
            return 0

        def send(self, buf, n):
            pass

    s = Stack(Dev(), addr="192.0.2.2/24")
    assert s.cnt is s.counters.v
    s.input(bytearray(10), 10)  # shorter than an Ethernet header
    assert s.counters.eth_rx == 1 and s.counters.eth_drop_short == 1
    assert s.counters.nonzero() == {"eth_rx": 1, "eth_drop_short": 1}
