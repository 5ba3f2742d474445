# UdpFrameDevice: the NIC contract over a UDP socket to host_tools.bridge (which holds the TAP).
# MicroPython (unix port, which has no ffi to open a TAP) and CPython alike.
#
# Wire protocol, all on 127.0.0.1 (inside the test namespace):
#   device -> bridge  HELLO: b"HELLO" + slot (2 bytes, big-endian); any datagram < 14 bytes is control
#   bridge -> device  READY: one slot-sized datagram, payload b"READY", trailer 0
#   device -> bridge  one Ethernet frame (no FCS) per datagram, exactly the frame
#   bridge -> device  one frame per datagram padded to exactly `slot` bytes (slot = mtu + 14 + 2):
#                     frame, padding, then the frame length as 2 big-endian bytes in the last two
# Why the fixed-size slot: MicroPython's socket has no recv_into, and its readinto() keeps reading
# until the requested size is reached, so on a datagram socket it glues several waiting datagrams
# together. Reading exactly `slot` bytes of slot-sized datagrams stops after one datagram, and the
# trailer says how long the frame is. No allocation per frame when len(buf) >= slot; with a smaller
# buf the datagram lands in a preallocated slot buffer and is copied out (a memoryview slice: one
# small allocation per frame on MicroPython).
import os
import select
import socket

HELLO = b"HELLO"
READY = b"READY"
ETH_HEADER_LEN = 14
TRAILER_LEN = 2
HELLO_INTERVAL_MS = 100


def random_mac():
    mac = bytearray(os.urandom(6))
    mac[0] = (mac[0] & 0xFC) | 0x02  # locally administered, unicast
    return bytes(mac)


class UdpFrameDevice:
    """UdpFrameDevice(host_port, local_port=0, mac=None, mtu=1500, host="127.0.0.1",
    hello_timeout_ms=3000): connects to a running bridge and waits for its READY (OSError
    ETIMEDOUT (110) if none). recv_into/send/wait as in docs/ARCHITECTURE.md."""

    def __init__(self, host_port, local_port=0, mac=None, mtu=1500, host="127.0.0.1",
                 hello_timeout_ms=3000):
        self.mac = bytes(mac) if mac is not None else random_mac()
        self.mtu = mtu
        self.slot = mtu + ETH_HEADER_LEN + TRAILER_LEN
        self._rx = bytearray(self.slot)
        self._rxmv = memoryview(self._rx)
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped = 0
        self.tx_dropped = 0
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        if local_port:
            sock.bind(socket.getaddrinfo(host, local_port)[0][-1])
        sock.connect(socket.getaddrinfo(host, host_port)[0][-1])
        sock.setblocking(False)
        self._sock = sock
        self._mp = hasattr(sock, "readinto")  # MicroPython: readinto/write; CPython: recv_into/send
        self._poll = select.poll()
        self._poll.register(sock, select.POLLIN)
        self._ipoll = getattr(self._poll, "ipoll", None)
        self._hello(hello_timeout_ms)

    def _hello(self, timeout_ms):
        msg = bytearray(HELLO + b"\x00\x00")
        msg[5] = self.slot >> 8
        msg[6] = self.slot & 0xFF
        for _ in range(max(1, timeout_ms // HELLO_INTERVAL_MS)):
            try:
                self._sock.send(msg)
            except OSError:
                pass  # bridge not there yet (ECONNREFUSED from the last try)
            if self._poll.poll(HELLO_INTERVAL_MS):
                for _ in range(16):
                    r = self._read(self._rx)
                    if r == 0:
                        break
                    if r == self.slot and self._trailer(self._rx) == 0 and self._rx[:5] == READY:
                        return
        raise OSError(110, "no READY from frame bridge on port %d" % (self._sock_port()))

    def _sock_port(self):
        try:
            return self._sock.getpeername()[1]
        except Exception:
            return -1

    def _read(self, buf):
        # One slot-sized datagram into buf -> bytes read, 0 when none is waiting.
        try:
            if self._mp:
                r = self._sock.readinto(buf, self.slot)
                return r or 0
            return self._sock.recv_into(buf, self.slot)
        except OSError:
            return 0  # EAGAIN, or ECONNREFUSED after a send with no bridge listening

    def _trailer(self, buf):
        return (buf[self.slot - 2] << 8) | buf[self.slot - 1]

    def recv_into(self, buf):
        """One frame into buf -> its length; 0 when none is waiting. Never blocks."""
        slot = self.slot
        if len(buf) >= slot:
            r = self._read(buf)
            if r == 0:
                return 0
            n = (buf[slot - 2] << 8) | buf[slot - 1]
        else:
            r = self._read(self._rx)
            if r == 0:
                return 0
            n = (self._rx[slot - 2] << 8) | self._rx[slot - 1]
            if n > len(buf):
                self.rx_dropped += 1
                return 0
            buf[0:n] = self._rxmv[0:n]
        if r != slot or n > slot - TRAILER_LEN:
            self.rx_dropped += 1
            return 0
        if n:
            self.rx_frames += 1
        return n

    def send(self, buf, n):
        """Transmit the first n bytes of buf as one frame (dropped and counted if the bridge is gone)."""
        try:
            if self._mp:
                self._sock.write(buf, n)
            else:
                self._sock.send(memoryview(buf)[:n])
            self.tx_frames += 1
        except OSError:
            self.tx_dropped += 1

    def wait(self, timeout_ms):
        """Block up to timeout_ms until a datagram is waiting; True if one is."""
        if self._ipoll is not None:
            for _ in self._ipoll(timeout_ms):
                return True
            return False
        return bool(self._poll.poll(timeout_ms))

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
