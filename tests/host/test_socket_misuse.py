# dual: cpython micropython
# API misuse on tcpip.socket (issue 8): calls after close(), connect to port 0, and buffers that
# are not what they seem (immutable objects handed to recv_into/readinto, buffers whose len() is
# not their size in bytes). Runs on CPython and on the MicroPython unix port, where the viper copy
# would write into a bytes object without these checks.
import sys

from segment import SYN
from tcpip import errors
from tcpip.socket import SHUT_WR, Socket
from segment import Harness
from test_socket_api import PEER, connected, raises

MICROPYTHON = sys.implementation.name == "micropython"


# -- after close(): EBADF everywhere (item 10) ------------------------------------------------------
def test_bind_and_names_after_close_are_ebadf():
    h = Harness()
    s = Socket(h.stack)
    s.close()
    raises(errors.EBADF, s.bind, ("0.0.0.0", 0))
    raises(errors.EBADF, s.bind, ("192.0.2.2", 4000))
    raises(errors.EBADF, s.getsockname)
    raises(errors.EBADF, s.getpeername)
    assert s.connect_ex(PEER) == errors.EBADF
    assert h.stack.tcp.bound == []  # nothing was bound on the way


def test_bind_after_close_of_a_connected_socket_is_ebadf():
    h, s, peer = connected()
    s.close()
    raises(errors.EBADF, s.bind, ("0.0.0.0", 0))
    raises(errors.EBADF, s.getsockname)
    raises(errors.EBADF, s.getpeername)
    raises(errors.EBADF, s.shutdown, SHUT_WR)


def test_bind_twice_is_still_einval():
    h = Harness()
    s = Socket(h.stack)
    s.bind(("0.0.0.0", 0))
    raises(errors.EINVAL, s.bind, ("0.0.0.0", 0))
    s.close()
    raises(errors.EBADF, s.bind, ("0.0.0.0", 0))


# -- connect to port 0 (item 8) --------------------------------------------------------------------
def _no_connection(h, s):
    assert s.tcb is None and s.state == 0  # UNCONNECTED
    assert h.stack.tcp.tcbs == []
    h.advance(3000)
    h.expect_nothing()  # no SYN, now or later


def test_connect_to_port_zero_is_refused_at_once():
    h = Harness()
    s = Socket(h.stack)
    raises(errors.EADDRNOTAVAIL, s.connect, ("192.0.2.1", 0))
    _no_connection(h, s)
    # the socket is still good for a real connect
    s.setblocking(False)
    raises(errors.EINPROGRESS, s.connect, PEER)
    h.expect_tcp(SYN)


def test_connect_to_port_zero_non_blocking_and_connect_ex():
    h = Harness()
    s = Socket(h.stack)
    s.setblocking(False)
    raises(errors.EADDRNOTAVAIL, s.connect, ("192.0.2.1", 0))
    _no_connection(h, s)
    assert s.connect_ex(("192.0.2.1", 0)) == errors.EADDRNOTAVAIL
    s.settimeout(2)
    assert s.connect_ex(("192.0.2.1", 0)) == errors.EADDRNOTAVAIL
    _no_connection(h, s)


def test_connect_to_port_zero_keeps_a_bound_port():
    h = Harness()
    s = Socket(h.stack)
    s.bind(("0.0.0.0", 40000))
    raises(errors.EADDRNOTAVAIL, s.connect, ("192.0.2.1", 0))
    assert s.getsockname() == ("0.0.0.0", 40000)
    s.setblocking(False)
    raises(errors.EINPROGRESS, s.connect, PEER)
    syn = h.expect_tcp(SYN)
    assert syn.tcp.src_port == 40000
