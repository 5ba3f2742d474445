# Enc28j60Model: a register-level model of the Microchip ENC28J60 (rev. B7) behind its SPI bus, for
# tests (CPython) and the virtual board (MicroPython unix port). MicroPython-compatible.
#
# SPI side (the chip-model contract, docs/ARCHITECTURE.md):
#   select() / deselect()     CS low / high: one transaction (counted)
#   xfer(wbuf, rbuf, n)       clock n bytes; wbuf None = idle fill 0x00, rbuf None = discard MISO
#   reset_pin(level)          hardware RESET line (low holds the chip in reset, the rising edge resets)
#   int_level()               INT output: 0 = asserted
# Wire side: `link` has recv_into(buf) -> n (a frame arriving from the network) and send(buf, n) (a
# frame the chip transmitted). Arriving frames are pulled into the receive ring at each select(),
# as long as a maximum-size frame still fits (so the link queues instead of the chip dropping);
# deliver() writes one frame at once like a frame on the wire (dropped and counted when full).
#
# What is modelled (DS39662E = datasheet, DS80349 = rev. B7 silicon errata):
# - opcodes RCR 000a_aaaa, RBM 0x3A, WCR 010a_aaaa, WBM 0x7A, BFS 100a_aaaa, BFC 101a_aaaa, SRC 0xFF
#   (DS 4.2); RCR of a MAC/MII register shifts out a dummy byte first (DS 4.2.1, Figure 4-4);
#   RCR/WCR/BFS/BFC take exactly one data byte, more before CS rises is a protocol violation;
#   BFS/BFC work on ETH registers only (DS 4.2.5/4.2.6)
# - 4 banks chosen by ECON1.BSEL1:0; EIE, EIR, ESTAT, ECON2, ECON1 (0x1B-0x1F) in every bank
# - 8 KB buffer; ERDPT/EWRPT auto-increment with ECON2.AUTOINC (set at reset); ERDPT wraps from ERXND
#   to ERXST and from 1FFFh to 0000h, EWRPT from 1FFFh to 0000h (DS 4.2.2, 4.2.4)
# - receive ring ERXST..ERXND: each frame stored at ERXWRPT as a 6-byte receive status vector (next
#   packet pointer, byte count including the 4 CRC bytes, status bits 16-31) then the frame (padded
#   to 60 bytes as a sender's MAC would) and its CRC; the next frame starts on an even address (DS
#   7.2.2); free space as DS Equation 7-1; ERXRDPTL is latched by the write of ERXRDPTH (DS 7.2.4);
#   EPKTCNT counts frames (max 255), ECON2.PKTDEC decrements it; ERXFCON filters (UCEN, BCEN, MCEN,
#   CRCEN, ANDOR; an all-zero ERXFCON takes everything); RSV bit 22 (type/length > 1500) is set for
#   every Ethernet II frame as the chip does
# - MII: MIREGADR, MICMD.MIIRD, MIRDL/H, MIWRL/H (the write starts at MIWRH), MISTAT.BUSY for a few
#   transactions (DS 3.3); PHY registers PHCON1, PHSTAT1, PHID1/2 (0x0083/0x1400), PHCON2, PHSTAT2
#   (LSTAT from set_link(), DPXSTAT = PDPXMD), PHIE, PHIR, PHLCON
# - transmit: on ECON1.TXRTS the per-packet control byte at ETXST and the frame ETXST+1..ETXND go to
#   the link (padding and CRC per MACON3 or the control byte's override), then the 7-byte transmit
#   status vector lands at ETXND+1, EIR.TXIF is set and TXRTS clears (DS 7.1); TXRST resets only the
#   transmit logic, RXRST only the receive logic (pointers, EPKTCNT and memory stay)
# Errata reproduced (each switchable; Enc28j60Model(errata=False) turns all off):
#   clkrdy_stale     after SRC, ESTAT.CLKRDY still reads 1 although the chip is not ready for
#                    READY_MS; MAC/MII/PHY accesses in that time are lost (DS80349 Module: Reset).
#                    With it off CLKRDY reads 0 until ready (the datasheet's behaviour).
#   pktif            EIR.PKTIF is never set (DS80349 Module: Interrupts: PKTIF unreliable)
#   erxrdpt_even     an even ERXRDPT corrupts the next stored frame's next packet pointer (DS80349
#                    Module: Memory: only odd ERXRDPT values)
#   erxwrpt_zero     writing ERXST/ERXND loads 0000h into the write pointer instead of ERXST
#                    (DS80349 Module: Memory: put the receive buffer at 0000h)
#   tx_stall         a transmit abort (late collision) leaves TXRTS set and the transmit logic
#                    stalled until TXRST (DS80349 Module: Transmit Logic); and every
#                    `tx_stall_every`-th transmit request not preceded by a TXRST pulse since the
#                    last one stalls as well ("may stall"); clearing TXRST sets EIR.TXERIF
#   late collisions  inject_late_collisions(k): the next k transmissions in half duplex abort with a
#                    late collision (DS80349 Module: PHY: link pulses taken for collisions)
# Misuse of the chip is counted in `violations` (last one in `last_violation`): bytes past a
# one-byte command, BFS/BFC on MAC/MII registers, writes to read-only registers, ERXST/ERXND moved
# while RXEN, MAC/MII/PHY access before the clock is ready, MIRD read while BUSY, a duplex mismatch
# (MACON3.FULDPX != PHCON1.PDPXMD) when reception or a transmission is enabled.
# Counters: spi_transactions, spi_bytes, rx_frames (stored), rx_dropped_full, rx_filtered,
# tx_frames, tx_aborts, tx_stalls, erxrdpt_writes, erxrdpt_even_writes, bank_changes, violations.
try:
    from micropython import const
