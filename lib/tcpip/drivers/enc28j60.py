"""ENC28J60 (Microchip stand-alone 10BASE-T Ethernet controller with SPI) as a tcpip device.

    Enc28j60(spi, cs, reset=None, mac=None, int_pin=None, full_duplex=True, multicast=False,
             clock=None)

The NIC contract of docs/ARCHITECTURE.md: `mac`, `mtu`, `recv_into(buf) -> n`, `send(buf, n)`,
`wait(ms)`, plus `link_up()` and `counters` (tcpip.counters.Counters: by name, snapshot()).
`spi` is machine.SPI-like (mode 0, up to 20 MHz), `cs`/`reset` machine.Pin-like outputs (idle
high) or callables pin(v). Raises OSError(ENODEV) when no chip answers and OSError(ETIMEDOUT)
when its clock or MII never becomes ready. recv_into and send never raise: every failure is counted.

full_duplex must match the link partner. The ENC28J60 does not auto-negotiate: a partner that
auto-negotiates detects a 10BASE-T link without negotiation pages and falls back to half duplex
(IEEE 802.3 parallel detection), so pass full_duplex=False unless the partner port is forced to
10 Mbit/s full duplex. The MAC (MACON3.FULDPX, MABBIPG, MAIPG, MACON4.DEFER) and the PHY
(PHCON1.PDPXMD) are always set together (DS 6.6).

A chip that resets by itself (brown-out, ESD, a RESET line glitch) comes back with RXEN off, bank 0
and no MAC set-up, and the cached bank/ERDPT/ETXND are wrong. It is found without any extra SPI
transaction per frame: by a look at ECON1 and one MAADR byte (_chip_ok) once a second from an idle
recv_into (so within 1 s plus one poll), after a transmit that fails, and on a receive status
vector that makes no sense; then the whole bring-up runs again (counters.chip_resets; a chip that
does not answer then is counted in chip_reset_failures, never raised) and a failed send is retried.

References: DS = ENC28J60 data sheet DS39662E, errata = ENC28J60 Rev. B7 Silicon Errata DS80349
(its items are named by their "Module:" since the numbering differs between errata revisions),
Linux drivers/net/ethernet/microchip/enc28j60.c for the same workarounds.

Memory layout (errata Module: Memory, ERXST must be 0000h): receive ring 0000h-19FFh (6.5 KB),
transmit area 1A00h-1FFFh: control byte, up to 1514 frame bytes, the 7-byte status vector.

SPI cost per frame (what tests/host/test_enc28j60.py asserts; one transaction = one CS-low period):
receive 7 transactions, 19 bytes + the byte count (frame + 4 CRC, + 1 pad when odd); a burst of
waiting frames 4 transactions (13 bytes + the byte count) each after the first. Transmit 10 transactions, 20 bytes + the
frame (8 and 16 when the length repeats). Bank switches: at most 2 per received and per sent
frame, none of them extra transactions on the transmit path (folded into the BFS/BFC of ECON1).
"""
try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

_TYPE_CHECKING = const(False)  # True for the type checker only: `if` blocks under it compile to nothing

# counters: indexes into self._cnt (NAMES below; tests/host/test_counters.py)
_RX_FRAMES = const(0)
_TX_FRAMES = const(1)
_RX_ERRORS = const(2)
_RX_BAD_STATUS = const(3)
_RX_BAD_LENGTH = const(4)
_RX_BAD_POINTER = const(5)
_RX_RESETS = const(6)
_TX_RETRIES = const(7)
_TX_LATE_COLLISIONS = const(8)
_TX_TIMEOUTS = const(9)
_TX_FAILURES = const(10)
_BANK_SWITCHES = const(11)
_SPI_TRANSACTIONS = const(12)
_CHIP_RESETS = const(13)
_CHIP_RESET_FAILURES = const(14)

from tcpip import errors
from tcpip.clock import Clock
from tcpip.mem import copy
from tcpip.drivers import default_mac
from tcpip.counters import Counters

# SPI opcodes (DS Table 4-1)
_RCR = const(0x00)
_RBM = const(0x3A)
_WCR = const(0x40)
_WBM = const(0x7A)
_BFS = const(0x80)
_BFC = const(0xA0)
_SRC = const(0xFF)

