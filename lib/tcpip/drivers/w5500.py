"""WIZnet W5500 in MACRAW mode on socket 0: the NIC contract (docs/ARCHITECTURE.md) over machine.SPI.

    from tcpip.drivers.w5500 import W5500
    nic = W5500(spi, cs, reset=Pin(20, Pin.OUT, value=1), int_pin=Pin(21, Pin.IN))
    n = nic.recv_into(buf); nic.send(buf, n); nic.link_up(); nic.counters.snapshot()

References: "DS" is the W5500 Datasheet v1.0.9 (2.1 SPI frame, 2.2 VDM/FDM modes, 3.3 memory,
4.1 common registers, 4.2 socket registers, 5.5.1 reset timing); "ioLibrary" is WIZnet's
ioLibrary_Driver (Ethernet/W5500/w5500.c, Ethernet/socket.c), whose MACRAW path MicroPython's
extmod/network_wiznet5k.c uses.

Bus use. Register groups are chains of fixed-length (FDM, DS 2.2.2) frames inside one transaction
(one CS-low period), the way the chip takes them with SCSn tied low; buffer data is one
variable-length (VDM, DS 2.2.1) frame. The driver keeps socket 0's RX_RD and TX_WR itself (only it
moves them; they are read back once when the socket opens).
  receive  frames come in batches. A poll [Sn_CR, Sn_RX_RSR, Sn_RX_RSR, the 2-byte MACRAW length at
           RX_RD] tells how many bytes of complete frames wait and how long the first is; then each
           frame is ONE transaction that reads it together with the next frame's length header (when
           the poll counted that frame too), straight into the frame buffer the stack uses
           (rx_buffer); after the last one, one [Sn_RX_RD, Sn_CR=RECV] transaction gives the space
           back. Per frame in a batch of k: 1 + 2/k transactions; an idle poll is 1 (17 bytes).
  send     the stack builds frames in tx_buffer, which has the 3-byte SPI header just in front of
           it: [the frame] is one transaction, then [Sn_IR, Sn_CR] read and, once the last SEND is
           done (SEND_OK) and the last command taken, [Sn_IR clear, Sn_TX_WR, Sn_CR=SEND] written in
           the same transaction: 2 transactions. Sn_TX_FSR is never needed: one frame is on its way
           at a time (SEND waits for the last SEND_OK) and the 16 KB buffer holds two.
Transfers are rounded up to 32-byte blocks through views made once (no slicing per frame), so up to
31 bytes beyond a frame are clocked: chip memory past what is valid, never a register. Every
command is written only after a read of Sn_CR saw 0 (DS 4.2 Sn_CR: the chip has taken the
previous one; one written before that is lost). SEND_OK of a frame is awaited at the next send()
(bounded), so the chip puts the frame on the wire while the host goes on. fdm_chain=False sends
each FDM frame in its own transaction (for a board whose bus cannot hold CS low across frames).
Frames passed in other buffers than rx_buffer / tx_buffer are copied (tcpip.mem.copy, about 3.4
cycles per byte on rp2 when word-aligned: docs/ARCHITECTURE.md, "What things cost on an RP2040").
Nothing is allocated per frame.
"""
from tcpip import mem
from tcpip.clock import Clock, ticks_diff
from tcpip.drivers import default_mac
from tcpip import call
from tcpip.counters import Counters

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_TYPE_CHECKING = const(False)  # True for the type checker only: `if` blocks under it compile to nothing
if _TYPE_CHECKING:
    from tcpip.drivers.rp2dma import SpiDma

    # w5500_init.chain(): (write buffer, read buffer, data offsets, write views, read views)
    _Chain = tuple[bytearray, bytearray, list[int], list[memoryview], list[memoryview]]

# counters: indexes into self._cnt (NAMES below; tests/host/test_counters.py)
_RX_FRAMES = const(0)
_TX_FRAMES = const(1)
_RX_MALFORMED_RESET = const(2)
_RX_RSR_UNSTABLE = const(3)
_RX_CMD_BUSY = const(4)
_RX_DROPPED_TOO_BIG = const(5)
_TX_TIMEOUTS = const(6)
_TX_NO_SPACE = const(7)
_TX_DROPPED_SIZE = const(8)
_TX_LINK_DOWN = const(9)
_SPI_TRANSACTIONS = const(12)

