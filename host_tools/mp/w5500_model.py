# W5500Model: a register-level model of the WIZnet W5500 as its SPI bus sees it, for tests and the
# virtual board (MicroPython unix port and CPython alike).
#
# Datasheet references are to the W5500 Datasheet v1.0.9 (WIZnet, 2013-2019): 2.1 SPI frame,
# 2.2 operation modes, 3 register/memory organisation, 4.1 common registers, 4.2 socket registers,
# 5.5.1 reset timing. Register names as in the datasheet and WIZnet's ioLibrary w5500.h.
#
# SPI side (called by the machine shim or tests/host/spi_fake.py):
#   select()            CS low: a transaction starts (counted); arriving frames are pulled in first
#   deselect()          CS high: it ends (a variable-length frame ends here)
#   xfer(wbuf, rbuf, n) n bytes clocked; wbuf None = MOSI idle 0x00, rbuf None = MISO discarded
#   reset_pin(level)    the RSTn line (0 = held in reset, registers back to reset values)
#   int_level()         the INTn line: 0 while an enabled interrupt is pending, else 1 (frames
#                       waiting on the link are taken in first, as the chip would have by then)
# Frame format (2.1): 16-bit offset address (MSB first), control byte = BSB[4:0] << 3 | RWB << 2 |
# OM[1:0], then data. BSB 0 = common registers, 1+4n / 2+4n / 3+4n = socket n registers / TX
# buffer / RX buffer. OM 00 = variable length (VDM: data until CS goes high), 01/10/11 = fixed
# length 1/2/4 bytes (FDM): after that many data bytes the next byte starts a new frame, so FDM
# frames can follow each other inside one CS-low period (2.2.2: FDM is the mode for SCSn tied low,
# where frames are back to back). The offset auto-increments per data byte and wraps at 16 bits.
# During the three header bytes MISO carries 0x01, 0x02, 0x03 (what real chips do; undocumented,
# so drivers must not rely on it); during a write's data phase it carries 0x00.
#
# Socket buffers (3.3): Sn_RXBUF_SIZE/Sn_TXBUF_SIZE in KB (0, 1, 2, 4, 8, 16; default 2), laid out
# in order of socket number in the 16 KB TX and 16 KB RX memories; a socket beyond the 16 KB total
# or with another size gets none. A buffer offset (any 16-bit value) maps to its buffer as
# offset mod size, so 16-bit pointers wrap by themselves (4.2 Sn_TX_WR, Sn_RX_RD).
#
# MACRAW (socket 0 only, Sn_MR P[3:0] = 0100, OPEN -> Sn_SR 0x42): each received frame is stored
# as a 2-byte big-endian length that counts itself, then the frame (no FCS). Sn_RX_RSR =
# Sn_RX_WR - (Sn_RX_RD as of the last RECV); RECV takes the Sn_RX_RD the host wrote. A frame that
# does not fit the free space is dropped (rx_dropped_full). MFEN (Sn_MR bit 7) passes only frames
# to SHAR, broadcast and multicast; MMB (bit 5) drops multicast; MIP6B (bit 4) drops IPv6;
# BCASTB (bit 6) drops broadcast. SEND transmits Sn_TX_RD..Sn_TX_WR as one frame (padded to the
# 60-byte Ethernet minimum as a MAC does), moves Sn_TX_RD to Sn_TX_WR and sets SEND_OK in Sn_IR;
# while the link is down a SEND waits for it and gives no SEND_OK (as ESP-IDF's W5500 driver
# observed: its transmit gives up on SEND_OK when PHYCFGR shows no link).
# Sn_TX_FSR = size - (Sn_TX_WR as of the last SEND - Sn_TX_RD). Sn_CR reads 0 once a command is
# taken (4.2 Sn_CR); Sn_IR and IR bits clear when written with 1.
#
# Test hooks (behaviour a driver must survive):
#   link_up (PHYCFGR LNK), speed_100, full_duplex   PHY status bits; set_link(up)
#   rsr_glitch_reads / fsr_glitch_reads  that many coming reads of socket 0's Sn_RX_RSR / Sn_TX_FSR
#       return an intermediate value (as a read during an arrival or a send can), then true ones
#   cmd_latency      selects during which a command stays in Sn_CR (reads back non-zero) before
#                    it takes effect
#   send_delay       selects before a SEND completes (Sn_TX_RD moves, the frame leaves, SEND_OK)
#   send_stall       True: SEND is taken but never completes (no SEND_OK) while it stays True
#   occupy_tx(n, selects)  n bytes of someone else's unsent data sit in socket 0's TX buffer for
#                    that many selects (Sn_TX_FSR is n lower meanwhile)
#   reset_busy_reads MR reads that still show RST after a software reset
#   present          False: no chip on the bus (MISO reads 0x00, writes go nowhere)
# Counters: spi_transactions, spi_bytes, rx_frames, tx_frames, rx_dropped_full, rx_filtered_mac,
# rx_filtered_ipv6, rx_filtered_bcast, rx_filtered_mcast, rx_dropped_closed, rx_dropped_link,
# tx_dropped_link, soft_resets, hard_resets.
# Steady-state RX and TX allocate nothing on MicroPython (preallocated buffers, tcpip.mem.copy),
# so heap measurements of a driver running against this model see the driver's own allocations.