# Registers: bits 4-0 address, bits 6-5 bank, bit 7 MAC/MII (a read shifts out a dummy byte
# first, DS 4.2.1). EIE..ECON1 (1Bh-1Fh) are in every bank (DS 3.1).
_MACMII = const(0x80)
_ERDPTL = const(0x00)    # bank 0
_ERDPTH = const(0x01)
_EWRPTL = const(0x02)
_EWRPTH = const(0x03)
_ETXSTL = const(0x04)
_ETXSTH = const(0x05)
_ETXNDL = const(0x06)
_ETXNDH = const(0x07)
_ERXSTL = const(0x08)
_ERXSTH = const(0x09)
_ERXNDL = const(0x0A)
_ERXNDH = const(0x0B)
_ERXRDPTL = const(0x0C)
_ERXRDPTH = const(0x0D)
_EIE = const(0x1B)       # common
_EIR = const(0x1C)
_ESTAT = const(0x1D)
_ECON2 = const(0x1E)
_ECON1 = const(0x1F)
_ERXFCON = const(0x38)   # bank 1
_EPKTCNT = const(0x39)
_MACON1 = const(0xC0)    # bank 2, MAC/MII
_MACON3 = const(0xC2)
_MACON4 = const(0xC3)
_MABBIPG = const(0xC4)
_MAIPGL = const(0xC6)
_MAIPGH = const(0xC7)
_MAMXFLL = const(0xCA)
_MAMXFLH = const(0xCB)
_MICMD = const(0xD2)
_MIREGADR = const(0xD4)
_MIWRL = const(0xD6)
_MIWRH = const(0xD7)
_MIRDL = const(0xD8)
_MIRDH = const(0xD9)
_MAADR5 = const(0xE0)    # bank 3, MAC/MII; MAADR1 is the first byte on the wire (DS Table 3-1)
_MAADR6 = const(0xE1)
_MAADR3 = const(0xE2)
_MAADR4 = const(0xE3)
_MAADR1 = const(0xE4)
_MAADR2 = const(0xE5)
_MISTAT = const(0xEA)
_MAADR = (_MAADR1, _MAADR2, _MAADR3, _MAADR4, _MAADR5, _MAADR6)
_EREVID = const(0x72)    # bank 3, ETH

# bits
_EIE_INTIE = const(0x80)
_EIE_PKTIE = const(0x40)
_EIR_TXIF = const(0x08)
_EIR_TXERIF = const(0x02)
_EIR_RXERIF = const(0x01)
_ESTAT_LATECOL = const(0x10)
_ESTAT_TXABRT = const(0x02)
_ESTAT_CLKRDY = const(0x01)
_ECON2_AUTOINC = const(0x80)
_ECON2_PKTDEC = const(0x40)
_ECON1_TXRST = const(0x80)
_ECON1_RXRST = const(0x40)
_ECON1_TXRTS = const(0x08)
_ECON1_RXEN = const(0x04)
_ECON1_BSEL = const(0x03)
_ERXFCON_UCEN = const(0x80)
_ERXFCON_CRCEN = const(0x20)
_ERXFCON_MCEN = const(0x02)
_ERXFCON_BCEN = const(0x01)
_MACON1_TXPAUS = const(0x08)
_MACON1_RXPAUS = const(0x04)
_MACON1_MARXEN = const(0x01)
_MACON3_PADCFG0 = const(0x20)    # pad short frames to 60 bytes and add the CRC
_MACON3_TXCRCEN = const(0x10)
_MACON3_FRMLNEN = const(0x02)
_MACON3_FULDPX = const(0x01)
_MACON4_DEFER = const(0x40)
_MICMD_MIIRD = const(0x01)
_MISTAT_BUSY = const(0x01)

# PHY registers (through the MII, DS 3.3)
_PHCON1 = const(0x00)
_PHID1 = const(0x02)
_PHCON2 = const(0x10)
_PHSTAT2 = const(0x11)
_PHCON1_PDPXMD = const(0x0100)
_PHCON2_HDLDIS = const(0x0100)
_PHSTAT2_LSTAT = const(0x0400)

# buffer layout
_RX_START = const(0x0000)
_RX_END = const(0x19FF)          # odd, so ERXRDPT may point at it
_RX_SIZE = const(0x1A00)
_TX_START = const(0x1A00)
_MAX_FRAME = const(1514)         # without the CRC the chip appends
_MAX_RX_COUNT = const(1518)      # MAMXFL: frame + CRC
_MIN_RX_COUNT = const(18)        # an Ethernet header and the CRC

