"""Wire formats: one module per header (offsets, (buf, off) accessors, a small Repr).

Accessors never check lengths: callers validate once at the boundary (ipv4.check, Repr.parse).
"""


def check_span(buf, off, n, need, what):
    """Repr.parse boundary check: n bytes at off lie in buf and n >= need, else ValueError."""
    if off < 0 or n < 0 or off + n > len(buf):
        raise ValueError("%s: %d bytes at offset %d exceed the buffer" % (what, n, off))
    if n < need:
        raise ValueError("%s: truncated (%d of %d bytes)" % (what, n, need))