try:
    from tcpip.mem import copy as _copy
except ImportError:  # pragma: no cover - lib/ is on the path in tests and on the virtual board
    def _copy(dst, doff, src, soff, n):
        for i in range(n):
            dst[doff + i] = src[soff + i]

VERSION = 0x04            # 4.1 VERSIONR
MEM_SIZE = 16384          # 16 KB TX and 16 KB RX memory (3.3)
SOCKETS = 8
MAX_FRAME = 1514

# common register offsets (4.1)
MR = 0x0000
SHAR = 0x0009
IR = 0x0015
IMR = 0x0016
SIR = 0x0017
SIMR = 0x0018
PHYCFGR = 0x002E
VERSIONR = 0x0039
COMMON_SIZE = 0x40

# socket register offsets (4.2)
Sn_MR = 0x00
Sn_CR = 0x01
Sn_IR = 0x02
Sn_SR = 0x03
Sn_RXBUF_SIZE = 0x1E
Sn_TXBUF_SIZE = 0x1F
Sn_TX_FSR = 0x20
Sn_TX_RD = 0x22
Sn_TX_WR = 0x24
Sn_RX_RSR = 0x26
Sn_RX_RD = 0x28
Sn_RX_WR = 0x2A
Sn_IMR = 0x2C
SOCKET_SIZE = 0x30

MR_RST = 0x80
SN_MR_MFEN = 0x80
SN_MR_BCASTB = 0x40
SN_MR_MMB = 0x20
SN_MR_MIP6B = 0x10
SN_MR_MACRAW = 0x04
SN_MR_UDP = 0x02
SN_MR_TCP = 0x01
CR_OPEN = 0x01
CR_CLOSE = 0x10
CR_SEND = 0x20
CR_RECV = 0x40
IR_SENDOK = 0x10
IR_TIMEOUT = 0x08
IR_RECV = 0x04
SOCK_CLOSED = 0x00
SOCK_INIT = 0x13
SOCK_UDP = 0x22
SOCK_MACRAW = 0x42

_VALID_KB = (0, 1, 2, 4, 8, 16)

# header parser states
_IDLE = 0
_HEADER = 1
_DATA = 2

_COMMON_RESET = (
    (0x0019, 0x07), (0x001A, 0xD0),  # RTR 2000 (200 ms)
    (0x001B, 0x08),                  # RCR
    (0x001C, 0x28),                  # PTIMER
    (0x0026, 0xFF), (0x0027, 0xFF),  # PMRU
)


