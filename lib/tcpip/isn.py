"""Initial sequence numbers, RFC 6528: ISN = M + F(localip, localport, remoteip, remoteport, secretkey).

F is the first 32 bits of SHA-256 over a 16-byte boot-time secret from os.urandom and the 4-tuple
(Linux uses SipHash; SHA-256 is what both MicroPython and CPython ship). M is a 4-microsecond
clock, as RFC 6528 section 3 suggests (Linux uses ns >> 6): an extended millisecond count (so
it survives the 2**30 wrap of ticks_ms) times 250, i.e. 4 us units advanced once per millisecond.
(ticks_us is not used: its wrap is not aligned with ticks_ms, which would make M step backwards.)
ISNs of one 4-tuple therefore grow by 250,000 per second, and an observer cannot predict a new
4-tuple's ISN from earlier ones without the secret.
"""
import hashlib
import os


class IsnGenerator:
    def __init__(self, clock, secret=None):
        self.clock = clock
        self.secret = secret if secret is not None else os.urandom(16)
        self._last_ms = clock.ticks_ms()
        self._ext_ms = 0

    def advance(self):
        """Fold elapsed ticks into the extended count; the stack calls this at least every few days."""
        now = self.clock.ticks_ms()
        d = self.clock.ticks_diff(now, self._last_ms)
        if d > 0:
            self._ext_ms += d
            self._last_ms = now

    def isn(self, laddr, lport, raddr, rport):
        """F(4-tuple, secret), the first 32 bits of SHA-256, plus M, the 4 us clock."""
        h = hashlib.sha256(self.secret)
        h.update(bytes(laddr))
        h.update(bytes(raddr))
        h.update(bytes(((lport >> 8) & 0xFF, lport & 0xFF, (rport >> 8) & 0xFF, rport & 0xFF)))
        self.advance()
        return (int.from_bytes(h.digest()[:4], "big") + self._ext_ms * 250) & 0xFFFFFFFF
