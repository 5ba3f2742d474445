"""errno values used by tcpip.

MicroPython's errno module lacks several names that a TCP client needs; they get the Linux values
(include/uapi/asm-generic/errno.h). Everything else comes from the runtime's errno so OSError(e).errno compares equal
with the platform's own constants.
"""
import errno as _errno


def _pick(name, linux_value):
    return getattr(_errno, name, linux_value)


EPERM = _pick("EPERM", 1)
EIO = _pick("EIO", 5)
ENODEV = _pick("ENODEV", 19)
EBADF = _pick("EBADF", 9)
EAGAIN = _pick("EAGAIN", 11)
ENOMEM = _pick("ENOMEM", 12)
EINVAL = _pick("EINVAL", 22)
EPIPE = _pick("EPIPE", 32)
ENONET = _pick("ENONET", 64)
EPROTO = _pick("EPROTO", 71)
EMSGSIZE = _pick("EMSGSIZE", 90)
ENOPROTOOPT = _pick("ENOPROTOOPT", 92)
EOPNOTSUPP = _pick("EOPNOTSUPP", 95)
EAFNOSUPPORT = _pick("EAFNOSUPPORT", 97)
EADDRINUSE = _pick("EADDRINUSE", 98)
EADDRNOTAVAIL = _pick("EADDRNOTAVAIL", 99)
ENETUNREACH = _pick("ENETUNREACH", 101)
ECONNABORTED = _pick("ECONNABORTED", 103)
ECONNRESET = _pick("ECONNRESET", 104)
ENOBUFS = _pick("ENOBUFS", 105)
EISCONN = _pick("EISCONN", 106)
ENOTCONN = _pick("ENOTCONN", 107)
ETIMEDOUT = _pick("ETIMEDOUT", 110)
ECONNREFUSED = _pick("ECONNREFUSED", 111)
EHOSTDOWN = _pick("EHOSTDOWN", 112)
EHOSTUNREACH = _pick("EHOSTUNREACH", 113)
EALREADY = _pick("EALREADY", 114)
EINPROGRESS = _pick("EINPROGRESS", 115)

_NAMES = (
    "EPERM EIO ENODEV EBADF EAGAIN ENOMEM EINVAL EPIPE ENONET EPROTO EMSGSIZE ENOPROTOOPT "
    "EOPNOTSUPP EAFNOSUPPORT EADDRINUSE EADDRNOTAVAIL ENETUNREACH ECONNABORTED ECONNRESET ENOBUFS "
    "EISCONN ENOTCONN ETIMEDOUT ECONNREFUSED EHOSTDOWN EHOSTUNREACH EALREADY EINPROGRESS"
)


def name(code):
    """'ECONNREFUSED' for 111; 'E<n>' for numbers we do not know."""
    g = globals()
    for n in _NAMES.split():
        if g[n] == code:
            return n
    return "E%d" % code


def errno_of(exc):
    """The errno of an OSError on both runtimes (MicroPython keeps it in args[0]); EIO if none."""
    e = getattr(exc, "errno", None)
    if isinstance(e, int):
        return e
    if exc.args and isinstance(exc.args[0], int):
        return exc.args[0]
    return EIO
