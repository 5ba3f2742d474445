"""The W5500 driver's bring-up and recovery (tcpip.drivers.w5500): the frame buffers, views and
register chains it uses per frame, the chip reset, presence check and configuration, socket 0
opened, closed and reopened. W5500() and a socket reopen (recovery) import this module for the
call and drop it again (tcpip.call), so none of it stays in a board's heap. Every function takes
the driver first. "DS" is the W5500 Datasheet v1.0.9.
"""
from tcpip import errors
from tcpip.clock import ticks_diff

try:
    from micropython import const
except ImportError:
    const = int  # CPython: the identity on the ints given to const()

# counters: indexes into the driver's _cnt (tcpip.drivers.w5500.NAMES)
_SOCKET_REOPENS = const(10)
_REOPEN_FAILED = const(11)
_SPI_TRANSACTIONS = const(12)

# -- the register map (tcpip.drivers.w5500 repeats the few it uses per frame; tests/host/
# test_w5500.py checks they agree) ------------
_BSB_COMMON = const(0x00)  # common register block
_BSB_S0 = const(0x08)      # socket 0 register block (BSB 00001)
_BSB_S0_TX = const(0x10)   # socket 0 TX buffer (BSB 00010)
_BSB_S0_RX = const(0x18)   # socket 0 RX buffer (BSB 00011)
_SOCKET_STRIDE = const(0x20)  # socket n register block = (1 + 4n) << 3
_RWB_WRITE = const(0x04)
_OM_VDM = const(0x00)      # variable length: CS ends the frame (DS 2.2.1)
_OM_FDM1 = const(0x01)     # fixed length 1, 2, 4 bytes (DS 2.2.2)
_OM_FDM2 = const(0x02)
_OM_FDM4 = const(0x03)

# -- common registers (DS 4.1) -------------------------------------------------------------------
_MR = const(0x0000)
_SHAR = const(0x0009)
_IMR = const(0x0016)
_SIMR = const(0x0018)
_PHYCFGR = const(0x002E)   # bit 0 LNK, bit 1 SPD (100M), bit 2 DPX (full)
_VERSIONR = const(0x0039)  # always 0x04
_MR_RST = const(0x80)      # software reset; reads 0 when done
_CHIP_VERSION = const(0x04)

# -- socket registers (DS 4.2) -------------------------------------------------------------------
_Sn_MR = const(0x00)
_Sn_CR = const(0x01)
_Sn_IR = const(0x02)
_Sn_SR = const(0x03)
_Sn_RXBUF_SIZE = const(0x1E)  # KB; 0x1F Sn_TXBUF_SIZE follows
_Sn_TX_FSR = const(0x20)
_Sn_TX_WR = const(0x24)
_Sn_RX_RSR = const(0x26)      # Sn_RX_RD follows at 0x28
_Sn_RX_RD = const(0x28)
_Sn_IMR = const(0x2C)
_Sn_MR_MACRAW = const(0x04)
_Sn_MR_MIP6B = const(0x10)    # MACRAW: block IPv6
_Sn_MR_MFEN = const(0x80)     # MACRAW: only frames to SHAR, broadcast, multicast
_CR_OPEN = const(0x01)
_CR_CLOSE = const(0x10)
_CR_SEND = const(0x20)
_CR_RECV = const(0x40)
_IR_SENDOK = const(0x10)
_IR_TIMEOUT = const(0x08)
_IR_RECV = const(0x04)
_SOCK_CLOSED = const(0x00)
_SOCK_MACRAW = const(0x42)

