# A tiny SPI Ethernet "chip" for testing the virtual board's plumbing (machine shim, wiring, board
# file, bridge, CLI) apart from the real chip models: FifoModel speaks the chip-model contract
# (select/deselect/xfer/reset_pin/int_level, a link on its wire side), FifoDriver the NIC contract
# over machine.SPI and a CS Pin. MicroPython and CPython.
#
# One command per CS-low transaction, first byte on MOSI:
#   0x01 RX      MISO then gives the oldest waiting frame's length (2 bytes, big-endian; 0: none)
#                and the frame; a frame whose length was clocked out is gone at deselect
#   0x02 TX      MOSI then gives a length (2 bytes) and the frame; sent to the link at deselect
#   0x03 STATUS  MISO then gives 0xA5 and the number of waiting frames (presence check)
# Up to 4 received frames wait in the chip; more are dropped (counted). RST low empties it.
try:
    import machine
except ImportError:  # pragma: no cover - CPython without the shim installed
    machine = None

_RX = 0x01
_TX = 0x02
_STATUS = 0x03
_MAGIC = 0xA5
_SLOTS = 4
_FRAME = 1514


class FifoModel:
    spi_modes = ((0, 0), (1, 1))
    spi_max_hz = 50000000

    def __init__(self, link=None):
        self.link = link
        self.rx = [bytearray(_FRAME) for _ in range(_SLOTS)]
        self.rx_len = [0] * _SLOTS
        self.head = 0
        self.count = 0
        self.tx = bytearray(_FRAME)
        self.tx_len = 0
        self.op = 0
        self.pos = -1
        self.in_reset = False
        self.spi_transactions = 0
        self.spi_bytes = 0
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped = 0
        self.resets = 0

    def _pull(self):
        if self.link is None or self.in_reset:
            return
        for _ in range(16):
            if self.count == _SLOTS:
                n = self.link.recv_into(self._spare())
                if not n:
                    return
                self.rx_dropped += 1
                continue
            slot = (self.head + self.count) % _SLOTS
            n = self.link.recv_into(self.rx[slot])
            if not n:
                return
            self.rx_len[slot] = n
            self.count += 1
            self.rx_frames += 1

    def counters(self):
        return {"spi_transactions": self.spi_transactions, "spi_bytes": self.spi_bytes,
                "rx_frames": self.rx_frames, "tx_frames": self.tx_frames,
                "rx_dropped": self.rx_dropped, "resets": self.resets}

    def _spare(self):
        s = getattr(self, "_spare_buf", None)
        if s is None:
            s = self._spare_buf = bytearray(_FRAME + 16)
        return s

    def select(self):
        self.spi_transactions += 1
        self.op = 0
        self.pos = 0
        self._pull()

    def deselect(self):
        if self.op == _RX and self.pos >= 3 and self.count:
            self.head = (self.head + 1) % _SLOTS
            self.count -= 1
        elif self.op == _TX and self.pos >= 3 and self.pos - 3 == self.tx_len:
            if self.link is not None:
                self.link.send(self.tx, self.tx_len)
            self.tx_frames += 1
        self.pos = -1

    def xfer(self, wbuf, rbuf, n):
        self.spi_bytes += n
        for i in range(n):
            b = wbuf[i] if wbuf is not None else 0
            out = 0xFF
            pos = self.pos
            if self.in_reset or pos < 0:
                pass
            elif pos == 0:
                self.op = b
                out = 0
            elif self.op == _RX:
                flen = self.rx_len[self.head] if self.count else 0
                if pos == 1:
                    out = flen >> 8
                elif pos == 2:
                    out = flen & 0xFF
                elif pos - 3 < flen:
                    out = self.rx[self.head][pos - 3]
            elif self.op == _TX:
                if pos == 1:
                    self.tx_len = b << 8
                elif pos == 2:
                    self.tx_len |= b
                elif pos - 3 < _FRAME:
                    self.tx[pos - 3] = b
            elif self.op == _STATUS:
                out = _MAGIC if pos == 1 else self.count
            if rbuf is not None:
                rbuf[i] = out
            if pos >= 0:
                self.pos = pos + 1

    def reset_pin(self, level):
        self.in_reset = level == 0
        if self.in_reset:
            self.resets += 1
            self.count = 0
            self.head = 0

    def int_level(self):
        self._pull()
        return 0 if self.count else 1


class FifoDriver:
    def __init__(self, spi, cs, reset=None, mac=None, int_pin=None, clock=None):
        self.spi = spi
        self.cs = cs
        self.mtu = 1500
        self.hdr = bytearray(3)
        self.rhdr = bytearray(3)
        self.int_pin = int_pin
        if clock is None:
            from tcpip.clock import Clock

            clock = Clock()
        self.clock = clock
        self.counters = {"rx_frames": 0, "tx_frames": 0}
        if reset is not None:
            reset(0)
            reset(1)
        cs(1)
        if mac is None and machine is not None:
            uid = machine.unique_id()
            mac = bytes([0x02, uid[-5], uid[-4], uid[-3], uid[-2], uid[-1]])
        self.mac = bytes(mac) if mac is not None else b"\x02\x00\x00\x00\x00\x01"
        self.hdr[0] = _STATUS
        self._xfer_hdr()
        if self.rhdr[1] != _MAGIC:
            raise OSError(19, "FIFO chip not answering (status %02x)" % self.rhdr[1])

    def _xfer_hdr(self):
        self.cs(0)
        self.spi.write_readinto(self.hdr, self.rhdr)
        self.cs(1)

    def recv_into(self, buf):
        cs = self.cs
        cs(0)
        self.hdr[0] = _RX
        self.spi.write_readinto(self.hdr, self.rhdr)
        n = self.rhdr[1] << 8 | self.rhdr[2]
        if n:
            if n > len(buf):
                n = 0  # the frame is dropped (the chip forgets it at deselect)
            else:
                self.spi.readinto(memoryview(buf)[0:n])
                self.counters["rx_frames"] += 1
        cs(1)
        return n

    def send(self, buf, n):
        cs = self.cs
        cs(0)
        self.hdr[0] = _TX
        self.hdr[1] = n >> 8
        self.hdr[2] = n & 0xFF
        self.spi.write(self.hdr)
        self.spi.write(memoryview(buf)[0:n])
        cs(1)
        self.counters["tx_frames"] += 1

    def link_up(self):
        return True

    def wait(self, timeout_ms):
        """Up to timeout_ms until INT says a frame waits (1 ms sleeps without an INT pin)."""
        pin = self.int_pin
        if pin is None:
            self.clock.sleep_ms(1 if timeout_ms >= 1 else 0)
            return
        for _ in range(timeout_ms if timeout_ms > 0 else 0):
            if not pin.value():
                return
            self.clock.sleep_ms(1)