class W5500Model:
    spi_modes = ((0, 0), (1, 1))  # SPI mode 0 and 3 (1.1 features)
    spi_max_hz = 80000000

    def __init__(self, link=None):
        self.link = link
        self.present = True
        self.link_up = True
        self.speed_100 = True
        self.full_duplex = True
        self.rsr_glitch_reads = 0
        self.fsr_glitch_reads = 0
        self.cmd_latency = 0
        self.send_delay = 0
        self.send_stall = False
        self.reset_busy_reads = 0
        self.common = bytearray(COMMON_SIZE)
        self.sock = [bytearray(SOCKET_SIZE) for _ in range(SOCKETS)]
        self.tx_mem = bytearray(MEM_SIZE)
        self.rx_mem = bytearray(MEM_SIZE)
        self._frame = bytearray(MAX_FRAME + 4)   # one arriving frame
        self._out = bytearray(MAX_FRAME + 64)    # one frame going out
        self._hdr = bytearray(3)
        self.spi_transactions = 0
        self.spi_bytes = 0
        self.rx_frames = 0
        self.tx_frames = 0
        self.rx_dropped_full = 0
        self.rx_filtered_mac = 0
        self.rx_filtered_ipv6 = 0
        self.rx_filtered_bcast = 0
        self.rx_filtered_mcast = 0
        self.rx_dropped_closed = 0
        self.rx_dropped_link = 0
        self.tx_dropped_link = 0
        self.soft_resets = 0
        self.hard_resets = 0
        self.commands = 0
        self._in_reset = False
        self._state = _IDLE
        self._reset_registers()

    # -- reset ------------------------------------------------------------------------------------
    def _reset_registers(self):
        """Every register to its reset value (4.1, 4.2); buffers keep their bytes."""
        c = self.common
        for i in range(COMMON_SIZE):
            c[i] = 0
        for off, val in _COMMON_RESET:
            c[off] = val
        for s in self.sock:
            for i in range(SOCKET_SIZE):
                s[i] = 0
            for i in range(6):
                s[0x06 + i] = 0xFF          # Sn_DHAR
            s[0x16] = 0x80                  # Sn_TTL
            s[Sn_RXBUF_SIZE] = 2
            s[Sn_TXBUF_SIZE] = 2
            s[Sn_IMR] = 0xFF
            s[0x2D] = 0x40                  # Sn_FRAG 0x4000
        self._phy_cfg = 0x78                # OPMD 1, OPMDC 111 (all capable, auto-negotiation)
        self._rx_wr = [0] * SOCKETS         # internal RX write pointer
        self._rx_rd = [0] * SOCKETS         # Sn_RX_RD as of the last RECV
        self._tx_rd = [0] * SOCKETS
        self._tx_wr = [0] * SOCKETS         # Sn_TX_WR as of the last SEND
        self._pending_cmd = [0] * SOCKETS
        self._pending_left = [0] * SOCKETS
        self._send_left = -1                # selects until socket 0's SEND completes; -1 none
        self._send_end = 0
        self._occupied = 0
        self._occupied_left = 0
        self._rst_reads = 0
        self._rsr_prev = 0
        self._last_arrival = 0
        self._latch = 0
        self._glitch_seq = 0

    def soft_reset(self):
        self.soft_resets += 1
        self._reset_registers()
        self._rst_reads = self.reset_busy_reads

    def reset_pin(self, level):
        """RSTn: low holds the chip in reset (registers at reset values, SPI ignored)."""
        if not level:
            if not self._in_reset:
                self.hard_resets += 1
            self._in_reset = True
            self._reset_registers()
            self._state = _IDLE
        else:
            self._in_reset = False

    # -- PHY and interrupt lines ------------------------------------------------------------------
    def set_link(self, up, speed_100=True, full_duplex=True):
        self.link_up = bool(up)
        self.speed_100 = bool(speed_100)
        self.full_duplex = bool(full_duplex)

    def phycfgr(self):
        v = 0x80 | self._phy_cfg            # bit 7 RST reads 1 when not resetting
        if self.link_up:
            v |= 0x01
            if self.speed_100:
                v |= 0x02
            if self.full_duplex:
                v |= 0x04
        return v

    def _sir(self):
        v = 0
        for n in range(SOCKETS):
            s = self.sock[n]
            if s[Sn_IR] & s[Sn_IMR]:
                v |= 1 << n
        return v

    def int_level(self):
        """INTn (4.1 IR, SIR): low while IR & IMR or SIR & SIMR is non-zero."""
        if not self.present or self._in_reset:
            return 1
        if self._state == _IDLE:
            self._pull_frames()  # INTn does not wait for the host: frames arriving now count
        c = self.common
        if (c[IR] & c[IMR]) or (self._sir() & c[SIMR]):
            return 0
        return 1

    # -- buffers ----------------------------------------------------------------------------------
    def _buf_size(self, n, reg):
        """Bytes of socket n's TX (reg Sn_TXBUF_SIZE) or RX buffer; 0 if invalid or beyond 16 KB."""
        base = 0
        for i in range(n + 1):
            kb = self.sock[i][reg]
            if kb not in _VALID_KB:
                kb = 0
            if i == n:
                if base + kb > 16:
                    return 0
                return kb * 1024
            base += kb
        return 0

    def _buf_base(self, n, reg):
        base = 0
        for i in range(n):
            kb = self.sock[i][reg]
            if kb in _VALID_KB:
                base += kb
        return base * 1024

    def rx_free(self, n=0):
        size = self._buf_size(n, Sn_RXBUF_SIZE)
        return size - ((self._rx_wr[n] - self._rx_rd[n]) & 0xFFFF)

    def _rsr(self, n):
        return (self._rx_wr[n] - self._rx_rd[n]) & 0xFFFF

    def _fsr(self, n):
        size = self._buf_size(n, Sn_TXBUF_SIZE)
        used = (self._tx_wr[n] - self._tx_rd[n]) & 0xFFFF
        if n == 0:
            used += self._occupied
        free = size - used
        return free if free > 0 else 0

    def occupy_tx(self, nbytes, selects):
        """Someone else's nbytes of unsent data hold socket 0's TX buffer for `selects` selects."""
        self._occupied = nbytes
        self._occupied_left = selects

    # -- wire side --------------------------------------------------------------------------------
    def _pull_frames(self):
        link = self.link
        if link is None:
            return
        frame = self._frame
        for _ in range(64):  # bounded per select
            n = link.recv_into(frame)
            if not n:
                return
            self._arrive(frame, n)

    def _arrive(self, frame, n):
        s0 = self.sock[0]
        if not self.link_up:
            self.rx_dropped_link += 1
            return
        if s0[Sn_SR] != SOCK_MACRAW or n < 14 or n > MAX_FRAME:
            self.rx_dropped_closed += 1
            return
        mode = s0[Sn_MR]
        if frame[0] & 1:
            bcast = frame[0] == 0xFF and frame[1] == 0xFF and frame[2] == 0xFF and \
                frame[3] == 0xFF and frame[4] == 0xFF and frame[5] == 0xFF
            if bcast and mode & SN_MR_BCASTB:
                self.rx_filtered_bcast += 1
                return
            if not bcast and mode & SN_MR_MMB:
                self.rx_filtered_mcast += 1
                return
        elif mode & SN_MR_MFEN:
            c = self.common
            for i in range(6):
                if frame[i] != c[SHAR + i]:
                    self.rx_filtered_mac += 1
                    return
        if mode & SN_MR_MIP6B and frame[12] == 0x86 and frame[13] == 0xDD:
            self.rx_filtered_ipv6 += 1
            return
        size = self._buf_size(0, Sn_RXBUF_SIZE)
        need = n + 2
        if size == 0 or need > self.rx_free(0):
            self.rx_dropped_full += 1
            return
        base = self._buf_base(0, Sn_RXBUF_SIZE)
        mask = size - 1
        wr = self._rx_wr[0]
        mem = self.rx_mem
        mem[base + (wr & mask)] = need >> 8
        mem[base + ((wr + 1) & mask)] = need & 0xFF
        start = (wr + 2) & mask
        first = size - start
        if first >= n:
            _copy(mem, base + start, frame, 0, n)
        else:
            _copy(mem, base + start, frame, 0, first)
            _copy(mem, base, frame, first, n - first)
        self._rsr_prev = self._rsr(0)
        self._last_arrival = need
        self._rx_wr[0] = (wr + need) & 0xFFFF
        s0[Sn_IR] |= IR_RECV
        self.rx_frames += 1

    def _transmit(self):
        """socket 0's SEND completes: Sn_TX_RD..end leave as one frame, SEND_OK."""
        s0 = self.sock[0]
        rd = self._tx_rd[0]
        end = self._send_end
        n = (end - rd) & 0xFFFF
        size = self._buf_size(0, Sn_TXBUF_SIZE)
        self._tx_rd[0] = end
        s0[Sn_IR] |= IR_SENDOK
        if n == 0 or size == 0:
            return
        if n > len(self._out):
            n = len(self._out)
        base = self._buf_base(0, Sn_TXBUF_SIZE)
        mask = size - 1
        out = self._out
        start = rd & mask
        first = size - start
        if first >= n:
            _copy(out, 0, self.tx_mem, base + start, n)
        else:
            _copy(out, 0, self.tx_mem, base + start, first)
            _copy(out, first, self.tx_mem, base, n - first)
        if n < 60:
            for i in range(n, 60):
                out[i] = 0  # the MAC pads short frames (IEEE 802.3 minimum frame)
            n = 60
        if not self.link_up:
            self.tx_dropped_link += 1
            return
        self.tx_frames += 1
        if self.link is not None:
            self.link.send(out, n)

    # -- commands ---------------------------------------------------------------------------------
    def _command(self, n, cmd):
        self.commands += 1
        s = self.sock[n]
        if cmd == CR_OPEN:
            proto = s[Sn_MR] & 0x0F
            self._rx_wr[n] = 0
            self._rx_rd[n] = 0
            self._tx_rd[n] = 0
            self._tx_wr[n] = 0
            for off in (Sn_TX_WR, Sn_TX_WR + 1, Sn_RX_RD, Sn_RX_RD + 1):
                s[off] = 0
            if n == 0:
                self._send_left = -1
            if proto == SN_MR_MACRAW and n == 0:
                s[Sn_SR] = SOCK_MACRAW
            elif proto == SN_MR_UDP:
                s[Sn_SR] = SOCK_UDP
            elif proto == SN_MR_TCP:
                s[Sn_SR] = SOCK_INIT
            else:
                s[Sn_SR] = SOCK_CLOSED
        elif cmd == CR_CLOSE:
            s[Sn_SR] = SOCK_CLOSED
            self._rx_rd[n] = self._rx_wr[n]
            self._tx_rd[n] = self._tx_wr[n]
            if n == 0:
                self._send_left = -1
        elif cmd == CR_RECV:
            if s[Sn_SR] != SOCK_CLOSED:
                # the chip takes whatever Sn_RX_RD the host wrote (a wrong one shows as garbage)
                self._rx_rd[n] = (s[Sn_RX_RD] << 8) | s[Sn_RX_RD + 1]
        elif cmd == CR_SEND:
            if n == 0 and s[Sn_SR] == SOCK_MACRAW:
                self._tx_wr[0] = (s[Sn_TX_WR] << 8) | s[Sn_TX_WR + 1]
                self._send_end = self._tx_wr[0]
                if self.send_stall or not self.link_up:
                    self._send_left = 1 << 30  # no link: SEND waits for it, no SEND_OK meanwhile
                elif self.send_delay > 0:
                    self._send_left = self.send_delay
                else:
                    self._transmit()
        # other commands (LISTEN, CONNECT, DISCON, SEND_MAC, SEND_KEEP) are not modelled

    def _issue(self, n, cmd):
        if self.cmd_latency > 0:
            self._pending_cmd[n] = cmd
            self._pending_left[n] = self.cmd_latency
        else:
            self._command(n, cmd)

    def _tick(self):
        """Time passes: one select's worth."""
        for n in range(SOCKETS):
            if self._pending_left[n] > 0:
                self._pending_left[n] -= 1
                if self._pending_left[n] == 0:
                    cmd = self._pending_cmd[n]
                    self._pending_cmd[n] = 0
                    self._command(n, cmd)
        if self._send_left > 0:
            if self.send_stall or not self.link_up:
                pass
            else:
                if self._send_left > self.send_delay:
                    self._send_left = self.send_delay  # the stall was lifted
                self._send_left -= 1
                if self._send_left <= 0:
                    self._send_left = -1
                    self._transmit()
        if self._occupied_left > 0:
            self._occupied_left -= 1
            if self._occupied_left == 0:
                self._occupied = 0

    # -- register access --------------------------------------------------------------------------
    def _read_common(self, off):
        if off == MR:
            if self._rst_reads > 0:
                self._rst_reads -= 1
                return self.common[MR] | MR_RST
            return self.common[MR]
        if off == SIR:
            return self._sir()
        if off == PHYCFGR:
            return self.phycfgr()
        if off == VERSIONR:
            return VERSION
        if off < COMMON_SIZE and off < 0x30:
            return self.common[off]
        return 0

    def _write_common(self, off, b):
        if off == MR:
            if b & MR_RST:
                self.soft_reset()
            else:
                self.common[MR] = b
        elif off == IR:
            self.common[IR] &= ~b & 0xFF
        elif off == SIR:
            pass  # read only
        elif off == PHYCFGR:
            self._phy_cfg = b & 0x78  # OPMD/OPMDC; bit 7 low would reset the PHY; status RO
        elif off < 0x2E:
            self.common[off] = b

    def _read_socket(self, n, off):
        s = self.sock[n]
        if off == Sn_CR:
            return self._pending_cmd[n]
        if off == Sn_TX_FSR or off == Sn_TX_FSR + 1:
            if off == Sn_TX_FSR:
                v = self._fsr(n)
                if n == 0 and self.fsr_glitch_reads > 0:
                    self.fsr_glitch_reads -= 1
                    self._glitch_seq += 1  # a read while a send frees space: changes per read
                    v = (v - 1 - self._glitch_seq % 64) & 0xFFFF if v > 64 else v + 1
                self._latch = v
                return v >> 8
            return self._latch & 0xFF
        if off == Sn_TX_RD or off == Sn_TX_RD + 1:
            v = self._tx_rd[n]
            return v >> 8 if off == Sn_TX_RD else v & 0xFF
        if off == Sn_RX_RSR or off == Sn_RX_RSR + 1:
            if off == Sn_RX_RSR:
                v = self._rsr(n)
                if n == 0 and self.rsr_glitch_reads > 0:
                    self.rsr_glitch_reads -= 1
                    # a read during an arrival: part of the newest frame counted, a little
                    # more at each read (so two such reads disagree)
                    self._glitch_seq += 1
                    span = self._last_arrival - 1 if self._last_arrival > 2 else 1
                    v = (self._rsr_prev + 1 + self._glitch_seq % span) & 0xFFFF
                    if v == self._rsr(n):
                        v = (v + 1) & 0xFFFF
                self._latch = v
                return v >> 8
            return self._latch & 0xFF
        if off == Sn_RX_WR or off == Sn_RX_WR + 1:
            v = self._rx_wr[n]
            return v >> 8 if off == Sn_RX_WR else v & 0xFF
        if off < SOCKET_SIZE:
            return s[off]
        return 0

    def _write_socket(self, n, off, b):
        s = self.sock[n]
        if off == Sn_CR:
            if b:
                self._issue(n, b)
        elif off == Sn_IR:
            s[Sn_IR] &= ~b & 0xFF
        elif off == Sn_SR or (Sn_TX_FSR <= off < Sn_TX_WR) or off == Sn_RX_RSR or \
                off == Sn_RX_RSR + 1 or off == Sn_RX_WR or off == Sn_RX_WR + 1:
            pass  # read only
        elif off < SOCKET_SIZE:
            s[off] = b

    # -- the SPI side -----------------------------------------------------------------------------
    def select(self):
        if not self.present or self._in_reset:
            self._state = _IDLE
            return
        self.spi_transactions += 1
        self._tick()
        self._pull_frames()
        self._state = _HEADER
        self._hlen = 0

    def deselect(self):
        self._state = _IDLE

    def xfer(self, wbuf, rbuf, n):
        if not self.present or self._in_reset or self._state == _IDLE:
            if rbuf is not None:
                for i in range(n):
                    rbuf[i] = 0
            return
        self.spi_bytes += n
        i = 0
        hdr = self._hdr
        while i < n:
            if self._state == _HEADER:
                hdr[self._hlen] = wbuf[i] if wbuf is not None else 0
                self._hlen += 1
                if rbuf is not None:
                    rbuf[i] = self._hlen  # 0x01, 0x02, 0x03
                i += 1
                if self._hlen == 3:
                    self._addr = (hdr[0] << 8) | hdr[1]
                    ctrl = hdr[2]
                    self._bsb = ctrl >> 3
                    self._write = (ctrl >> 2) & 1
                    om = ctrl & 3
                    self._left = 0 if om == 0 else (1, 2, 4)[om - 1]
                    self._state = _DATA
                continue
            # data phase: a run of bytes up to the frame end (FDM) or the call's end (VDM)
            run = n - i
            if self._left and self._left < run:
                run = self._left
            bsb = self._bsb
            kind = bsb & 3
            if bsb != 0 and kind != 1:
                self._buffer_run(wbuf, rbuf, i, run, bsb >> 2, kind)
            else:
                self._register_run(wbuf, rbuf, i, run, bsb)
            i += run
            if self._left:
                self._left -= run
                if self._left == 0:
                    self._state = _HEADER
                    self._hlen = 0

    def _register_run(self, wbuf, rbuf, i, run, bsb):
        addr = self._addr
        n = bsb >> 2
        for k in range(run):
            if self._write:
                b = wbuf[i + k] if wbuf is not None else 0
                if bsb == 0:
                    self._write_common(addr, b)
                elif bsb & 3 == 1:
                    self._write_socket(n, addr, b)
                if rbuf is not None:
                    rbuf[i + k] = 0
            else:
                if bsb == 0:
                    v = self._read_common(addr)
                elif bsb & 3 == 1:
                    v = self._read_socket(n, addr)
                else:
                    v = 0
                if rbuf is not None:
                    rbuf[i + k] = v
            addr = (addr + 1) & 0xFFFF
        self._addr = addr

    def _buffer_run(self, wbuf, rbuf, i, run, n, kind):
        """A run of bytes to or from socket n's TX (kind 2) or RX (kind 3) buffer (3.3)."""
        if kind == 0:  # reserved block numbers (4, 8, ...): nothing there
            if rbuf is not None and not self._write:
                for k in range(run):
                    rbuf[i + k] = 0
            self._addr = (self._addr + run) & 0xFFFF
            return
        reg = Sn_TXBUF_SIZE if kind == 2 else Sn_RXBUF_SIZE
        mem = self.tx_mem if kind == 2 else self.rx_mem
        size = self._buf_size(n, reg)
        base = self._buf_base(n, reg)
        addr = self._addr
        self._addr = (addr + run) & 0xFFFF
        if size == 0:
            if rbuf is not None:
                for k in range(run):
                    rbuf[i + k] = 0
            return
        mask = size - 1
        done = 0
        while done < run:
            start = (addr + done) & mask
            chunk = size - start
            if chunk > run - done:
                chunk = run - done
            if self._write:
                if wbuf is not None:
                    _copy(mem, base + start, wbuf, i + done, chunk)
                else:
                    for k in range(chunk):
                        mem[base + start + k] = 0
                if rbuf is not None:
                    for k in range(chunk):
                        rbuf[i + done + k] = 0
            elif rbuf is not None:
                _copy(rbuf, i + done, mem, base + start, chunk)
            done += chunk

    # -- helpers for tests ------------------------------------------------------------------------
    def reg(self, off):
        """A common register as the host would read it (no side effects)."""
        if off == PHYCFGR:
            return self.phycfgr()
        if off == VERSIONR:
            return VERSION
        if off == SIR:
            return self._sir()
        return self.common[off]

    def sreg(self, n, off):
        """A socket register byte as stored (derived pointers included, no glitches)."""
        if off in (Sn_TX_FSR, Sn_TX_FSR + 1):
            v = self._fsr(n)
            return v >> 8 if off == Sn_TX_FSR else v & 0xFF
        if off in (Sn_TX_RD, Sn_TX_RD + 1):
            v = self._tx_rd[n]
            return v >> 8 if off == Sn_TX_RD else v & 0xFF
        if off in (Sn_RX_RSR, Sn_RX_RSR + 1):
            v = self._rsr(n)
            return v >> 8 if off == Sn_RX_RSR else v & 0xFF
        if off in (Sn_RX_WR, Sn_RX_WR + 1):
            v = self._rx_wr[n]
            return v >> 8 if off == Sn_RX_WR else v & 0xFF
        if off == Sn_CR:
            return self._pending_cmd[n]
        return self.sock[n][off]

    def sreg16(self, n, off):
        return (self.sreg(n, off) << 8) | self.sreg(n, off + 1)

    def counters(self):
        return {
            "spi_transactions": self.spi_transactions, "spi_bytes": self.spi_bytes,
            "rx_frames": self.rx_frames, "tx_frames": self.tx_frames,
            "rx_dropped_full": self.rx_dropped_full, "rx_filtered_mac": self.rx_filtered_mac,
            "rx_filtered_ipv6": self.rx_filtered_ipv6, "rx_filtered_bcast": self.rx_filtered_bcast,
            "rx_filtered_mcast": self.rx_filtered_mcast, "rx_dropped_closed": self.rx_dropped_closed,
            "rx_dropped_link": self.rx_dropped_link, "tx_dropped_link": self.tx_dropped_link,
            "soft_resets": self.soft_resets, "hard_resets": self.hard_resets,
        }