_INIT = "tcpip.drivers.w5500_init"

# -- what the per-frame paths use of the register map (w5500_init.py has the whole map with its
# datasheet references; tests/host/test_w5500.py checks the values agree) ----------------------
_BSB_COMMON = const(0x00)  # common register block (DS 2.1)
_OM_VDM = const(0x00)      # variable length: CS ends the frame (DS 2.2.1)
_PHYCFGR = const(0x002E)   # bit 0 LNK, bit 1 SPD (100M), bit 2 DPX (full) (DS 4.1)
_IR_SENDOK = const(0x10)   # Sn_IR (DS 4.2)
_IR_TIMEOUT = const(0x08)

_MAX_FRAME = const(1514)
_MIN_FRAME = const(14)
_BLOCK_SHIFT = const(5)       # transfers in 32-byte blocks (views made once)
_TX_OFF = const(4)            # tx_buffer starts at _txb[4] (even: aligned frames), SPI header [1:4]
_DMA_MIN = const(512)          # frames moved by DMA from this size on (a smaller one costs less
                               # by machine.SPI than the DMA set-up saves)
_DTX_OFF = const(6)            # a frame in _dtx: the SPI header at [3:6], the frame from 6 (even)
_RSR_TRIES = const(8)         # reads of Sn_RX_RSR until two agree (ioLibrary getSn_RX_RSR)
_SPIN_POLLS = const(32)       # polls before waits start sleeping 1 ms between polls
_MAX_POLLS = const(2000)
_TX_WAIT_MS = const(20)       # SEND_OK / free space: 1514 B take 1.2 ms at 10 Mbit/s


# the driver's counters (nic.counters; the stack's own are stack.counters), in index order
NAMES = (
    "rx_frames tx_frames rx_malformed_reset rx_rsr_unstable rx_cmd_busy rx_dropped_too_big "
    "tx_timeouts tx_no_space tx_dropped_size tx_link_down socket_reopens reopen_failed "
    "spi_transactions"
)


def _pin_setter(pin):
    """A Pin is callable (pin(v) sets it, cheaper on rp2 than the bound pin.value); anything else
    with a value() method is driven through that."""
    return pin if callable(pin) else pin.value


