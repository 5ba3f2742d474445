"""Interface address, prefix and default gateway; next-hop and source-address choice.

One interface, one route table of two entries (the on-link prefix and the default route), as on a
board. Addresses are 4-byte bytes objects; the hot-path checks compare bytes in place.
"""
from tcpip import errors
from tcpip.wire import ipv4

ZERO = b"\x00\x00\x00\x00"


def netmask(prefix_len):
    bits = (0xFFFFFFFF << (32 - prefix_len)) & 0xFFFFFFFF if prefix_len else 0
    return bytes(((bits >> 24) & 0xFF, (bits >> 16) & 0xFF, (bits >> 8) & 0xFF, bits & 0xFF))


class Route:
    def __init__(self, addr=None, prefix_len=24, gateway=None):
        self.addr = ZERO
        self.mask = netmask(32)
        self.prefix_len = 32
        self.gateway = None
        self.broadcast = b"\xff\xff\xff\xff"
        # bumped whenever the configuration or a neighbour's entry changes: connection
        # templates built for a next hop (tcp_out.build_template) are valid only while it holds
        self.gen = 0
        if addr is not None:
            self.configure(addr, prefix_len, gateway)

    def configure(self, addr, prefix_len=24, gateway=None):
        """addr: 'a.b.c.d/n', 'a.b.c.d' (with prefix_len) or 4 bytes; gateway: text, bytes or None."""
        if isinstance(addr, str):
            if "/" in addr:
                # 'a.b.c.d/n'
                addr, _, plen = addr.partition("/")
                if not plen.isdigit() or int(plen) > 32:
                    raise ValueError("bad prefix length /%s" % plen)
                prefix_len = int(plen)
            addr = ipv4.aton(addr)
        if len(addr) != 4 or not 0 <= prefix_len <= 32:
            raise ValueError("bad interface address")
        if isinstance(gateway, str):
            gateway = ipv4.aton(gateway)
        self.addr = bytes(addr)
        self.prefix_len = prefix_len
        self.mask = netmask(prefix_len)
        self.broadcast = bytes((self.addr[i] & self.mask[i]) | (~self.mask[i] & 0xFF) for i in range(4))
        if gateway is not None and not self.on_link(gateway, 0):
            raise ValueError("gateway %s is not on the interface's network" % ipv4.ntoa(gateway))
        self.gateway = bytes(gateway) if gateway is not None else None
        self.gen += 1

    def configured(self):
        return self.addr != ZERO

    def on_link(self, buf, off):
        """True when buf[off:off+4] lies in the interface's prefix (no allocation)."""
        a = self.addr
        m = self.mask
        return (
            (buf[off] ^ a[0]) & m[0] == 0
            and (buf[off + 1] ^ a[1]) & m[1] == 0
            and (buf[off + 2] ^ a[2]) & m[2] == 0
            and (buf[off + 3] ^ a[3]) & m[3] == 0
        )

    def is_local(self, buf, off):
        a = self.addr
        return buf[off] == a[0] and buf[off + 1] == a[1] and buf[off + 2] == a[2] and buf[off + 3] == a[3]

    def is_broadcast(self, buf, off):
        """Limited broadcast or this network's directed broadcast."""
        if ipv4.is_limited_broadcast(buf, off):
            return True
        b = self.broadcast
        return self.prefix_len < 31 and buf[off] == b[0] and buf[off + 1] == b[1] and buf[off + 2] == b[2] and buf[off + 3] == b[3]

    def next_hop(self, dst):
        """The next hop for a connect to dst (4 bytes); raises OSError(ENETUNREACH) as tcp_v4_connect.

        Broadcast and multicast destinations are refused (RTCF_BROADCAST/RTCF_MULTICAST -> ENETUNREACH),
        and so are 0.0.0.0, loopback and our own address: this stack has no loopback interface.
        """
        if not self.configured():
            raise OSError(errors.ENETUNREACH)
        if (
            ipv4.is_multicast(dst, 0)
            or self.is_broadcast(dst, 0)
            or ipv4.is_zero(dst, 0)
            or ipv4.is_loopback(dst, 0)
            or self.is_local(dst, 0)
        ):
            raise OSError(errors.ENETUNREACH)
        if self.on_link(dst, 0):
            return dst
        if self.gateway is None:
            raise OSError(errors.ENETUNREACH)
        return self.gateway

    def source_for(self, bound_addr):
        """Source address: the bound one when bound (it must be ours), else the interface's."""
        if bound_addr is None or bound_addr == ZERO:
            return self.addr
        if bound_addr != self.addr:
            raise OSError(errors.EADDRNOTAVAIL)
        return bound_addr
