"""Test-side wire formats: one module per header, each re-exporting lib's tcpip.wire module and
adding what only tests use (offset constants, get_*/set_* accessors, the Repr classes).

lib/tcpip/wire keeps only the views the stack uses, so none of this takes heap on a board.
MicroPython-compatible: the dual test modules import it on the unix port too.
"""


def check_span(buf, off, n, need, what):
    """Repr.parse boundary check: n bytes at off lie in buf and n >= need, else ValueError."""
    if off < 0 or n < 0 or off + n > len(buf):
        raise ValueError("%s: %d bytes at offset %d exceed the buffer" % (what, n, off))
    if n < need:
        raise ValueError("%s: truncated (%d of %d bytes)" % (what, n, need))