# receive status vector byte 4 (bits 16-23): bit 23 Received OK (DS Table 7-3)
_RSV4_RX_OK = const(0x80)
# transmit status vector byte 3 (bits 24-31): bit 29 Late Collision (DS Table 7-1)
_TSV3_LATE_COLLISION = const(0x20)

# bounds of every wait
_RESET_WAIT_MS = const(2)        # errata Module: Reset: wait at least 1 ms after SRC
_CLKRDY_POLLS = const(50)        # then poll CLKRDY, 1 ms apart
_MII_POLLS = const(64)           # MISTAT.BUSY, 10.24 us per operation (DS 3.3.1)
_TX_FAST_POLLS = const(32)       # EIR polls back to back (a 1514-byte frame takes 1.2 ms)
_TX_POLLS = const(96)            # then 1 ms apart, up to _TX_TIMEOUT_MS
_TX_TIMEOUT_MS = const(50)
_TX_RETRY_MAX = const(16)        # late collisions / stalls, as Linux MAX_TX_RETRYCOUNT
_RX_TRIES = const(8)             # frames examined per recv_into when some are dropped
_CHECK_MS = const(1000)          # idle recv_into looks for a chip reset this often

# variable-length transfers without slicing (a memoryview slice allocates on MicroPython): the
# frame's first multiple of _G bytes go through a cached view of the caller's buffer, the rest
# through views of a small scratch buffer
_G = const(64)
_TAIL = const(_G + 5)            # up to 63 frame bytes + 4 CRC + 1 pad
_VCACHE = const(4)               # buffers whose views are kept (rx, tx, ARP frames)


# the driver's counters (nic.counters; the stack's own are stack.counters), in index order
NAMES = (
    "rx_frames tx_frames rx_errors rx_bad_status rx_bad_length rx_bad_pointer rx_resets "
    "tx_retries tx_late_collisions tx_timeouts tx_failures bank_switches spi_transactions "
    "chip_resets chip_reset_failures"
)


class _CallablePin:
    """A pin given as a callable pin(v) (the driver contract allows it) seen as Pin.value(v)."""

    def __init__(self, fn):
        self.value = fn


def _as_pin(pin):
    return pin if pin is None or hasattr(pin, "value") else _CallablePin(pin)


