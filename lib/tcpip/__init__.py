"""tcpip: a lean TCP/IP client stack for MicroPython boards and CPython hosts."""
__version__ = "0.1.0"


def call(module, fn, *args):
    """fn(*args) from `module` (a full name), which is imported for the call and dropped after it
    (on success and failure): code that runs once (bring-up) or rarely (recovery) goes back to the
    heap afterwards, as Linux frees its __init sections after boot."""
    m = __import__(module, None, None, (fn,))
    try:
        return getattr(m, fn)(*args)
    finally:
        drop(module)


def drop(module):
    """`module` out of sys.modules and its package: its code is freed once nothing that came from
    it (a function, a class) is held any more."""
    import sys

    sys.modules.pop(module, None)
    i = module.rfind(".")
    p = sys.modules.get(module[:i])
    if p is not None:
        try:
            delattr(p, module[i + 1:])
        except AttributeError:
            pass