except ImportError:
    def const(x):
        return x

try:
    from tcpip.mem import copy as _copy  # allocation-free (viper) on MicroPython
except ImportError:  # the model alone on a path without lib/
    def _copy(dst, doff, src, soff, n):
        for i in range(n):
            dst[doff + i] = src[soff + i]

MEM_SIZE = 8192
READY_MS = 1          # DS80349 Module: Reset: ready "at least 1 ms" after SRC
MII_BUSY_TRANSACTIONS = 2
REVISION_B7 = 0x06

# register indices: bank * 0x20 + address; the common registers 0x1B-0x1F live at their address
_ERDPTL = const(0x00)
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
_ERXWRPTL = const(0x0E)
_ERXWRPTH = const(0x0F)
_EIE = const(0x1B)
_EIR = const(0x1C)
_ESTAT = const(0x1D)
_ECON2 = const(0x1E)
_ECON1 = const(0x1F)
_ERXFCON = const(0x38)   # bank 1, 0x18
_EPKTCNT = const(0x39)   # bank 1, 0x19
_MACON1 = const(0x40)    # bank 2
_MACON3 = const(0x42)
_MACON4 = const(0x43)
_MABBIPG = const(0x44)
_MAIPGL = const(0x46)
_MAIPGH = const(0x47)
_MACLCON1 = const(0x48)
_MACLCON2 = const(0x49)
_MAMXFLL = const(0x4A)
_MAMXFLH = const(0x4B)
_MICMD = const(0x52)
_MIREGADR = const(0x54)
_MIWRL = const(0x56)
_MIWRH = const(0x57)
_MIRDL = const(0x58)
_MIRDH = const(0x59)
_MAADR5 = const(0x60)    # bank 3: MAADR5, MAADR6, MAADR3, MAADR4, MAADR1, MAADR2 (DS Table 3-1)
_MISTAT = const(0x6A)
_EREVID = const(0x72)

# bits
_ECON1_TXRST = const(0x80)
_ECON1_RXRST = const(0x40)
_ECON1_DMAST = const(0x20)
_ECON1_TXRTS = const(0x08)
_ECON1_RXEN = const(0x04)
_ECON2_AUTOINC = const(0x80)
_ECON2_PKTDEC = const(0x40)
_EIR_PKTIF = const(0x40)
_EIR_TXIF = const(0x08)
_EIR_TXERIF = const(0x02)
_EIR_RXERIF = const(0x01)
_EIE_INTIE = const(0x80)
_ESTAT_INT = const(0x80)
_ESTAT_LATECOL = const(0x10)
_ESTAT_TXABRT = const(0x02)
_ESTAT_CLKRDY = const(0x01)
_MACON3_TXCRCEN = const(0x10)
_MACON3_HFRMEN = const(0x04)
_MACON3_FULDPX = const(0x01)
_MICMD_MIIRD = const(0x01)
_MISTAT_BUSY = const(0x01)
_UCEN = const(0x80)
_ANDOR = const(0x40)
_CRCEN = const(0x20)
_MCEN = const(0x02)
_BCEN = const(0x01)

# PHY registers and bits
PHCON1 = const(0x00)
PHSTAT1 = const(0x01)
PHID1 = const(0x02)
PHID2 = const(0x03)
PHCON2 = const(0x10)
PHSTAT2 = const(0x11)
PHIE = const(0x12)
PHIR = const(0x13)
PHLCON = const(0x14)
_PHCON1_PRST = const(0x8000)
_PHCON1_PDPXMD = const(0x0100)
_PHSTAT1_PFDPX = const(0x1000)
_PHSTAT1_PHDPX = const(0x0800)
_PHSTAT1_LLSTAT = const(0x0004)
_PHSTAT2_LSTAT = const(0x0400)
_PHSTAT2_DPXSTAT = const(0x0200)

# opcodes (top three bits) and transaction states
_OP_RCR = const(0)
_OP_RBM = const(1)
_OP_WCR = const(2)
_OP_WBM = const(3)
_OP_BFS = const(4)
_OP_BFC = const(5)
_ST_OPCODE = const(0)
_ST_RCR_DUMMY = const(1)
_ST_RCR = const(2)
_ST_WCR = const(3)
_ST_BFS = const(4)
_ST_BFC = const(5)
_ST_RBM = const(6)
_ST_WBM = const(7)
_ST_DONE = const(8)
_ST_IGNORE = const(9)

_DUMMY = const(0xA5)   # what a MAC/MII read shifts out first: a reader taking it gets garbage