class W5500:
    """W5500(spi, cs, reset=None, mac=None, int_pin=None, clock=None, ipv6=False, fdm_chain=True)

    spi: machine.SPI-like (mode 0 or 3); cs, reset: Pin-like outputs (idle high); int_pin: Pin-like
    input for INTn (then Sn_IR RECV drives it and wait() watches it). Resets the chip, checks it is
    there (OSError ENODEV otherwise) and opens socket 0 in MACRAW with the MAC filter on and IPv6
    blocked unless ipv6=True.

    State (made by w5500_init.setup): _rxb / rx_buffer and _txb / tx_buffer the frame buffers the
    stack adopts, _rxv / _txv their views in 32-byte blocks; _rxp (poll), _rxd (receive done),
    _txc (send check) and _txg (send go) the FDM chains, with _o_cr, _o_rsr, _o_rsr2, _o_len the
    offsets of the poll's fields; _rd and _wr socket 0's RX_RD and TX_WR as the driver keeps
    them; _avail the bytes of complete frames known to wait from _rd on and _next the length
    header of the frame at _rd; _tx_pending a SEND whose SEND_OK is not seen yet; _rx_more a
    recv_into returned 0 with frames possibly still waiting. With DMA (drivers/rp2dma.py) the next
    frame is read ahead into _drx (_ahead 1 while CS is low, 2 when done; _an its length) while
    the stack works on the last one, and a frame is written from _dtx (_txing its length, its
    SEND issued by the next bus use or, if none comes first, by the doorbell when the write ends;
    _by_dma the last frame went that way).
    """

    # the receive window the chip can hold when the host falls behind: its 16 KB receive buffer
    # takes ten full frames with their headers; 12 KB (8 segments) leaves room for the ACKs and
    # broadcasts in between (bring_up sizes the default receive ring from this)
    RX_WINDOW = 12288

    # what w5500_init.setup makes and this module only reads (see above; declarations for the
    # type checker: they compile to nothing)
    _h3: bytearray
    _r1: bytearray
    _rxb: bytearray
    _txb: bytearray
    rx_buffer: memoryview
    tx_buffer: memoryview
    _rxv: list[memoryview]
    _txv: list[memoryview]
    _rxh: bytearray
    _rxp: "_Chain"
    _rxd: "_Chain"
    _txc: "_Chain"
    _txg: "_Chain"
    _o_cr: int
    _o_rsr: int
    _o_rsr2: int
    _o_len: int
    _dma: "SpiDma | None"
    _drx: bytearray
    _dtx: bytearray

    def __init__(self, spi, cs, reset=None, mac=None, int_pin=None, clock=None, ipv6=False,
                 fdm_chain=True, dma=None):
        self._spi = spi
        self._cs = _pin_setter(cs)
        self._rst = _pin_setter(reset) if reset is not None else None
        self._int = int_pin
        self.clock = clock if clock is not None else Clock()
        self.ipv6 = ipv6
        self.fdm_chain = fdm_chain
        self.mtu = 1500
        self.counters = Counters(NAMES)
        self._cnt = self.counters.v
        self.mac = bytes(mac) if mac is not None else default_mac()
        if len(self.mac) != 6:
            raise ValueError("mac must be 6 bytes")
        call(_INIT, "setup", self, dma)  # buffers, views, chains; chip reset, socket 0 open

    # -- bring-up and recovery (tcpip.drivers.w5500_init, loaded for the call) -------------------
    def reset(self):
        """Hardware reset (if wired), presence check, software reset, configuration, socket 0 open."""
        call(_INIT, "reset", self)

    def _bus(self):
        """End a DMA transfer that still holds the bus (CS low): a frame read ahead is kept for
        the next recv_into; a frame written gets its SEND. Safe against the doorbell running
        between any two jumps of it (MicroPython runs scheduled callbacks only at jumps and in
        blocking calls): _txing is taken and cleared in one straight run of bytecode."""
        if _TYPE_CHECKING:
            assert self._dma is not None  # called for a transfer by DMA (_ahead 1, _txing)
        if self._ahead == 1:
            self._dma.finish()
            self._cs(1)
            self._ahead = 2
        n = self._txing
        self._txing = 0
        if n:
            self._dma.finish()
            self._cs(1)
            self._go((self._wr + n) & 0xFFFF, n)

    def _doorbell(self, dma=None):
        """The DMA write of a frame ended, and no bus use came first: its SEND now (a soft IRQ,
        between two jumps of whatever the board runs). Inside a driver call _txing is 0: every
        call ends a transfer first, and only send() starts one, as its last step."""
        if self._txing:
            self._bus()

    def _reopen(self):
        """Close and open socket 0 (w5500_init.reopen): pointers back in step, buffers emptied."""
        if self._ahead == 1 or self._txing:
            self._bus()
        self._ahead = 0  # a frame read ahead belongs to the old pointers
        call(_INIT, "reopen", self)

    def close(self):
        if self._ahead == 1 or self._txing:
            self._bus()
        call(_INIT, "close_socket", self)

    # -- register access (link_up, and w5500_init's reads; one VDM transaction each) --------------
    def _read(self, bsb, addr, buf):
        h = self._h3
        h[0] = addr >> 8
        h[1] = addr & 0xFF
        h[2] = bsb | _OM_VDM
        self._cs(0)
        self._cnt[_SPI_TRANSACTIONS] += 1
        self._spi.write(h)
        self._spi.readinto(buf)
        self._cs(1)

    def _read8(self, bsb, addr):
        self._read(bsb, addr, self._r1)
        return self._r1[0]

    def _run(self, ch):
        """One chain of FDM frames: one transaction, or one per frame without fdm_chain."""
        cs = self._cs
        spi = self._spi
        if self.fdm_chain:
            cs(0)
            self._cnt[_SPI_TRANSACTIONS] += 1
            spi.write_readinto(ch[0], ch[1])
            cs(1)
        else:
            wv = ch[3]
            rv = ch[4]
            for k in range(len(wv)):
                cs(0)
                self._cnt[_SPI_TRANSACTIONS] += 1
                spi.write_readinto(wv[k], rv[k])
                cs(1)

    # -- the NIC contract -------------------------------------------------------------------------
    def link_up(self):
        """PHYCFGR.LNK (DS 4.1)."""
        if self._ahead == 1 or self._txing:
            self._bus()
        return bool(self._read8(_BSB_COMMON, _PHYCFGR) & 0x01)

    def recv_into(self, buf):
        """One received frame into buf; its length, or 0 when none is waiting. Never raises."""
        if self._txing:
            self._bus()
        if self._ahead:
            return self._take_ahead(buf)
        avail = self._avail
        if not avail:
            avail = self._poll()
            if not avail:
                return 0
        total = self._next
        c = self._cnt
        if total < _MIN_FRAME + 2 or total > _MAX_FRAME + 2 or total > avail:
            c[_RX_MALFORMED_RESET] += 1  # out of step with the chip: start socket 0 afresh
            self._reopen()
            return 0
        rd = self._rd
        left = avail - total
        n = total - 2
        if n > len(buf):
            c[_RX_DROPPED_TOO_BIG] += 1
            self._rd = (rd + total) & 0xFFFF  # passed over (the next header is read anew)
            self._avail = 0
            self._release()
            self._rx_more = True
            return 0
        # the frame, and the next one's length header when the poll counted that frame too
        more = left >= _MIN_FRAME + 2
        k = ((n + 2 if more else n) + 31) >> _BLOCK_SHIFT
        h = self._rxh
        a = (rd + 2) & 0xFFFF
        h[0] = a >> 8
        h[1] = a & 0xFF
        cs = self._cs
        spi = self._spi
        cs(0)
        c[_SPI_TRANSACTIONS] += 1
        spi.write(h)
        if total < _DMA_MIN or self._dma is None:
            spi.readinto(self._rxv[k])
        else:  # with DMA there are views for small frames only: DMA, waited for
            self._dma.start_read(self._rxb, n + 2 if more else n)
            self._dma.finish()
        cs(1)
        rb = self._rxb
        self._rd = (rd + total) & 0xFFFF
        if more:
            self._next = (rb[n] << 8) | rb[n + 1]
            self._avail = left
            if self._dma is not None:
                self._read_ahead()  # runs while the stack works on this frame
        else:
            self._avail = 0
            self._release()  # the batch is read: its space goes back to the chip now
        if buf is not self.rx_buffer:
            mem.copy(buf, 0, rb, 0, n)
        c[_RX_FRAMES] += 1
        return n

    def _read_ahead(self):
        """Start reading the frame at RX_RD (length self._next) by DMA into _drx, with the next
        one's length header when that frame is counted too. A small frame, or one not plausible,
        is left to the synchronous path (which reopens the socket for the latter)."""
        if _TYPE_CHECKING:
            assert self._dma is not None  # called with DMA only
        total = self._next
        avail = self._avail
        if total < _DMA_MIN or total > _MAX_FRAME + 2 or total > avail:
            return  # small (a DMA costs more than it saves), or not plausible: the sync path
        rd = self._rd
        left = avail - total
        more = left >= _MIN_FRAME + 2
        n = total - 2
        h = self._rxh
        a = (rd + 2) & 0xFFFF
        h[0] = a >> 8
        h[1] = a & 0xFF
        self._cs(0)
        self._cnt[_SPI_TRANSACTIONS] += 1
        self._spi.write(h)
        self._dma.start_read(self._drx, n + 2 if more else n)
        self._ahead = 1
        self._an = n
        self._rd = (rd + total) & 0xFFFF
        self._avail = left if more else 0

    def _take_ahead(self, buf):
        """The frame read ahead: into buf, and the next one started."""
        if _TYPE_CHECKING:
            assert self._dma is not None  # a frame was read ahead by DMA
        if self._ahead == 1:
            self._dma.finish()
            self._cs(1)
        self._ahead = 0
        n = self._an
        d = self._drx
        if self._avail:
            self._next = (d[n] << 8) | d[n + 1]
        c = self._cnt
        if n > len(buf):
            c[_RX_DROPPED_TOO_BIG] += 1
            n = 0
        else:
            mem.copy(buf, 0, d, 0, n)
            c[_RX_FRAMES] += 1
        if self._avail:
            self._read_ahead()
        else:
            self._release()
        return n

    def _poll(self):
        """[Sn_CR, Sn_RX_RSR twice, the length header at RX_RD]: bytes of complete frames that
        wait (and self._next), or 0."""
        c = self._cnt
        p = self._rxp
        w = p[0]
        r = p[1]
        at = self._o_len - 3
        rd = self._rd
        w[at] = rd >> 8
        w[at + 1] = rd & 0xFF
        o = self._o_rsr
        o2 = self._o_rsr2
        for _ in range(_RSR_TRIES):
            self._run(p)
            if r[self._o_cr]:
                c[_RX_CMD_BUSY] += 1  # the last RECV not taken yet: Sn_RX_RSR would be stale
                self._rx_more = True
                return 0
            rsr = (r[o] << 8) | r[o + 1]
            # DS 4.2 Sn_RX_RSR changes while a frame arrives: trust it when two reads agree
            # (ioLibrary getSn_RX_RSR)
            if rsr == (r[o2] << 8) | r[o2 + 1]:
                break
            c[_RX_RSR_UNSTABLE] += 1
        else:
            self._rx_more = True
            return 0
        if rsr:
            o = self._o_len
            self._next = (r[o] << 8) | r[o + 1]  # MACRAW: 2-byte length that counts itself
            self._avail = rsr
        return rsr

    def _release(self):
        """Sn_RX_RD past what was read, then RECV (DS 4.2 Sn_RX_RD steps 3-4): the chip may
        reuse that space. The next poll sees Sn_CR at 0 only once the chip has taken it."""
        ch = self._rxd
        w = ch[0]
        at = ch[2][0]
        rd = self._rd
        w[at] = rd >> 8
        w[at + 1] = rd & 0xFF
        self._run(ch)

    def send(self, buf, n):
        """Transmit the first n bytes of buf as one frame. Never raises; drops are counted."""
        c = self._cnt
        if n < _MIN_FRAME or n > _MAX_FRAME or n > len(buf):
            c[_TX_DROPPED_SIZE] += 1
            return
        if self._ahead == 1 or self._txing:
            self._bus()
        dma = self._dma
        if dma is not None and n >= _DMA_MIN:
            # into _dtx, out by DMA while the stack goes on; the SEND when it ends (_bus)
            d = self._dtx
            mem.copy(d, _DTX_OFF, buf, 0, n)
            wr = self._wr
            d[_DTX_OFF - 3] = wr >> 8
            d[_DTX_OFF - 2] = wr & 0xFF
            self._by_dma = True
            self._cs(0)
            c[_SPI_TRANSACTIONS] += 1
            dma.start_write(d, _DTX_OFF - 3, n + 3)
            self._txing = n  # last: from here on the doorbell may issue the SEND
            return
        self._by_dma = False
        self._send_sync(buf, n)

    def _send_sync(self, buf, n):
        txb = self._txb
        if buf is not self.tx_buffer:
            mem.copy(txb, _TX_OFF, buf, 0, n)
        wr = self._wr
        txb[1] = wr >> 8
        txb[2] = wr & 0xFF
        cs = self._cs
        # the frame into the chip's TX buffer at TX_WR (with up to 31 bytes after it, in free
        # space: one frame at most is still on its way, and the buffer holds 16 KB)
        cs(0)
        self._cnt[_SPI_TRANSACTIONS] += 1
        if n < _DMA_MIN or self._dma is None:
            self._spi.write(self._txv[(n + 34) >> _BLOCK_SHIFT])
        else:  # with DMA there are views for small frames only: DMA, waited for
            self._dma.start_write(txb, 1, n + 3)
            self._dma.finish()
        cs(1)
        self._go((wr + n) & 0xFFFF, n)  # DS 4.2 Sn_TX_WR: 16 bits, the carry is dropped

    def _go(self, wr, n):
        """The frame is in the chip's buffer: once the last SEND is done (SEND_OK) and the last
        command taken, [Sn_IR clear, Sn_TX_WR, Sn_CR = SEND] in the transaction that read them."""
        c = self._cnt
        g = self._txg
        w = g[0]
        at = g[2][1]
        w[at] = wr >> 8
        w[at + 1] = wr & 0xFF
        ch = self._txc
        r = ch[1]
        o_ir = ch[2][0]
        o_cr = ch[2][1]
        if self.fdm_chain:
            cs = self._cs
            spi = self._spi
            cs(0)
            c[_SPI_TRANSACTIONS] += 1
            spi.write_readinto(ch[0], r)
            if (not self._tx_pending or r[o_ir] & (_IR_SENDOK | _IR_TIMEOUT)) and not r[o_cr]:
                spi.write(w)  # same transaction: [IR clear, TX_WR, CR = SEND]
                cs(1)
                if self._tx_pending and not r[o_ir] & _IR_SENDOK:
                    c[_TX_TIMEOUTS] += 1
                self._wr = wr
                self._tx_pending = True
                c[_TX_FRAMES] += 1
                return
            cs(1)
        self._send_slow(wr, n)

    def _send_slow(self, wr, n):
        """The last SEND not done or the last command not taken yet: poll (bounded; sleeping 1 ms
        between polls after the first few), recover from a SEND_OK that never comes, drop a frame
        at once while the link is down (no SEND_OK then: ESP-IDF's W5500 driver does the same)."""
        c = self._cnt
        clock = self.clock
        ch = self._txc
        r = ch[1]
        o_ir = ch[2][0]
        o_cr = ch[2][1]
        pending = self._tx_pending
        polls = 0
        start = clock.ticks_ms()
        while True:
            self._run(ch)
            polls += 1
            if pending:
                ir = r[o_ir]
                if ir & (_IR_SENDOK | _IR_TIMEOUT):
                    pending = False
                    if not ir & _IR_SENDOK:
                        c[_TX_TIMEOUTS] += 1
                elif polls == 1 and not self.link_up():
                    c[_TX_LINK_DOWN] += 1
                    return
            if not pending and not r[o_cr]:
                break
            if polls >= _MAX_POLLS or (polls > _SPIN_POLLS and
                                       ticks_diff(clock.ticks_ms(), start) >= _TX_WAIT_MS):
                if pending:
                    # no SEND_OK for the last frame: count it, restart socket 0, try once more
                    # (the frame, still in _dtx or tx_buffer, is written again: the reopen
                    # emptied the chip's buffer; with nothing pending the retry cannot come back
                    # here)
                    c[_TX_TIMEOUTS] += 1
                    self._reopen()
                    self._send_sync(memoryview(self._dtx)[_DTX_OFF:] if self._by_dma
                                    else self.tx_buffer, n)
                    return
                c[_TX_NO_SPACE] += 1
                self._tx_pending = pending
                return
            if polls > _SPIN_POLLS:
                clock.sleep_ms(1)
        self._run(self._txg)
        self._wr = wr
        self._tx_pending = True
        c[_TX_FRAMES] += 1

    def wait(self, timeout_ms):
        """Up to timeout_ms until a frame may be waiting: INTn low with the INT pin, else 1 ms."""
        clock = self.clock
        pin = self._int
        if self._rx_more or self._avail or self._ahead:
            self._rx_more = False
            return True
        if pin is None:
            clock.sleep_ms(1 if timeout_ms >= 1 else 0)
            return True
        for _ in range(timeout_ms if timeout_ms > 0 else 0):
            if not pin.value():
                return True
            clock.sleep_ms(1)
        return not pin.value()