_MAX_FRAME = const(1514)
_BUF_KB = const(16)           # all 16 KB of TX and RX memory to socket 0 (DS 3.3)
_BLOCK_SHIFT = const(5)       # transfers in 32-byte blocks (views made once)
_BLOCKS = const(48)           # 48 * 32 = 1536 >= 3 + 1514 (send) and 1514 + 2 (receive)
_RX_BUF = const(1536)         # rx_buffer: a frame plus the next frame's length header, in blocks
_TX_OFF = const(4)            # tx_buffer starts at _txb[4] (even: aligned frames), SPI header [1:4]
_TX_BUF = const(1541)         # 1 + 32 * 48 + 4 for the views over it
_DMA_MIN = const(512)          # frames moved by DMA from this size on (a smaller one costs less
                               # by machine.SPI than the DMA set-up saves)
_DTX_OFF = const(6)            # a frame in _dtx: the SPI header at [3:6], the frame from 6 (even)
_SPIN_POLLS = const(32)       # polls before waits start sleeping 1 ms between polls
_MAX_POLLS = const(2000)
_CMD_WAIT_MS = const(50)      # Sn_CR back to 0, Sn_SR reaching a state, MR_RST clearing


def chain(frames, views):
    """One transaction of FDM frames: frames is a list of (address, control, data length).
    Returns (wbuf, rbuf, offsets of each frame's data, write views, read views); the views (one
    per frame, for a bus that cannot chain frames: fdm_chain=False) only when `views`."""
    total = 0
    for f in frames:
        total += 3 + f[2]
    w = bytearray(total)
    r = bytearray(total)
    offs = []
    wv = []
    rv = []
    at = 0
    for addr, ctrl, n in frames:
        w[at] = addr >> 8
        w[at + 1] = addr & 0xFF
        w[at + 2] = ctrl
        offs.append(at + 3)
        if views:
            wv.append(memoryview(w)[at:at + 3 + n])
            rv.append(memoryview(r)[at:at + 3 + n])
        at += 3 + n
    return w, r, offs, wv, rv