# receive status vector bits 16-31, as bytes 4 and 5
RSV4_CRC_ERROR = const(0x10)      # bit 20
RSV4_LEN_OUT_OF_RANGE = const(0x40)  # bit 22
RSV4_RX_OK = const(0x80)          # bit 23
RSV5_MULTICAST = const(0x01)      # bit 24
RSV5_BROADCAST = const(0x02)      # bit 25
# transmit status vector: byte 2 bit 7 = done (23), byte 3: 0x01 multicast, 0x02 broadcast,
# 0x10 excessive collisions (28), 0x20 late collision (29), 0x40 giant (30)
TSV2_DONE = const(0x80)
TSV3_LATE_COLLISION = const(0x20)
TSV3_GIANT = const(0x40)


def _make_crc_table():
    t = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0xEDB88320 if c & 1 else c >> 1
        t.append(c)
    return t


_CRC_TABLE = _make_crc_table()


def crc32(buf, n):
    """The Ethernet FCS of buf[0:n] (IEEE 802.3 CRC-32, sent low byte first)."""
    c = 0xFFFFFFFF
    t = _CRC_TABLE
    for i in range(n):
        c = t[(c ^ buf[i]) & 0xFF] ^ (c >> 8)
    return c ^ 0xFFFFFFFF


def _is_mac_mii(idx):
    # DS Table 3-1: bank 2 0x00-0x1A are MAC/MII; bank 3 MAADR (0x00-0x05) and MISTAT (0x0A)
    return (0x40 <= idx < 0x5B) or (0x60 <= idx <= 0x65) or idx == _MISTAT


_READ_ONLY = (_ERXWRPTL, _ERXWRPTH, _EPKTCNT, _MIRDL, _MIRDH, _MISTAT, _EREVID)


class _RealTime:
    """Milliseconds from the runtime when no clock is given (the virtual board)."""

    def __init__(self):
        import time
        self._t = time
        self._mp = hasattr(time, "ticks_ms")

    def ticks_ms(self):
        if self._mp:
            return self._t.ticks_ms()
        return int(self._t.monotonic() * 1000)

    def ticks_diff(self, a, b):
        if self._mp:
            return self._t.ticks_diff(a, b)
        return a - b


