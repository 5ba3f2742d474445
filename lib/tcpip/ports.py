"""Ephemeral port allocation, RFC 6056 Algorithm 4 ("double-hash"), as Linux __inet_hash_connect.

offset = F(laddr, raddr, rport, secret) + table_perturb[G(...)]; candidates are tried from there
through the range, ports of the range's low parity first (steps of 2), then the other parity. Each
candidate is checked for 4-tuple uniqueness by the caller's predicate. On success the perturbation
entry advances by the number of tries plus a small random step, so consecutive connects to the same
destination do not get sequential ports and a port does not reveal the next one.
"""
import hashlib
import os
from array import array

from tcpip import errors

TABLE_SIZE = 256  # Linux uses 2**16 entries; 256 x 2 bytes is what a board can spare


class PortAllocator:
    def __init__(self, low=32768, high=60999, secret=None, table_size=TABLE_SIZE):
        if not (1 <= low <= high <= 65535):
            raise ValueError("bad port range %d-%d" % (low, high))
        self.low = low
        self.high = high
        self.secret = secret if secret is not None else os.urandom(16)
        self.table_size = table_size
        # 16-bit entries (an array: 2 bytes each, where a list takes 4); Linux fills table_perturb
        # with random bytes once (get_random_sleepable_once)
        self.perturb = array("H", bytes(2 * table_size))
        seed = os.urandom(2 * table_size)
        for i in range(table_size):
            self.perturb[i] = seed[2 * i] << 8 | seed[2 * i + 1]

    def allocate(self, laddr, raddr, rport, is_free):
        """A port p in [low, high] with is_free(p) true; OSError(EADDRNOTAVAIL) when none is."""
        low = self.low
        remaining = self.high + 1 - low  # [low, high + 1[ as in the kernel
        if remaining > 1:
            remaining &= ~1
        # Linux wraps at high + 1; with an odd-sized range that skips ports, so wrap at the end of
        # the even-sized part and try the odd one out last (the kernel advises even-sized ranges).
        top = low + remaining
        # a 64-bit keyed hash of (laddr, raddr, rport), as secure_ipv4_port_ephemeral()
        h = hashlib.sha256(self.secret)
        h.update(bytes(laddr))
        h.update(bytes(raddr))
        h.update(bytes(((rport >> 8) & 0xFF, rport & 0xFF)))
        port_offset = int.from_bytes(h.digest()[:8], "big")
        index = port_offset & (self.table_size - 1)
        offset = (self.perturb[index] + (port_offset >> 32)) % remaining
        offset &= ~1  # first pass: ports of low's parity
        step = 2 if remaining > 1 else 1
        for _parity in range(2):
            port = low + offset
            i = 0
            while i < remaining:
                if port >= top:
                    port -= remaining
                if is_free(port):
                    # Linux: i = max(i, random(8) * step); table_perturb[index] += i + step
                    bump = (os.urandom(1)[0] & 7) * step
                    if bump > i:
                        i = bump
                    self.perturb[index] = (self.perturb[index] + i + step) & 0xFFFF
                    return port
                i += step
                port += step
            offset += 1
            if remaining <= 1:
                break
        # An odd-sized range leaves `high` itself out of both passes (as Linux); try it last.
        if self.high - self.low + 1 > remaining and is_free(self.high):
            return self.high
        raise OSError(errors.EADDRNOTAVAIL)