def setup(d, dma):
    """W5500()'s buffers, views, chains and state (the driver's docstring says what they hold),
    then the chip reset and socket 0 opened."""
    d._h3 = bytearray(3)  # scratch for register access
    d._r1 = bytearray(1)
    d._len2 = bytearray(2)
    # the frame buffers the stack adopts (Stack uses rx_buffer / tx_buffer when a device has
    # them): frames arrive in rx_buffer; tx_buffer is _txb[4:], the 3-byte SPI header just in
    # front of it, so a frame goes out in one write. Views in 32-byte blocks, made once; with
    # DMA only for frames below _DMA_MIN (DMA moves the others, in exact lengths)
    fdm_chain = d.fdm_chain
    nv = _BLOCKS + 1 if dma is None or not fdm_chain else ((_DMA_MIN + 33) >> _BLOCK_SHIFT) + 1
    d._rxb = bytearray(_RX_BUF)
    m = memoryview(d._rxb)
    d.rx_buffer = m
    d._rxv = [m[0:k << _BLOCK_SHIFT] for k in range(nv)]
    d._txb = bytearray(_TX_BUF)
    m = memoryview(d._txb)
    d.tx_buffer = m[_TX_OFF:_TX_OFF + _MAX_FRAME]
    d._txv = [m[1:1 + (k << _BLOCK_SHIFT)] for k in range(nv)]
    d._txb[3] = _BSB_S0_TX | _RWB_WRITE | _OM_VDM
    d._rxh = bytearray(3)  # a frame read: RX buffer offset, control
    d._rxh[2] = _BSB_S0_RX | _OM_VDM  # the offset maps into the 16 KB buffer (DS 3.3)
    s0r = _BSB_S0
    s0w = _BSB_S0 | _RWB_WRITE
    # receive poll: [Sn_IR = RECV (INT pin only)] [Sn_CR] [Sn_RX_RSR] [Sn_RX_RSR] [the length
    # header at RX_RD, from the RX buffer]
    frames = []
    if d._int is not None:
        frames.append((_Sn_IR, s0w | _OM_FDM1, 1))
    frames.append((_Sn_CR, s0r | _OM_FDM1, 1))
    frames.append((_Sn_RX_RSR, s0r | _OM_FDM2, 2))
    frames.append((_Sn_RX_RSR, s0r | _OM_FDM2, 2))
    frames.append((0, _BSB_S0_RX | _OM_FDM2, 2))
    v = not fdm_chain
    p = chain(frames, v)
    d._rxp = p
    k = len(frames) - 4
    if d._int is not None:
        p[0][p[2][0]] = _IR_RECV
    d._o_cr = p[2][k]
    d._o_rsr = p[2][k + 1]
    d._o_rsr2 = p[2][k + 2]
    d._o_len = p[2][k + 3]
    # receive done: [Sn_RX_RD] [Sn_CR = RECV]
    p = chain([(_Sn_RX_RD, s0w | _OM_FDM2, 2), (_Sn_CR, s0w | _OM_FDM1, 1)], v)
    p[0][p[2][1]] = _CR_RECV
    d._rxd = p
    # send check [Sn_IR] [Sn_CR], then send go [Sn_IR = SEND_OK|TIMEOUT clear] [Sn_TX_WR]
    # [Sn_CR = SEND] in the same transaction; the clear comes before SEND so it cannot wipe
    # this frame's SEND_OK
    d._txc = chain([(_Sn_IR, s0r | _OM_FDM1, 1), (_Sn_CR, s0r | _OM_FDM1, 1)], v)
    p = chain([(_Sn_IR, s0w | _OM_FDM1, 1), (_Sn_TX_WR, s0w | _OM_FDM2, 2), (_Sn_CR, s0w | _OM_FDM1, 1)],
              v)
    p[0][p[2][0]] = _IR_SENDOK | _IR_TIMEOUT
    p[0][p[2][2]] = _CR_SEND
    d._txg = p
    d._tx_pending = False
    d._rx_more = False
    d._rd = 0
    d._avail = 0
    d._next = 0
    d._wr = 0
    d._dma = dma if fdm_chain else None
    d._ahead = 0
    d._an = 0
    d._txing = 0
    d._by_dma = False
    if d._dma is not None:
        d._drx = bytearray(_MAX_FRAME + 2)
        d._dtx = bytearray(_DTX_OFF + _MAX_FRAME)
        d._dtx[_DTX_OFF - 1] = _BSB_S0_TX | _RWB_WRITE | _OM_VDM
        d._dma.on_write_done(d._doorbell)
    d._cs(1)
    reset(d)


def reset(d):
    """Hardware reset (if wired), presence check, software reset, configuration, socket 0 open."""
    if d._ahead == 1 or d._txing:
        d._bus()
    d._ahead = 0
    clock = d.clock
    if d._rst is not None:
        d._rst(0)
        clock.sleep_ms(1)   # DS 5.5.1: RSTn low for at least 500 us
        d._rst(1)
        clock.sleep_ms(2)   # DS 5.5.1: internal PLL locked at most 1 ms after RSTn goes high
    v = d._read8(_BSB_COMMON, _VERSIONR)
    if v != _CHIP_VERSION:
        raise OSError(errors.ENODEV, "W5500 not found: VERSIONR reads 0x%02x, want 0x04 "
                      "(check the SPI wiring, the CS pin and SPI mode 0 or 3)" % v)
    write8(d, _BSB_COMMON, _MR, _MR_RST)  # DS 4.1 MR: every register to its reset value
    wait_reg(d, _BSB_COMMON, _MR, _MR_RST, 0, "W5500 software reset (MR.RST) did not clear")
    configure(d)
    open_socket(d)