class Enc28j60Model:
    spi_modes = ((0, 0),)      # DS 4.1: SPI mode 0,0 only
    spi_max_hz = 20000000      # DS 4.1: up to 20 MHz

    def __init__(self, link=None, clock=None, revision=REVISION_B7, errata=True, full_duplex_strap=False):
        self.link = link
        self.clock = clock if clock is not None else _RealTime()
        self.revision = revision
        self.present = True          # False: no chip on the bus, MISO floats high (0xFF)
        self.full_duplex_strap = full_duplex_strap  # PHCON1.PDPXMD at reset (LEDB polarity, DS 2.6)
        self.errata_clkrdy_stale = errata
        self.errata_pktif = errata
        self.errata_erxrdpt_even = errata
        self.errata_erxwrpt_zero = errata
        self.errata_tx_stall = errata
        self.errata_txrst_txerif = errata
        self.tx_stall_every = 2 if errata else 0
        self.tx_delay = 0            # transactions between TXRTS and the end of the transmission
        self.mii_busy = MII_BUSY_TRANSACTIONS
        self.mem = bytearray(MEM_SIZE)
        self.regs = bytearray(128)
        self.phy = [0] * 32
        self._link_up = True
        self._rxframe = bytearray(1536)
        self._txframe = bytearray(1536)
        self._hdr = bytearray(8)
        self._hold_reset = False
        self.spi_transactions = 0
        self.spi_bytes = 0
        self.rx_frames = 0
        self.rx_dropped_full = 0
        self.rx_filtered = 0
        self.tx_frames = 0
        self.tx_aborts = 0
        self.tx_stalls = 0
        self.erxrdpt_writes = 0
        self.erxrdpt_even_writes = 0
        self.bank_changes = 0
        self.violations = 0
        self.last_violation = None
        self.resets = 0
        self._late_collisions = 0
        self._stall_next = False
        self._rsv_override = None
        self._selected = False
        self._state = _ST_OPCODE
        self._power_on()
        self.resets = 0               # counts resets after power-on (SRC and the RESET pin)

    # -- reset -------------------------------------------------------------------------------------
    def _power_on(self):
        self._system_reset(False)

    def _system_reset(self, spi_reset):
        """Register values after a reset (DS Table 3-2 / 11-1); buffer memory is kept."""
        r = self.regs
        for i in range(128):
            r[i] = 0
        self._w16(_ERDPTL, 0x05FA)
        self._w16(_ERXSTL, 0x05FA)
        self._w16(_ERXNDL, 0x1FFF)
        self._w16(_ERXRDPTL, 0x05FA)
        self._rdptl_latch = 0xFA
        r[_ECON2] = _ECON2_AUTOINC
        r[_ERXFCON] = _UCEN | _CRCEN | _BCEN
        r[_MAMXFLL] = 0xEE
        r[_MAMXFLH] = 0x05            # 1518
        r[_MACLCON1] = 0x0F
        r[_MACLCON2] = 0x37
        p = self.phy
        for i in range(32):
            p[i] = 0
        p[PHCON1] = _PHCON1_PDPXMD if self.full_duplex_strap else 0
        p[PHID1] = 0x0083
        p[PHID2] = 0x1400
        p[PHSTAT1] = _PHSTAT1_PFDPX | _PHSTAT1_PHDPX
        p[PHLCON] = 0x3422
        self._llstat = self._link_up
        self._bank = 0
        self._mii_busy_left = 0
        self._mii_pending = -1        # -1 none, 0 read, 1 write
        self._tx_pending = -1         # transactions left before the transmission completes
        self._tx_stalled = False
        self._txrst_since_tx = False
        self._tx_no_rst_count = 0
        self._rdpt_even_armed = False
        self._reset_at = self.clock.ticks_ms()
        self._clkrdy_lies = spi_reset and self.errata_clkrdy_stale
        self.resets += 1

    def _ready(self):
        return self.clock.ticks_diff(self.clock.ticks_ms(), self._reset_at) >= READY_MS

    def chip_reset(self):
        """A spontaneous reset (brown-out, ESD, a RESET line glitch): every register back to its
        reset value, ECON1.RXEN off, bank 0; buffer memory kept. The host is not told (tests)."""
        self._system_reset(False)

    def reset_pin(self, level):
        if not level:
            self._hold_reset = True
        elif self._hold_reset:
            self._hold_reset = False
            self._system_reset(False)

    # -- helpers -----------------------------------------------------------------------------------
    def _r16(self, lo):
        return self.regs[lo] | (self.regs[lo + 1] << 8)

    def _w16(self, lo, v):
        self.regs[lo] = v & 0xFF
        self.regs[lo + 1] = (v >> 8) & 0x1F

    def violation(self, why):
        self.violations += 1
        self.last_violation = why

    def peek(self, idx):
        """A register by index (bank * 0x20 + address, common ones at 0x1B-0x1F), no side effects."""
        return self.regs[idx]

    def peek16(self, lo):
        return self._r16(lo)

    # -- the link ----------------------------------------------------------------------------------
    def set_link(self, up):
        self._link_up = bool(up)
        if not up:
            self._llstat = False

    def link_is_up(self):
        return self._link_up

    def int_level(self):
        r = self.regs
        if (r[_EIE] & _EIE_INTIE) and (r[_EIE] & self._eir() & 0x7B):
            return 0
        return 1

    def _eir(self):
        r = self.regs
        v = r[_EIR] & ~_EIR_PKTIF
        if r[_EPKTCNT] and not self.errata_pktif:
            v |= _EIR_PKTIF
        return v

    def inject_late_collisions(self, k):
        """The next k transmissions in half duplex end in a late collision (abort, TXERIF)."""
        self._late_collisions = k

    def stall_next_tx(self):
        """The next transmit request never completes (TXRTS stays set) until TXRST is pulsed."""
        self._stall_next = True

    def corrupt_next_rsv(self, next_ptr=None, count=None, status=None):
        """Overwrite fields of the receive status vector of the next stored frame (tests)."""
        self._rsv_override = (next_ptr, count, status)

    # -- SPI ---------------------------------------------------------------------------------------
    def select(self):
        if self._selected:
            self.violation("select() while selected")
        self._selected = True
        self.spi_transactions += 1
        self._state = _ST_OPCODE
        if self._hold_reset or not self.present:
            return
        self._tick()
        self._pull()

    def deselect(self):
        if not self._selected:
            self.violation("deselect() while not selected")
        self._selected = False
        self._state = _ST_OPCODE
        if self._tx_pending == 0:
            self._tx_pending = -1
            self._transmit()

    def _tick(self):
        """Per transaction: MII and transmit progress (the model's notion of time on the chip)."""
        if self._mii_busy_left > 0:
            self._mii_busy_left -= 1
            if self._mii_busy_left == 0:
                self._mii_complete()
        if self._tx_pending > 0:
            self._tx_pending -= 1
            if self._tx_pending == 0:
                self._tx_pending = -1
                self._transmit()

    def xfer(self, wbuf, rbuf, n):
        self.spi_bytes += n
        if not self._selected or self._hold_reset or not self.present:
            if self.present and not self._hold_reset:
                self.violation("SPI clocked with CS high")
            if rbuf is not None:
                for i in range(n):
                    rbuf[i] = 0xFF
            return
        i = 0
        while i < n:
            st = self._state
            if st == _ST_RBM:
                i += self._rbm(rbuf, i, n - i)
                continue
            if st == _ST_WBM:
                i += self._wbm(wbuf, i, n - i)
                continue
            w = wbuf[i] if wbuf is not None else 0
            out = 0
            if st == _ST_OPCODE:
                self._opcode(w)
            elif st == _ST_RCR_DUMMY:
                out = _DUMMY
                self._state = _ST_RCR
            elif st == _ST_RCR:
                out = self._read(self._arg)
                self._state = _ST_DONE
            elif st == _ST_WCR:
                self._write(self._arg, w)
                self._state = _ST_DONE
            elif st == _ST_BFS:
                self._write(self._arg, self._read_raw(self._arg) | w)
                self._state = _ST_DONE
            elif st == _ST_BFC:
                self._write(self._arg, self._read_raw(self._arg) & ~w)
                self._state = _ST_DONE
            elif st == _ST_DONE:
                self.violation("byte after a one-byte command")
                self._state = _ST_IGNORE
            if rbuf is not None:
                rbuf[i] = out
            i += 1

    def _index(self, addr):
        return addr if addr >= 0x1B else (self._bank << 5) | addr

    def _opcode(self, b):
        if b == 0xFF:
            self._system_reset(True)
            self._state = _ST_DONE
            return
        op = b >> 5
        addr = b & 0x1F
        if op == _OP_RBM and addr == 0x1A:
            self._state = _ST_RBM
        elif op == _OP_WBM and addr == 0x1A:
            self._state = _ST_WBM
        elif op == _OP_RCR:
            idx = self._index(addr)
            self._arg = idx
            self._state = _ST_RCR_DUMMY if _is_mac_mii(idx) else _ST_RCR
        elif op == _OP_WCR:
            self._arg = self._index(addr)
            self._state = _ST_WCR
        elif op == _OP_BFS or op == _OP_BFC:
            idx = self._index(addr)
            if _is_mac_mii(idx):
                self.violation("BFS/BFC on MAC/MII register 0x%02x" % idx)
                self._state = _ST_IGNORE
                return
            self._arg = idx
            self._state = _ST_BFS if op == _OP_BFS else _ST_BFC
        else:
            self.violation("unknown opcode 0x%02x" % b)
            self._state = _ST_IGNORE

    # -- buffer memory -----------------------------------------------------------------------------
    def _rbm(self, rbuf, off, k):
        r = self.regs
        p = r[_ERDPTL] | (r[_ERDPTH] << 8)
        if not (r[_ECON2] & _ECON2_AUTOINC):
            if rbuf is not None:
                v = self.mem[p]
                for j in range(k):
                    rbuf[off + j] = v
            return k
        rxst = self._r16(_ERXSTL)
        rxnd = self._r16(_ERXNDL)
        done = 0
        while done < k:
            end = rxnd if p <= rxnd else 0x1FFF   # the next wrap point (DS 4.2.2)
            run = end - p + 1
            if run > k - done:
                run = k - done
            if rbuf is not None:
                _copy(rbuf, off + done, self.mem, p, run)
            done += run
            p += run
            if p == rxnd + 1:
                p = rxst
            elif p > 0x1FFF:
                p = 0
        r[_ERDPTL] = p & 0xFF
        r[_ERDPTH] = p >> 8
        return k

    def _wbm(self, wbuf, off, k):
        r = self.regs
        p = r[_EWRPTL] | (r[_EWRPTH] << 8)
        autoinc = r[_ECON2] & _ECON2_AUTOINC
        done = 0
        while done < k:
            run = k - done if autoinc else 1
            if p + run > MEM_SIZE:
                run = MEM_SIZE - p
            if wbuf is None:
                for j in range(run):
                    self.mem[p + j] = 0
            else:
                _copy(self.mem, p, wbuf, off + done, run)
            done += run
            if autoinc:
                p = (p + run) & 0x1FFF
        r[_EWRPTL] = p & 0xFF
        r[_EWRPTH] = p >> 8
        return k

    # -- registers ---------------------------------------------------------------------------------
    def _read_raw(self, idx):
        return self.regs[idx]

    def _read(self, idx):
        r = self.regs
        if _is_mac_mii(idx) and not self._ready():
            self.violation("MAC/MII register 0x%02x read before the clock is ready" % idx)
            return 0
        if idx == _ESTAT:
            v = r[_ESTAT] & ~(_ESTAT_CLKRDY | _ESTAT_INT)
            if self._ready() or self._clkrdy_lies:
                v |= _ESTAT_CLKRDY
            if not self.int_level():
                v |= _ESTAT_INT
            return v
        if idx == _EIR:
            return self._eir()
        if idx == _EREVID:
            return self.revision
        if idx == _MISTAT:
            return _MISTAT_BUSY if self._mii_busy_left > 0 else 0
        if (idx == _MIRDL or idx == _MIRDH) and self._mii_busy_left > 0:
            self.violation("MIRD read while MISTAT.BUSY")
        return r[idx]

    def _write(self, idx, v):
        r = self.regs
        v &= 0xFF
        if idx in _READ_ONLY:
            self.violation("write to read-only register 0x%02x" % idx)
            return
        if _is_mac_mii(idx) and not self._ready():
            self.violation("MAC/MII register 0x%02x written before the clock is ready" % idx)
            return
        if idx < 0x18 and (idx & 1):
            v &= 0x1F                 # pointer high bytes: 13-bit addresses (bits 7-5 read 0)
        if idx == _ECON1:
            self._write_econ1(v)
            return
        if idx == _ECON2:
            if v & _ECON2_PKTDEC:
                if r[_EPKTCNT]:
                    r[_EPKTCNT] -= 1
            r[_ECON2] = v & ~_ECON2_PKTDEC
            return
        if idx == _EIR:
            r[_EIR] = v & ~_EIR_PKTIF
            return
        if idx == _ESTAT:
            # only the clearable error bits change (LATECOL, TXABRT, BUFER)
            r[_ESTAT] = (r[_ESTAT] & ~0x52) | (v & 0x52)
            return
        if _ERXSTL <= idx <= _ERXNDH:
            if r[_ECON1] & _ECON1_RXEN:
                self.violation("ERXST/ERXND written while RXEN")
                return
            r[idx] = v
            # DS 3.2.1: writing them resets the write pointer to ERXST; errata: sometimes 0000h
            self._w16(_ERXWRPTL, 0 if self.errata_erxwrpt_zero else self._r16(_ERXSTL))
            return
        if idx == _ERXRDPTL:
            self._rdptl_latch = v     # DS 7.2.4: buffered until ERXRDPTH is written
            return
        if idx == _ERXRDPTH:
            r[_ERXRDPTL] = self._rdptl_latch
            r[_ERXRDPTH] = v & 0x1F
            self.erxrdpt_writes += 1
            if not (self._rdptl_latch & 1):
                self.erxrdpt_even_writes += 1
                if self.errata_erxrdpt_even:
                    self._rdpt_even_armed = True
            return
        if idx == _MICMD:
            if (v & _MICMD_MIIRD) and not (r[_MICMD] & _MICMD_MIIRD):
                self._mii_start(0)
            r[_MICMD] = v & 0x03
            return
        if idx == _MIWRH:
            r[_MIWRH] = v
            self._mii_start(1)
            return
        r[idx] = v

    def _write_econ1(self, v):
        r = self.regs
        old = r[_ECON1]
        if (old ^ v) & 0x03:
            self.bank_changes += 1
        self._bank = v & 0x03
        if v & _ECON1_DMAST:
            self.violation("DMA is not modelled")
            v &= ~_ECON1_DMAST
        r[_ECON1] = v
        if (v & _ECON1_TXRST) and not (old & _ECON1_TXRST):
            self._tx_stalled = False
            self._tx_pending = -1
            self._txrst_since_tx = True
        if (old & _ECON1_TXRST) and not (v & _ECON1_TXRST) and self.errata_txrst_txerif:
            r[_EIR] |= _EIR_TXERIF    # DS80349: clearing TXRST may set TXERIF
        if (v & _ECON1_RXEN) and not (old & _ECON1_RXEN):
            self._check_duplex("reception enabled")
        if (v & _ECON1_TXRTS) and not (old & _ECON1_TXRTS):
            self._tx_request()
        elif not (v & _ECON1_TXRTS) and (old & _ECON1_TXRTS):
            self._tx_pending = -1     # the host aborts the request

    def _check_duplex(self, what):
        mac_full = self.regs[_MACON3] & _MACON3_FULDPX
        phy_full = self.phy[PHCON1] & _PHCON1_PDPXMD
        if bool(mac_full) != bool(phy_full):
            self.violation("duplex mismatch (MACON3.FULDPX %d, PHCON1.PDPXMD %d) at %s"
                           % (1 if mac_full else 0, 1 if phy_full else 0, what))

    # -- MII / PHY ---------------------------------------------------------------------------------
    def _mii_start(self, kind):
        if not self._ready():
            self.violation("MII command before the clock is ready")
            return
        self._mii_pending = kind
        self._mii_busy_left = self.mii_busy
        if self.mii_busy == 0:
            self._mii_complete()

    def _mii_complete(self):
        r = self.regs
        addr = r[_MIREGADR] & 0x1F
        if self._mii_pending == 0:
            v = self.phy_read(addr)
            r[_MIRDL] = v & 0xFF
            r[_MIRDH] = v >> 8
        elif self._mii_pending == 1:
            self.phy_write(addr, r[_MIWRL] | (r[_MIWRH] << 8))
        self._mii_pending = -1

    def phy_read(self, addr):
        p = self.phy
        if addr == PHSTAT2:
            v = p[PHSTAT2] & ~(_PHSTAT2_LSTAT | _PHSTAT2_DPXSTAT)
            if self._link_up:
                v |= _PHSTAT2_LSTAT
            if p[PHCON1] & _PHCON1_PDPXMD:
                v |= _PHSTAT2_DPXSTAT
            return v
        if addr == PHSTAT1:
            v = p[PHSTAT1] & ~_PHSTAT1_LLSTAT
            if self._llstat:
                v |= _PHSTAT1_LLSTAT
            self._llstat = self._link_up   # LLSTAT latches low until read (DS 3.3.4)
            return v
        return p[addr]

    def phy_write(self, addr, v):
        if addr == PHCON1 and (v & _PHCON1_PRST):
            p = self.phy
            p[PHCON1] = _PHCON1_PDPXMD if self.full_duplex_strap else 0
            p[PHCON2] = 0
            return
        if addr == PHSTAT1 or addr == PHSTAT2 or addr == PHID1 or addr == PHID2:
            self.violation("write to read-only PHY register 0x%02x" % addr)
            return
        self.phy[addr] = v & 0xFFFF

    # -- receive -----------------------------------------------------------------------------------
    def _free_space(self):
        """DS Equation 7-1."""
        rxst = self._r16(_ERXSTL)
        rxnd = self._r16(_ERXNDL)
        wr = self._r16(_ERXWRPTL)
        rd = self._r16(_ERXRDPTL)
        if wr > rd:
            return (rxnd - rxst) - (wr - rd)
        if wr == rd:
            return rxnd - rxst
        return rd - wr - 1

    def _receiving(self):
        e = self.regs[_ECON1]
        return (e & _ECON1_RXEN) and not (e & _ECON1_RXRST) and self._link_up

    def _pull(self):
        link = self.link
        if link is None or not self._receiving():
            return
        for _ in range(255):
            if self.regs[_EPKTCNT] >= 255 or self._free_space() < 6 + 1518 + 1:
                return
            n = link.recv_into(self._rxframe)
            if not n:
                return
            self._store(self._rxframe, n, False)

    def deliver(self, frame, n=None, bad_crc=False):
        """A frame (without FCS) arrives on the wire now. Returns True when it was stored."""
        if n is None:
            n = len(frame)
        if not self._receiving() or not self.present:
            return False
        return self._store(frame, n, bad_crc)

    def _accept(self, f, n, bad_crc):
        fc = self.regs[_ERXFCON]
        if fc == 0:
            return True
        if bad_crc and (fc & _CRCEN):
            return False
        bcast = n >= 6 and f[0] == 0xFF and f[1] == 0xFF and f[2] == 0xFF and f[3] == 0xFF and f[4] == 0xFF and f[5] == 0xFF
        mcast = n >= 6 and (f[0] & 1) and not bcast
        r = self.regs
        ucast = n >= 6 and (f[0] == r[0x64] and f[1] == r[0x65] and f[2] == r[0x62]
                            and f[3] == r[0x63] and f[4] == r[0x60] and f[5] == r[0x61])
        matched = 0
        enabled = 0
        if fc & _UCEN:
            enabled += 1
            if ucast:
                matched += 1
        if fc & _BCEN:
            enabled += 1
            if bcast:
                matched += 1
        if fc & _MCEN:
            enabled += 1
            if mcast:
                matched += 1
        if fc & _ANDOR:
            return enabled > 0 and matched == enabled
        return matched > 0

    def _store(self, f, n, bad_crc):
        if n < 14 or n > 1514:
            self.rx_filtered += 1
            return False
        if not self._accept(f, n, bad_crc):
            self.rx_filtered += 1
            return False
        r = self.regs
        padded = n if n >= 60 else 60
        count = padded + 4
        need = 6 + count + (count & 1)
        if r[_EPKTCNT] >= 255 or need > self._free_space():
            self.rx_dropped_full += 1
            r[_EIR] |= _EIR_RXERIF
            return False
        rxst = self._r16(_ERXSTL)
        rxnd = self._r16(_ERXNDL)
        size = rxnd - rxst + 1
        pos = self._r16(_ERXWRPTL)
        nxt = pos + need
        if nxt > rxnd:
            nxt -= size
        status4 = RSV4_RX_OK
        if bad_crc:
            status4 = RSV4_CRC_ERROR
        if ((f[12] << 8) | f[13]) > 1500:
            status4 |= RSV4_LEN_OUT_OF_RANGE
        status5 = 0
        if f[0] & 1:
            status5 = RSV5_BROADCAST if (f[0] & f[1] & f[2] & f[3] & f[4] & f[5]) == 0xFF else RSV5_MULTICAST
        rsv_next = nxt
        rsv_count = count
        ov = self._rsv_override
        if ov is not None:
            self._rsv_override = None
            if ov[0] is not None:
                rsv_next = ov[0]
            if ov[1] is not None:
                rsv_count = ov[1]
            if ov[2] is not None:
                status4 = ov[2] & 0xFF
                status5 = (ov[2] >> 8) & 0xFF
        if self._rdpt_even_armed:
            # DS80349 Module: Memory: an even ERXRDPT may corrupt the next packet pointer and the
            # status vector: the model puts an odd pointer outside the ring there
            self._rdpt_even_armed = False
            rsv_next = 0x1FFF if rxnd < 0x1FFF else 0x0001
        hdr = self._hdr
        hdr[0] = rsv_next & 0xFF
        hdr[1] = (rsv_next >> 8) & 0xFF
        hdr[2] = rsv_count & 0xFF
        hdr[3] = (rsv_count >> 8) & 0xFF
        hdr[4] = status4
        hdr[5] = status5
        p = self._ring_write(pos, hdr, 0, 6, rxst, rxnd)
        p = self._ring_write(p, f, 0, n, rxst, rxnd)
        for _ in range(padded - n):
            self.mem[p] = 0
            p = rxst if p == rxnd else p + 1
        if n < padded:
            # the CRC covers the padding: compute it over the stored bytes
            crc = self._crc_ring(pos, padded, rxst, rxnd)
        else:
            crc = crc32(f, n)
        if bad_crc:
            crc ^= 0xFFFFFFFF
        for k in range(4):
            self.mem[p] = (crc >> (8 * k)) & 0xFF
            p = rxst if p == rxnd else p + 1
        self._w16(_ERXWRPTL, nxt)
        r[_EPKTCNT] += 1
        self.rx_frames += 1
        return True

    def _crc_ring(self, pos, n, rxst, rxnd):
        c = 0xFFFFFFFF
        t = _CRC_TABLE
        p = pos + 6
        if p > rxnd:
            p -= rxnd - rxst + 1
        mem = self.mem
        for _ in range(n):
            c = t[(c ^ mem[p]) & 0xFF] ^ (c >> 8)
            p = rxst if p == rxnd else p + 1
        return c ^ 0xFFFFFFFF

    def _ring_write(self, p, src, soff, n, rxst, rxnd):
        done = 0
        while done < n:
            run = rxnd - p + 1
            if run > n - done:
                run = n - done
            _copy(self.mem, p, src, soff + done, run)
            done += run
            p += run
            if p > rxnd:
                p = rxst
        return p

    # -- transmit ----------------------------------------------------------------------------------
    def _tx_request(self):
        r = self.regs
        if r[_ECON1] & _ECON1_TXRST:
            return                    # held in reset: the request waits
        self._check_duplex("transmit request")
        if self._stall_next:
            self._stall_next = False
            self._tx_stalled = True
        if not self._txrst_since_tx and self.tx_stall_every:
            self._tx_no_rst_count += 1
            if self._tx_no_rst_count >= self.tx_stall_every:
                self._tx_no_rst_count = 0
                self._tx_stalled = True
        self._txrst_since_tx = False
        if self._tx_stalled:
            self.tx_stalls += 1
            return                    # DS80349: TXRTS remains set indefinitely
        self._tx_pending = self.tx_delay if self.tx_delay > 0 else 0

    def _transmit(self):
        r = self.regs
        if not (r[_ECON1] & _ECON1_TXRTS) or self._tx_stalled:
            return
        st = self._r16(_ETXSTL)
        nd = self._r16(_ETXNDL)
        ctrl = self.mem[st]
        n = nd - st            # bytes after the control byte, ETXST+1..ETXND
        macon3 = r[_MACON3]
        crc_on = macon3 & _MACON3_TXCRCEN
        pad_on = macon3 & 0xE0
        huge = macon3 & _MACON3_HFRMEN
        if ctrl & 0x01:        # POVERRIDE: PCRCEN 0x02, PPADEN 0x04, PHUGEEN 0x08
            crc_on = ctrl & 0x02
            pad_on = ctrl & 0x04
            huge = ctrl & 0x08
        tsv_status3 = 0
        aborted = False
        if n <= 0 or n > 1536:
            aborted = True
            tsv_status3 |= TSV3_GIANT
        sent = n if n > 0 else 0
        if not crc_on:
            sent -= 4          # the last four bytes are the host's own FCS
        maxlen = self._r16(_MAMXFLL)
        if not aborted and not huge and sent + 4 > maxlen:
            aborted = True
            tsv_status3 |= TSV3_GIANT
        if not aborted and self._late_collisions > 0 and not (macon3 & _MACON3_FULDPX):
            self._late_collisions -= 1
            aborted = True
            tsv_status3 |= TSV3_LATE_COLLISION
        frame = self._txframe
        if not aborted:
            if sent < 0:
                sent = 0
            _copy(frame, 0, self.mem, st + 1, sent)
            if pad_on and sent < 60:
                for i in range(sent, 60):
                    frame[i] = 0
                sent = 60
            if sent >= 6 and frame[0] & 1:
                tsv_status3 |= 0x02 if (frame[0] & frame[1] & frame[2] & frame[3] & frame[4] & frame[5]) == 0xFF else 0x01
            if self.link is not None and self._link_up:
                self.link.send(frame, sent)
            self.tx_frames += 1
        # transmit status vector at ETXND+1 (DS 7.1, Table 7-1)
        t = (nd + 1) & 0x1FFF
        wire = 0 if aborted else sent + 4
        t = self._put(t, n & 0xFF)
        t = self._put(t, (n >> 8) & 0xFF)
        t = self._put(t, 0 if aborted else TSV2_DONE)
        t = self._put(t, tsv_status3)
        t = self._put(t, wire & 0xFF)
        t = self._put(t, (wire >> 8) & 0xFF)
        self._put(t, 0)
        if aborted:
            self.tx_aborts += 1
            r[_ESTAT] |= _ESTAT_TXABRT | (_ESTAT_LATECOL if tsv_status3 & TSV3_LATE_COLLISION else 0)
            r[_EIR] |= _EIR_TXERIF
            if self.errata_tx_stall and (tsv_status3 & TSV3_LATE_COLLISION):
                self._tx_stalled = True   # TXRTS stays set, no TXIF (DS80349 Module: PHY)
                return
        else:
            r[_EIR] |= _EIR_TXIF
        r[_ECON1] &= ~_ECON1_TXRTS

    def _put(self, t, v):
        self.mem[t] = v
        return (t + 1) & 0x1FFF

    # -- counters ----------------------------------------------------------------------------------
    def counters(self):
        return {"spi_transactions": self.spi_transactions, "spi_bytes": self.spi_bytes,
                "rx_frames": self.rx_frames, "rx_dropped_full": self.rx_dropped_full,
                "rx_filtered": self.rx_filtered, "tx_frames": self.tx_frames,
                "tx_aborts": self.tx_aborts, "tx_stalls": self.tx_stalls,
                "erxrdpt_writes": self.erxrdpt_writes, "erxrdpt_even_writes": self.erxrdpt_even_writes,
                "bank_changes": self.bank_changes, "violations": self.violations}
