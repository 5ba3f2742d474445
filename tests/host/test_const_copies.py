"""Modules that keep their own copies of another module's constants (const() folds per module, so
a name used in two modules is defined in both) must agree with it. CPython only (reads sources).

  tcpip.drivers.w5500       the registers its per-frame paths use, of w5500_init's whole map
  tcpip.socket              the indexes of Socket._opts it reads, of tcpip.sockopt's
  tcpip.listener            the same
  tcpip.tcp_listen          where the TCP header goes in the transmit buffer, of tcpip.tcp_out's
"""
import os
import re

import pytest

LIB = os.path.join(os.path.dirname(__file__), "..", "..", "lib", "tcpip")
PAIRS = [("drivers/w5500.py", "drivers/w5500_init.py", 10), ("socket.py", "sockopt.py", 5),
         ("listener.py", "sockopt.py", 3), ("tcp_listen.py", "tcp_out.py", 1)]


def consts(path):
    with open(os.path.join(LIB, path)) as fh:
        return dict(re.findall(r"^(_\w+) = const\(([^)]*)\)", fh.read(), re.M))


@pytest.mark.parametrize("copy,source,least", PAIRS, ids=[p[0] for p in PAIRS])
def test_copies_agree_with_their_source(copy, source, least):
    a = consts(copy)
    b = consts(source)
    shared = set(a) & set(b)
    assert len(shared) >= least, shared
    for k in shared:
        assert eval(a[k]) == eval(b[k]), (k, a[k], b[k])
