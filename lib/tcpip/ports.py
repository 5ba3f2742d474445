"""Ephemeral port allocation, RFC 6056 Algorithm 4 ("double-hash"), as Linux __inet_hash_connect.

offset = F(laddr, raddr, rport, secret) + table_perturb[G(...)]; candidates are tried from there
through the range, ports of the range's low parity first (steps of 2), then the other parity. Each
candidate is checked for 4-tuple uniqueness by the caller's predicate. On success the perturbation
entry advances by the number of tries plus a small random step, so consecutive connects to the same
destination do not get sequential ports and a port does not reveal the next one.

The perturbation table: Linux grew it from 256 to 65,536 entries in 2022 (Klein and Pinkas, "Device
Tracking via Linux's New TCP Source Port Selection Algorithm": with few entries, which destinations
share an entry is a per-device fingerprint an attacker can measure by making the device connect to
servers it controls). 65,536 16-bit entries are 128 KB, over half an RP2040's heap; the default here
is 256 (512 bytes, TcpConfig.port_table_size: a power of two, as large as a platform can spare) and
the secret and the table are drawn afresh whenever the local address changes, so a fingerprint
measured on one network does not follow the device to the next (docs/ARCHITECTURE.md, "Ports").
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
        if table_size < 1 or table_size & (table_size - 1):
            raise ValueError("port table size must be a power of two")
        self.table_size = table_size
        # 16-bit entries (an array: 2 bytes each, where a list takes 4)
        self.perturb = array("H", bytes(2 * table_size))
        self.laddr = None  # the local address of the last allocation
        self.rekey(secret)

    def rekey(self, secret=None):
        """A new secret and table (Linux fills table_perturb with random bytes once per boot,
        get_random_sleepable_once; this happens also when the local address changes)."""
        self.secret = secret if secret is not None else os.urandom(16)
        n = self.table_size
        seed = os.urandom(2 * n)
        for i in range(n):
            self.perturb[i] = seed[2 * i] << 8 | seed[2 * i + 1]

    def allocate(self, laddr, raddr, rport, is_free):
        """A port p in [low, high] with is_free(p) true; OSError(EADDRNOTAVAIL) when none is."""
        if self.laddr != laddr:
            if self.laddr is not None:
                self.rekey()  # another network: nothing learnt about the last one carries over
            self.laddr = bytes(laddr)
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
