"""TapDevice: the NIC contract (docs/ARCHITECTURE.md "Device (NIC) contract") over a Linux TAP.

The TAP is opened in the network namespace of the calling *thread*: open it inside
`TestNamespace.call(TapDevice, "tap0")` (or a child started with `ip netns exec`) to reach a
namespace's tap0. The file descriptor keeps working from any thread afterwards.
"""
import errno
import fcntl
import os
import select
import socket
import struct
import time

TUNSETIFF = 0x400454CA  # _IOW('T', 202, int), linux/if_tun.h
IFF_TAP = 0x0002
IFF_NO_PI = 0x1000
IFNAMSIZ = 16
TUN_PATH = "/dev/net/tun"
SIOCGIFFLAGS = 0x8913
IFF_UP = 0x1
IFF_RUNNING = 0x40
READY_TIMEOUT_MS = 3000


def random_mac():
    """A random locally administered unicast MAC (first octet: bit 1 set, bit 0 clear)."""
    mac = bytearray(os.urandom(6))
    mac[0] = (mac[0] & 0xFC) | 0x02
    return bytes(mac)


def mac_text(mac):
    return ":".join("%02x" % b for b in mac)


def parse_mac(text):
    parts = text.split(":")
    if len(parts) != 6:
        raise ValueError("bad MAC %r" % text)
    return bytes(int(p, 16) for p in parts)


def interface_flags(ifname):
    """SIOCGIFFLAGS of `ifname` in the calling thread's network namespace."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        res = fcntl.ioctl(s.fileno(), SIOCGIFFLAGS, struct.pack("16sH14x", ifname.encode(), 0))
    return struct.unpack_from("16sH", res)[1]


def interface_exists(ifname):
    """True if `ifname` exists in the calling thread's network namespace."""
    try:
        socket.if_nametoindex(ifname)
        return True
    except OSError:
        return False


class TapDevice:
    """TapDevice(ifname, mac=None, mtu=1500, create=False).

    create=False attaches to an existing TAP (made with `ip tuntap add dev IF mode tap`) and
    raises OSError(ENODEV) if there is none; create=True makes a non-persistent TAP that vanishes on
    close() (it is down and has no address: configure it with `ip`). mac is our end's MAC (the
    stack's), a random locally administered unicast one if None; mtu is the IP MTU.
    """

    def __init__(self, ifname, mac=None, mtu=1500, create=False):
        if len(ifname.encode()) >= IFNAMSIZ:
            raise ValueError("interface name too long: %r" % ifname)
        exists = interface_exists(ifname)
        if not create and not exists:
            raise OSError(errno.ENODEV, "no TAP device %r in this network namespace" % ifname)
        if create and exists:
            raise OSError(errno.EEXIST, "interface %r already exists" % ifname)
        self.ifname = ifname
        self.mac = bytes(mac) if mac is not None else random_mac()
        if len(self.mac) != 6:
            raise ValueError("mac must be 6 bytes")
        self.mtu = mtu
        self.rx_frames = 0
        self.tx_frames = 0
        self.tx_dropped = 0
        self._fd = os.open(TUN_PATH, os.O_RDWR | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            ifr = struct.pack("16sH22x", ifname.encode(), IFF_TAP | IFF_NO_PI)
            fcntl.ioctl(self._fd, TUNSETIFF, ifr)
        except OSError:
            os.close(self._fd)
            self._fd = -1
            raise
        self._poll = select.poll()
        self._poll.register(self._fd, select.POLLIN)
        self.ready_ms = self._wait_running()

    def _wait_running(self):
        """Wait (bounded) until the kernel has activated the interface after we attached.

        Attaching turns the TAP's carrier on, but Linux applies that through linkwatch, which may
        delay it by up to a second; until then the interface's qdisc is noop and silently drops
        everything the kernel sends us (our first ARP request's reply, say). IFF_RUNNING is set by
        the same linkwatch step. Returns the ms waited, or None if the interface is down (nothing
        to wait for) or never became ready within READY_TIMEOUT_MS.
        """
        t0 = time.monotonic()
        deadline = t0 + READY_TIMEOUT_MS / 1000
        while True:
            flags = interface_flags(self.ifname)
            if not flags & IFF_UP:
                return None
            if flags & IFF_RUNNING:
                return round((time.monotonic() - t0) * 1000)
            if time.monotonic() >= deadline:
                return None
            select.select([], [], [], 0.005)

    def recv_into(self, buf):
        """One frame into buf (no extra copy); 0 when none is waiting. Never blocks."""
        try:
            n = os.readv(self._fd, (buf,))
        except BlockingIOError:
            return 0
        if n:
            self.rx_frames += 1
        return n

    def send(self, buf, n):
        """Transmit the first n bytes of buf as one frame -> bytes written. A frame the kernel
        refuses (EIO while the interface is down) is dropped and counted in tx_dropped (0), as a
        NIC drops frames while its link is down: send() never raises out of stack.poll()."""
        try:
            written = os.write(self._fd, memoryview(buf)[:n])
        except OSError:
            self.tx_dropped += 1
            return 0
        self.tx_frames += 1
        return written

    def wait(self, timeout_ms):
        """Block up to timeout_ms until a frame may be readable; True if one is."""
        return bool(self._poll.poll(timeout_ms))

    def fileno(self):
        return self._fd

    def close(self):
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self):
        return "TapDevice(%r, mac=%s, mtu=%d)" % (self.ifname, mac_text(self.mac), self.mtu)
