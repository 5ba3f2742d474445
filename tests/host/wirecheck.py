# Helpers shared by the wire test modules (test_wire_*.py). Not a test module: no pytest, and
# MicroPython-compatible, since the dual modules import it on both runtimes.
from binascii import unhexlify


def unhex(text):
    """Bytes from hex text; whitespace (spaces, newlines) is ignored."""
    return unhexlify("".join(text.split()))


def heap_locked(fn):
    """Run fn with the MicroPython heap locked (proves no allocation); plain call on CPython."""
    try:
        import micropython
        micropython.heap_lock
    except (ImportError, AttributeError):
        fn()
        return
    micropython.heap_lock()
    try:
        fn()
    finally:
        micropython.heap_unlock()


def expect_value_error(fn, *args):
    """fn(*args) must raise ValueError; fails (naming args) if it returns."""
    try:
        fn(*args)
    except ValueError:
        return
    assert False, args