def configure(d):
    """SHAR, the socket buffer sizes and the interrupt masks (all lost when the chip resets)."""
    write(d, _BSB_COMMON, _SHAR, d.mac)
    # DS 4.2 Sn_RXBUF_SIZE/Sn_TXBUF_SIZE: the sizes add up to at most 16 KB per direction;
    # free sockets 1..7 first, then give all 16 KB to socket 0
    sizes = d._len2
    sizes[0] = 0
    sizes[1] = 0
    for n in range(7, 0, -1):
        write(d, _BSB_S0 + n * _SOCKET_STRIDE, _Sn_RXBUF_SIZE, sizes)
    sizes[0] = _BUF_KB
    sizes[1] = _BUF_KB
    write(d, _BSB_S0, _Sn_RXBUF_SIZE, sizes)
    if d._int is not None:
        # INTn follows socket 0's RECV only (DS 4.1 SIMR, 4.2 Sn_IMR)
        write8(d, _BSB_S0, _Sn_IMR, _IR_RECV)
        write8(d, _BSB_COMMON, _SIMR, 0x01)
    else:
        write8(d, _BSB_COMMON, _SIMR, 0x00)
    write8(d, _BSB_COMMON, _IMR, 0x00)


def open_socket(d):
    mode = _Sn_MR_MACRAW | _Sn_MR_MFEN
    if not d.ipv6:
        mode |= _Sn_MR_MIP6B
    write8(d, _BSB_S0, _Sn_MR, mode)
    command(d, _CR_OPEN)
    wait_reg(d, _BSB_S0, _Sn_SR, 0xFF, _SOCK_MACRAW, "W5500 socket 0 did not open in MACRAW")
    d._tx_pending = False
    # the pointers OPEN set (DS 4.2): from here on only this driver moves them
    b = d._len2
    d._read(_BSB_S0, _Sn_RX_RD, b)
    d._rd = (b[0] << 8) | b[1]
    d._read(_BSB_S0, _Sn_TX_WR, b)
    d._wr = (b[0] << 8) | b[1]
    d._avail = 0


def close_socket(d):
    command(d, _CR_CLOSE)
    write8(d, _BSB_S0, _Sn_IR, 0xFF)  # clear every socket interrupt (ioLibrary close())
    wait_reg(d, _BSB_S0, _Sn_SR, 0xFF, _SOCK_CLOSED, "W5500 socket 0 did not close")
    d._tx_pending = False


def reopen(d):
    """Close and open socket 0: pointers back in step (DS 4.2 Sn_CR OPEN), buffers emptied.
    The configuration is written again first: a chip that reset by itself (brown-out, an RSTn
    glitch) lost SHAR and the buffer sizes, and MFEN would then drop every unicast frame."""
    try:
        close_socket(d)
        configure(d)
        open_socket(d)
        d._cnt[_SOCKET_REOPENS] += 1
    except OSError:
        d._cnt[_REOPEN_FAILED] += 1


def command(d, cmd):
    """Write Sn_CR and wait until the chip has taken it (DS 4.2: Sn_CR reads 0 again)."""
    write8(d, _BSB_S0, _Sn_CR, cmd)
    wait_reg(d, _BSB_S0, _Sn_CR, 0xFF, 0, "W5500 command not taken")


def wait_reg(d, bsb, addr, mask, want, what):
    clock = d.clock
    start = clock.ticks_ms()
    v = 0
    for i in range(_MAX_POLLS):
        v = d._read8(bsb, addr)
        if v & mask == want:
            return
        if i >= _SPIN_POLLS:
            if ticks_diff(clock.ticks_ms(), start) >= _CMD_WAIT_MS:
                break
            clock.sleep_ms(1)
    raise OSError(errors.ETIMEDOUT, "%s (reads 0x%02x)" % (what, v))


def write(d, bsb, addr, data):
    """One VDM write transaction."""
    h = d._h3
    h[0] = addr >> 8
    h[1] = addr & 0xFF
    h[2] = bsb | _RWB_WRITE | _OM_VDM
    d._cs(0)
    d._cnt[_SPI_TRANSACTIONS] += 1
    d._spi.write(h)
    d._spi.write(data)
    d._cs(1)


def write8(d, bsb, addr, v):
    d._r1[0] = v
    write(d, bsb, addr, d._r1)