class Enc28j60:
    # the receive window the chip can hold when the host falls behind: its 6.5 KB receive buffer
    # takes four full frames (bring_up sizes the default receive ring from this)
    RX_WINDOW = 4096

    def __init__(self, spi, cs, reset=None, mac=None, int_pin=None, full_duplex=True,
                 multicast=False, clock=None):
        cs = _as_pin(cs)
        if _TYPE_CHECKING:
            assert cs is not None  # a chip select is required (reset may be None)
        reset = _as_pin(reset)
        self._spi = spi
        self._cs = cs
        self._int = int_pin
        self.clock = clock if clock is not None else Clock()
        self.full_duplex = bool(full_duplex)
        self.multicast = bool(multicast)
        self.mac = bytes(mac) if mac is not None else default_mac()
        if len(self.mac) != 6:
            raise ValueError("mac must be 6 bytes")
        self.mtu = 1500
        self.counters = Counters(NAMES)
        self._cnt = self.counters.v
        self.revision = 0
        # preallocated transfer buffers
        self._c1 = bytearray(1)           # SRC
        self._c1[0] = _SRC
        self._c2 = bytearray(2)           # one-byte commands: WCR/BFS/BFC opcode + data
        self._w2 = bytearray(2)           # RCR of an ETH register
        self._r2 = bytearray(2)
        self._w3 = bytearray(3)           # RCR of a MAC/MII register: opcode, dummy, value
        self._r3 = bytearray(3)
        self._rbm7 = bytearray(7)         # RBM opcode + 6 clocks for the receive status vector
        self._rbm7[0] = _RBM
        self._rsv7 = bytearray(7)
        self._rbm8 = bytearray(8)         # RBM opcode + 7 clocks for the transmit status vector
        self._rbm8[0] = _RBM
        self._tsv8 = bytearray(8)
        self._wbm2 = bytearray(2)         # WBM opcode + the per-packet control byte 00h
        self._wbm2[0] = _WBM
        self._tail = bytearray(_TAIL)
        tmv = memoryview(self._tail)
        self._tailv = [tmv[:k] for k in range(_TAIL + 1)]
        self._vbufs = [None] * _VCACHE
        self._vlists: list = [None] * _VCACHE  # the views of _vbufs[i] (_views)
        self._vnext = 0
        self._bank = 0
        self._next = _RX_START            # where the next received frame's status vector is
        self._erdpt = -1                  # ERDPT as the chip has it, -1 unknown
        self._etxnd = -1
        self._pending = 0                 # frames known to wait (EPKTCNT read earlier, minus read)
        self._tx_busy = False
        self._checked = 0                 # ticks of the last chip-reset check
        self._probe = -1                  # a MAADR byte that is not 00h (its reset value)
        for i in range(6):
            if self.mac[i]:
                self._probe = i
                break
        cs.value(1)
        if reset is not None:
            reset.value(0)
            self.clock.sleep_ms(1)        # RESET low: the data sheet asks for 400 ns
            reset.value(1)
            self.clock.sleep_ms(1)        # oscillator start-up timer, 300 us (DS 2.2)
        self._init()

    # -- SPI primitives --------------------------------------------------------------------------
    def _cmd(self, b0, b1):
        c = self._c2
        c[0] = b0
        c[1] = b1
        cs = self._cs
        cs.value(0)
        self._spi.write(c)
        cs.value(1)
        self._cnt[_SPI_TRANSACTIONS] += 1

    def _switch(self, bank):
        """Select a bank with BFC/BFS on ECON1 (which every bank has), only the bits that change."""
        cur = self._bank
        if cur < 0:
            self._cmd(_BFC | _ECON1, _ECON1_BSEL)
            cur = 0
        clr = cur & ~bank
        st = bank & ~cur
        if clr:
            self._cmd(_BFC | _ECON1, clr)
        if st:
            self._cmd(_BFS | _ECON1, st)
        self._bank = bank
        self._cnt[_BANK_SWITCHES] += 1

    def _rcr(self, reg):
        if (reg & 0x1F) < 0x1B:
            b = (reg >> 5) & 3
            if b != self._bank:
                self._switch(b)
        if reg & _MACMII:
            w = self._w3
            r = self._r3
            w[0] = _RCR | (reg & 0x1F)
            k = 2
        else:
            w = self._w2
            r = self._r2
            w[0] = _RCR | (reg & 0x1F)
            k = 1
        cs = self._cs
        cs.value(0)
        self._spi.write_readinto(w, r)
        cs.value(1)
        self._cnt[_SPI_TRANSACTIONS] += 1
        return r[k]

    def _wcr(self, reg, v):
        if (reg & 0x1F) < 0x1B:
            b = (reg >> 5) & 3
            if b != self._bank:
                self._switch(b)
        self._cmd(_WCR | (reg & 0x1F), v & 0xFF)

    def _wcr16(self, reg_lo, v):
        # low byte first: ERXRDPT takes both bytes when the high byte is written (DS 7.2.4)
        self._wcr(reg_lo, v & 0xFF)
        self._wcr(reg_lo + 1, v >> 8)

    def _views(self, buf):
        """Memoryviews buf[0:_G], buf[0:2*_G], ... cached for the last few buffers."""
        vb = self._vbufs
        for i in range(_VCACHE):
            if vb[i] is buf:
                return self._vlists[i]
        # a plain loop: a comprehension here would make mv a closure cell, allocated on every call
        mv = memoryview(buf)
        lst = []
        for k in range(_G, len(buf) + 1, _G):
            lst.append(mv[:k])
        i = self._vnext
        self._vnext = (i + 1) % _VCACHE
        vb[i] = buf
        self._vlists[i] = lst
        return lst

    # -- PHY through the MII (DS 3.3) ------------------------------------------------------------
    def _mii_wait(self):
        for _ in range(_MII_POLLS):
            if not (self._rcr(_MISTAT) & _MISTAT_BUSY):
                return True
        return False

    def _phy_read(self, addr):
        """The PHY register, or -1 when MISTAT.BUSY never clears."""
        self._wcr(_MIREGADR, addr)
        self._wcr(_MICMD, _MICMD_MIIRD)
        ok = self._mii_wait()
        self._wcr(_MICMD, 0)
        if not ok:
            return -1
        return self._rcr(_MIRDL) | (self._rcr(_MIRDH) << 8)

    def _phy_write(self, addr, v):
        self._wcr(_MIREGADR, addr)
        self._wcr(_MIWRL, v & 0xFF)
        self._wcr(_MIWRH, v >> 8)         # the write starts here
        if not self._mii_wait():
            raise OSError(errors.ETIMEDOUT, "ENC28J60 MII stays busy")

    # -- bring-up --------------------------------------------------------------------------------
    def _init(self):
        clock = self.clock
        cs = self._cs
        cs.value(0)
        self._spi.write(self._c1)
        cs.value(1)
        self._cnt[_SPI_TRANSACTIONS] += 1
        self._bank = 0                    # a reset clears ECON1
        # errata Module: Reset: after SRC the PHY clock stops but ESTAT.CLKRDY is not cleared;
        # wait at least 1 ms (Linux: udelay(2000)), then poll CLKRDY as the data sheet says (DS 2.2)
        clock.sleep_ms(_RESET_WAIT_MS)
        rev = self._rcr(_EREVID)          # an ETH register: readable before CLKRDY
        if rev == 0x00 or rev == 0xFF:
            raise OSError(errors.ENODEV, "ENC28J60 not found (EREVID 0x%02x)" % rev)
        self.revision = rev
        for _ in range(_CLKRDY_POLLS):
            if self._rcr(_ESTAT) & _ESTAT_CLKRDY:
                break
            clock.sleep_ms(1)
        else:
            raise OSError(errors.ETIMEDOUT, "ENC28J60 clock not ready (ESTAT.CLKRDY)")
        self._wcr(_ECON1, 0)
        self._wcr(_ECON2, _ECON2_AUTOINC)
        # receive ring at 0000h (errata Module: Memory), ERXRDPT odd (errata): at ERXND
        self._wcr16(_ERXSTL, _RX_START)
        self._wcr16(_ERXNDL, _RX_END)
        self._wcr16(_ERXRDPTL, _RX_END)
        self._wcr16(_ETXSTL, _TX_START)
        self._wcr16(_ETXNDL, _TX_START)
        self._etxnd = _TX_START
        # read a pointer back: a bus that answers EREVID by accident does not do this
        got = self._rcr(_ERXNDL) | (self._rcr(_ERXNDH) << 8)
        if got != _RX_END:
            raise OSError(errors.ENODEV, "ENC28J60 not answering (ERXND read back 0x%04x)" % got)
        self._next = _RX_START
        self._erdpt = -1
        self._pending = 0
        self._tx_busy = False
        # receive filter (DS 8.0): unicast to us OR broadcast, AND a good CRC (as Linux)
        fc = _ERXFCON_UCEN | _ERXFCON_CRCEN | _ERXFCON_BCEN
        if self.multicast:
            fc |= _ERXFCON_MCEN
        self._wcr(_ERXFCON, fc)
        # MAC (DS 6.5); duplex in the MAC and the PHY together (DS 6.6)
        full = self.full_duplex
        # pause frames are full-duplex flow control (DS Register 6-1): only then TXPAUS/RXPAUS
        self._wcr(_MACON1, _MACON1_MARXEN | (_MACON1_TXPAUS | _MACON1_RXPAUS if full else 0))
        self._wcr(_MACON3, _MACON3_PADCFG0 | _MACON3_TXCRCEN | _MACON3_FRMLNEN
                  | (_MACON3_FULDPX if full else 0))
        self._wcr(_MACON4, 0 if full else _MACON4_DEFER)   # DEFER for IEEE 802.3 (Register 6-3)
        self._wcr16(_MAMXFLL, _MAX_RX_COUNT)
        self._wcr(_MABBIPG, 0x15 if full else 0x12)      # back-to-back gap, 9.6 us (Register 6-4)
        self._wcr(_MAIPGL, 0x12)                          # non-back-to-back gap (DS 6.5)
        if not full:
            self._wcr(_MAIPGH, 0x0C)
        m = self.mac
        self._wcr(_MAADR1, m[0])
        self._wcr(_MAADR2, m[1])
        self._wcr(_MAADR3, m[2])
        self._wcr(_MAADR4, m[3])
        self._wcr(_MAADR5, m[4])
        self._wcr(_MAADR6, m[5])
        # PHY: PDPXMD as the MAC (DS 6.6); PHCON2.HDLDIS: no loopback of our own frames in half
        # duplex (ignored in full duplex), as Linux sets it
        self._phy_write(_PHCON1, _PHCON1_PDPXMD if full else 0)
        self._phy_write(_PHCON2, _PHCON2_HDLDIS)
        got = self._phy_read(_PHCON1)
        if got < 0 or (got & _PHCON1_PDPXMD) != (_PHCON1_PDPXMD if full else 0):
            raise OSError(errors.EIO, "ENC28J60 PHCON1 read back 0x%04x" % (got & 0xFFFF))
        # interrupts: none, or packet-pending as a wake-up hint for wait() (PKTIF is unreliable,
        # errata Module: Interrupts, so EPKTCNT stays the truth)
        self._cmd(_BFC | _EIR, 0x7B)
        self._wcr(_EIE, (_EIE_INTIE | _EIE_PKTIE) if self._int is not None else 0)
        # enable reception (DS 7.2.1); bank 1 (EPKTCNT) is the home bank from here on
        self._switch(1)
        self._cmd(_BFS | _ECON1, _ECON1_RXEN)
        self._checked = clock.ticks_ms()

    # -- a chip that reset by itself -------------------------------------------------------------
    def _chip_ok(self):
        """False when the chip has reset behind our back (brown-out, ESD, a RESET glitch).

        A reset clears ECON1 (RXEN, BSEL) and the MAC address (DS Table 3-2): ECON1 (every bank)
        must have RXEN and the bank we think is selected, and one MAADR byte its value; 2 to 4
        transactions, run once a second when idle and after a failed transmit or a corrupt
        receive status vector, never per frame."""
        e = self._rcr(_ECON1)
        if not (e & _ECON1_RXEN):
            return False
        bank = self._bank
        if bank >= 0 and (e & _ECON1_BSEL) != bank:
            return False
        k = self._probe
        if k >= 0:
            ok = self._rcr(_MAADR[k]) == self.mac[k]
            if bank >= 0:
                self._switch(bank)
            return ok
        return True

    def _chip_reset(self):
        """Forget every cached chip state and run the whole bring-up again (as Linux's
        restart_work after a TX timeout: enc28j60_net_close/open -> enc28j60_hw_init). A chip
        that does not answer is counted (chip_reset_failures), never raised."""
        c = self._cnt
        c[_CHIP_RESETS] += 1
        try:
            self._cs.value(1)
            self._bank = -1
            self._erdpt = -1
            self._etxnd = -1
            self._pending = 0
            self._tx_busy = False
            self._init()
            return True
        except Exception:
            self._recover()
            self._checked = self.clock.ticks_ms()
            c[_CHIP_RESET_FAILURES] += 1
            return False

    def _check(self):
        """The chip-reset check; True when the chip had to be (and could be) set up again."""
        try:
            if self._chip_ok():
                return False
        except Exception:
            self._recover()
        return self._chip_reset()

    # -- receive ---------------------------------------------------------------------------------
    def recv_into(self, buf):
        """One frame (without CRC) into buf; 0 when none waits. Never raises."""
        try:
            for _ in range(_RX_TRIES):
                n = self._recv_one(buf)
                if n >= 0:
                    return n
            return 0
        except Exception:
            self._recover()
            self._cnt[_RX_ERRORS] += 1
            return 0

    def _recv_one(self, buf):
        """n > 0 a frame, 0 none waiting, -1 one was dropped (look at the next)."""
        c = self._cnt
        if self._pending == 0:
            # errata Module: Interrupts: EIR.PKTIF is unreliable; EPKTCNT counts waiting frames
            k = self._rcr(_EPKTCNT)
            if k == 0:
                clock = self.clock
                now = clock.ticks_ms()
                if clock.ticks_diff(now, self._checked) >= _CHECK_MS:
                    self._checked = now
                    self._check()
                return 0
            self._pending = k
        self._pending -= 1
        pos = self._next
        if self._bank != 0:
            self._switch(0)
        if self._erdpt != pos:
            self._wcr16(_ERDPTL, pos)
        spi = self._spi
        cs = self._cs
        cs.value(0)
        # one RBM transaction: the receive status vector (DS 7.2.2), and if it is sane the frame,
        # its CRC and the pad byte, so ERDPT ends at the next frame (AUTOINC wraps at ERXND)
        r = self._rsv7
        spi.write_readinto(self._rbm7, r)
        nxt = r[1] | (r[2] << 8)
        count = r[3] | (r[4] << 8)
        n = count - 4
        if (nxt & 1) or nxt > _RX_END:
            cs.value(1)
            c[_SPI_TRANSACTIONS] += 1
            c[_RX_ERRORS] += 1
            c[_RX_BAD_POINTER] += 1
            if self._check():
                return 0                  # a chip reset, not a lost ring: all set up again
            self._rx_reset()
            return -1
        want = pos + 6 + count + (count & 1)
        if want > _RX_END:
            want -= _RX_SIZE
        ok = 0
        if not (r[5] & _RSV4_RX_OK):
            c[_RX_BAD_STATUS] += 1
        elif count < _MIN_RX_COUNT or count > _MAX_RX_COUNT or n > len(buf):
            c[_RX_BAD_LENGTH] += 1
        elif want != nxt:
            c[_RX_BAD_POINTER] += 1         # count and next pointer disagree: trust neither frame
        else:
            ok = 1
        if ok:
            q = n & ~(_G - 1)
            if q:
                spi.readinto(self._views(buf)[q // _G - 1])
            t = n - q
            spi.readinto(self._tailv[t + 4 + (count & 1)])
            copy(buf, q, self._tail, 0, t)
            self._erdpt = nxt
        else:
            self._erdpt = -1
        cs.value(1)
        c[_SPI_TRANSACTIONS] += 1
        if not ok and self._check():
            return 0                      # a stale status vector of a chip that reset
        # free the space: ERXRDPT = next - 1, always odd (errata Module: Memory), ERXND for ERXST
        rd = nxt - 1 if nxt != _RX_START else _RX_END
        self._wcr16(_ERXRDPTL, rd)
        self._cmd(_BFS | _ECON2, _ECON2_PKTDEC)
        self._next = nxt
        if ok:
            c[_RX_FRAMES] += 1
            return n
        c[_RX_ERRORS] += 1
        return -1

    def _rx_reset(self):
        """The receive logic lost its place: reset it and start the ring again (as Linux)."""
        self._cnt[_RX_RESETS] += 1
        self._cmd(_BFC | _ECON1, _ECON1_RXEN)
        self._cmd(_BFS | _ECON1, _ECON1_RXRST)
        self._cmd(_BFC | _ECON1, _ECON1_RXRST)
        # writing ERXST/ERXND puts the hardware write pointer back at ERXST (DS 3.2.1)
        self._wcr16(_ERXSTL, _RX_START)
        self._wcr16(_ERXNDL, _RX_END)
        self._wcr16(_ERXRDPTL, _RX_END)
        self._next = _RX_START
        self._erdpt = -1
        self._pending = 0
        # RXRST leaves EPKTCNT (buffer management) alone: count the lost frames off
        k = self._rcr(_EPKTCNT)
        for _ in range(k):
            self._cmd(_BFS | _ECON2, _ECON2_PKTDEC)
        self._cmd(_BFC | _EIR, _EIR_RXERIF)
        self._cmd(_BFS | _ECON1, _ECON1_RXEN)

    def _recover(self):
        """After an exception mid-transaction: CS up, forget cached chip state."""
        try:
            self._cs.value(1)
            self._bank = -1
            self._erdpt = -1
            self._etxnd = -1
            self._pending = 0
        except Exception:
            pass

    # -- transmit --------------------------------------------------------------------------------
    def send(self, buf, n):
        """Transmit buf[0:n] (a frame without CRC, at most 1514 bytes). Never raises."""
        try:
            r = self._send(buf, n)
            if r < 0 and self._check():
                r = self._send(buf, n)    # the chip had reset: configured again, once more
            if r:
                self._cnt[_TX_FAILURES] += 1
        except Exception:
            self._recover()
            self._cnt[_TX_FAILURES] += 1

    def _send(self, buf, n):
        """0 sent, 1 refused (bad length), -1 failed on the chip."""
        c = self._cnt
        if n <= 0 or n > _MAX_FRAME or n > len(buf):
            return 1
        if self._tx_busy:
            # a transmission left running: wait for TXRTS to clear, bounded, then force it
            for _ in range(_TX_FAST_POLLS):
                if not (self._rcr(_ECON1) & _ECON1_TXRTS):
                    break
            else:
                self._cmd(_BFC | _ECON1, _ECON1_TXRTS)
            self._tx_busy = False
        # errata Module: Transmit Logic: reset the transmit logic before every request; the BFC
        # that ends the reset also selects bank 0 (EWRPT, ETXND)
        self._cmd(_BFS | _ECON1, _ECON1_TXRST)
        self._cmd(_BFC | _ECON1, _ECON1_TXRST | _ECON1_BSEL)
        if self._bank != 0:
            self._cnt[_BANK_SWITCHES] += 1
        self._bank = 0
        self._wcr16(_EWRPTL, _TX_START)
        # WBM: per-packet control byte 00h (use MACON3), then the frame (DS 7.1)
        spi = self._spi
        cs = self._cs
        cs.value(0)
        spi.write(self._wbm2)
        q = n & ~(_G - 1)
        if q:
            spi.write(self._views(buf)[q // _G - 1])
        t = n - q
        if t:
            copy(self._tail, 0, buf, q, t)
            spi.write(self._tailv[t])
        cs.value(1)
        c[_SPI_TRANSACTIONS] += 1
        end = _TX_START + n               # ETXND: the last frame byte (control byte at ETXST)
        if end != self._etxnd:
            self._wcr16(_ETXNDL, end)
            self._etxnd = end
        for attempt in range(_TX_RETRY_MAX + 1):
            if attempt:
                self._cmd(_BFS | _ECON1, _ECON1_TXRST)
                self._cmd(_BFC | _ECON1, _ECON1_TXRST)
            # clearing TXRST may set TXERIF (errata Module: Transmit Logic): clear flags after it
            self._cmd(_BFC | _EIR, _EIR_TXIF | _EIR_TXERIF)
            # TXRTS; back to the home bank 1 in the same BFS when only BSEL0 has to be set
            self._tx_busy = True
            if self._bank == 0:
                self._cmd(_BFS | _ECON1, _ECON1_TXRTS | 1)
                self._bank = 1
                c[_BANK_SWITCHES] += 1
            else:
                self._cmd(_BFS | _ECON1, _ECON1_TXRTS)
            eir = self._tx_wait()
            if (eir & _EIR_TXIF) and not (eir & _EIR_TXERIF):
                self._tx_busy = False
                c[_TX_FRAMES] += 1
                return 0
            # an abort leaves TXRTS set (errata Module: PHY, late collisions): clear it
            self._cmd(_BFC | _ECON1, _ECON1_TXRTS)
            self._tx_busy = False
            retry = True
            if eir & _EIR_TXERIF:
                tsv = self._read_tsv(end)
                self._cmd(_BFC | _ESTAT, _ESTAT_TXABRT | _ESTAT_LATECOL)
                if tsv[4] & _TSV3_LATE_COLLISION:
                    c[_TX_LATE_COLLISIONS] += 1   # errata Module: PHY: retransmit in software
                else:
                    retry = False               # excessive collisions / deferral / giant
            else:
                c[_TX_TIMEOUTS] += 1              # TXRTS never done: the stalled logic, retried
            if not retry or attempt == _TX_RETRY_MAX:
                break
            c[_TX_RETRIES] += 1
        return -1

    def _tx_wait(self):
        """EIR once TXIF or TXERIF is set; 0 when neither comes within the bound."""
        clock = self.clock
        start = clock.ticks_ms()
        for i in range(_TX_POLLS):
            e = self._rcr(_EIR)
            if e & (_EIR_TXIF | _EIR_TXERIF):
                return e
            if i >= _TX_FAST_POLLS:
                if clock.ticks_diff(clock.ticks_ms(), start) >= _TX_TIMEOUT_MS:
                    break
                clock.sleep_ms(1)
        return 0

    def _read_tsv(self, end):
        """The 7-byte transmit status vector after ETXND (DS 7.1), at tsv[1:8]."""
        self._wcr16(_ERDPTL, end + 1)
        self._erdpt = -1
        cs = self._cs
        cs.value(0)
        self._spi.write_readinto(self._rbm8, self._tsv8)
        cs.value(1)
        self._cnt[_SPI_TRANSACTIONS] += 1
        return self._tsv8

    # -- link, waiting ---------------------------------------------------------------------------
    def link_up(self):
        """PHSTAT2.LSTAT (DS 3.3.4, not latching); False also when the MII does not answer."""
        try:
            v = self._phy_read(_PHSTAT2)
            return v >= 0 and bool(v & _PHSTAT2_LSTAT)
        except Exception:
            self._recover()
            return False

    def wait(self, timeout_ms):
        """Return when a frame may be waiting or timeout_ms has passed (polls EPKTCNT each ms)."""
        if self._pending:
            return
        clock = self.clock
        start = clock.ticks_ms()
        pin = self._int
        for _ in range(timeout_ms + 1 if timeout_ms > 0 else 1):
            if pin is not None and not pin.value():
                return
            try:
                if self._rcr(_EPKTCNT):
                    return
            except Exception:
                self._recover()
                return
            if clock.ticks_diff(clock.ticks_ms(), start) >= timeout_ms:
                return
            clock.sleep_ms(1)
