# dual: cpython micropython
# lib/tcpip/drivers/w5500.py against host_tools/mp/w5500_model.py through tests/host/spi_fake.py:
# bring-up, presence, frames both ways byte-exact, 16-bit pointer and 16 KB buffer wrap, the errata
# the driver must survive (Sn_RX_RSR read during an arrival, a length header out of step, full TX
# buffer, no SEND_OK, slow commands), filters, link state, SPI cost per frame, no heap allocation
# per frame on MicroPython, and a Stack answering ARP and ping through driver and model.
import sys

try:
    _ROOT = __file__.rsplit("/tests/host/", 1)[0] if "/tests/host/" in __file__ else "."
except NameError:  # pragma: no cover
    _ROOT = "."
_MP = _ROOT + "/host_tools/mp"
if _MP not in sys.path:
    sys.path.append(_MP)

import w5500_model as wm  # noqa: E402
from w5500_model import W5500Model  # noqa: E402
from listlink import ListLink  # noqa: E402
from spi_fake import FakeCs, FakeDma, FakeIntPin, FakeResetPin, FakeSpi  # noqa: E402
from segment import OUR_IP, OUR_MAC, PEER_IP, PEER_MAC, Sent, eth, ip_packet  # noqa: E402
from tcpip import errors  # noqa: E402
from tcpip import mem  # noqa: E402
from manualclock import ManualClock  # noqa: E402
from tcpip.drivers.w5500 import W5500  # noqa: E402
from tcpip.stack import Stack  # noqa: E402
from wirerep import ethernet  # noqa: E402
from wirerep import ipv4  # noqa: E402
from wirerep.arp import ArpRepr  # noqa: E402
from wirerep.icmp import IcmpRepr  # noqa: E402

MICROPYTHON = sys.implementation.name == "micropython"
OTHER_MAC = b"\x02\x00\x00\x00\x00\x99"


class PreloadedLink:
    """Allocation-free link for heap measurements: frames preallocated, sends only counted."""

    def __init__(self, frames):
        self.frames = frames
        self.next = 0
        self.armed = 0      # frames allowed to arrive
        self.sent = 0
        self.sent_bytes = 0

    def recv_into(self, buf):
        if self.armed <= 0 or self.next >= len(self.frames):
            return 0
        f = self.frames[self.next]
        self.next += 1
        self.armed -= 1
        mem.copy(buf, 0, f, 0, len(f))
        return len(f)

    def send(self, buf, n):
        self.sent += 1
        self.sent_bytes += n


def frame(n, dst=OUR_MAC, ethertype=0x0800, seed=0):
    f = bytearray(n)
    f[0:6] = dst
    f[6:12] = PEER_MAC
    f[12] = ethertype >> 8
    f[13] = ethertype & 0xFF
    for i in range(14, n):
        f[i] = (i * 31 + seed * 7 + 5) & 0xFF
    return bytes(f)


class Rig:
    def __init__(self, int_pin=False, reset=True, model=None, dma=False, **kw):
        self.link = ListLink()
        self.model = model if model is not None else W5500Model(self.link)
        self.model.link = self.link
        self.clock = ManualClock(1000)
        self.spi = FakeSpi(self.model)
        self.cs = FakeCs(self.model)
        self.int_pin = FakeIntPin(self.model) if int_pin else None
        self.dma = FakeDma(self.spi) if dma else None
        if dma:
            kw["dma"] = self.dma
        self.nic = W5500(self.spi, self.cs, reset=FakeResetPin(self.model) if reset else None,
                         mac=OUR_MAC, int_pin=self.int_pin, clock=self.clock, **kw)
        self.buf = bytearray(1518)

    def recv(self):
        n = self.nic.recv_into(self.buf)
        return bytes(self.buf[0:n])

    def cost(self, fn):
        t = self.model.spi_transactions
        b = self.model.spi_bytes
        fn()
        return self.model.spi_transactions - t, self.model.spi_bytes - b


# -- bring-up --------------------------------------------------------------------------------------
class SpyModel(W5500Model):
    """Logs the bring-up steps the chip sees, with the clock at each."""

    def __init__(self, clock):
        W5500Model.__init__(self)
        self.clock = clock
        self.log = []

    def reset_pin(self, level):
        self.log.append(("rst", level, self.clock.ticks_ms()))
        W5500Model.reset_pin(self, level)

    def select(self):
        if not self.log or self.log[-1][0] != "sel":
            self.log.append(("sel", 0, self.clock.ticks_ms()))
        W5500Model.select(self)

    def _read_common(self, off):
        if off == wm.VERSIONR:
            self.log.append(("version", 0, 0))
        return W5500Model._read_common(self, off)

    def _write_common(self, off, b):
        if off == wm.MR and b & wm.MR_RST:
            self.log.append(("mr_rst", 0, 0))
        if off == wm.SHAR:
            self.log.append(("shar", 0, 0))
        W5500Model._write_common(self, off, b)

    def _write_socket(self, n, off, b):
        if off == wm.Sn_RXBUF_SIZE:
            self.log.append(("size", n, b))
        if off == wm.Sn_CR:
            self.log.append(("cmd", n, b))
        if off == wm.Sn_MR:
            self.log.append(("mode", n, b))
        W5500Model._write_socket(self, n, off, b)


def test_bring_up_order_and_register_values():
    clock = ManualClock(5000)
    m = SpyModel(clock)
    nic = W5500(FakeSpi(m), FakeCs(m), reset=FakeResetPin(m), mac=OUR_MAC, clock=clock)
    steps = [e[0] for e in m.log]
    # reset pulse first, with the datasheet's times (5.5.1: >= 500 us low, PLL lock <= 1 ms)
    assert m.log[0][0] == "rst" and m.log[0][1] == 0 and m.log[1][0] == "rst" and m.log[1][1] == 1
    assert m.log[1][2] - m.log[0][2] >= 1
    assert m.log[2][0] == "sel" and m.log[2][2] - m.log[1][2] >= 1
    order = [s for s in steps if s in ("version", "mr_rst", "shar", "size", "mode", "cmd")]
    assert order[0] == "version" and order[1] == "mr_rst" and order[2] == "shar", order
    sizes = [e for e in m.log if e[0] == "size"]
    assert [e[1] for e in sizes] == [7, 6, 5, 4, 3, 2, 1, 0] and sizes[-1][2] == 16
    assert order.index("mode") > order.index("size") and order[-1] == "cmd"
    assert m.hard_resets == 1 and m.soft_resets == 1
    # registers after bring-up
    assert m.reg(wm.MR) == 0
    assert bytes(m.common[wm.SHAR:wm.SHAR + 6]) == OUR_MAC and nic.mac == OUR_MAC
    assert m.sreg(0, wm.Sn_RXBUF_SIZE) == 16 and m.sreg(0, wm.Sn_TXBUF_SIZE) == 16
    for n in range(1, 8):
        assert m.sreg(n, wm.Sn_RXBUF_SIZE) == 0 and m.sreg(n, wm.Sn_TXBUF_SIZE) == 0
    assert m.sreg(0, wm.Sn_MR) == wm.SN_MR_MACRAW | wm.SN_MR_MFEN | wm.SN_MR_MIP6B
    assert m.sreg(0, wm.Sn_SR) == wm.SOCK_MACRAW and m.sreg(0, wm.Sn_CR) == 0
    assert m.sreg16(0, wm.Sn_TX_FSR) == 16384 and m.sreg16(0, wm.Sn_RX_RSR) == 0
    assert m.reg(wm.SIMR) == 0 and m.reg(wm.IMR) == 0
    assert nic.mtu == 1500 and nic.link_up()
    assert nic.counters.spi_transactions == m.spi_transactions


def test_bring_up_without_reset_pin_and_ipv6_wanted():
    r = Rig(reset=False, ipv6=True)
    assert r.model.hard_resets == 0 and r.model.soft_resets == 1
    assert r.model.sreg(0, wm.Sn_MR) == wm.SN_MR_MACRAW | wm.SN_MR_MFEN
    f = frame(80, ethertype=0x86DD)
    r.link.inbox.append(f)
    assert r.recv() == f


def test_default_mac_is_locally_administered_unicast():
    m = W5500Model()
    nic = W5500(FakeSpi(m), FakeCs(m), clock=ManualClock())
    assert len(nic.mac) == 6 and nic.mac[0] & 0x03 == 0x02
    assert bytes(m.common[wm.SHAR:wm.SHAR + 6]) == nic.mac


def test_absent_chip_raises_clear_oserror():
    m = W5500Model()
    m.present = False
    try:
        W5500(FakeSpi(m), FakeCs(m), reset=FakeResetPin(m), clock=ManualClock())
        assert False, "no error"
    except OSError as e:
        assert e.args[0] == errors.ENODEV
        assert "VERSIONR" in e.args[1] and "0x00" in e.args[1]


class OtherChip(W5500Model):
    def _read_common(self, off):
        if off == wm.VERSIONR:
            return 0x51
        return W5500Model._read_common(self, off)


def test_wrong_chip_version_raises():
    m = OtherChip()
    try:
        W5500(FakeSpi(m), FakeCs(m), clock=ManualClock())
        assert False, "no error"
    except OSError as e:
        assert e.args[0] == errors.ENODEV and "0x51" in e.args[1]


def test_soft_reset_wait_and_its_bound():
    m = W5500Model()
    m.reset_busy_reads = 5
    W5500(FakeSpi(m), FakeCs(m), mac=OUR_MAC, clock=ManualClock())
    assert m.sreg(0, wm.Sn_SR) == wm.SOCK_MACRAW
    m = W5500Model()
    m.reset_busy_reads = 1 << 30
    clock = ManualClock()
    try:
        W5500(FakeSpi(m), FakeCs(m), mac=OUR_MAC, clock=clock)
        assert False, "no error"
    except OSError as e:
        assert e.args[0] == errors.ETIMEDOUT and "MR.RST" in e.args[1]
    assert m.spi_transactions < 200 and 50 <= clock.ticks_ms() < 1000


def test_hardware_reset_pin_clears_registers_and_blocks_spi():
    m = W5500Model()
    m.common[wm.SHAR] = 0x12
    m.sock[0][wm.Sn_RXBUF_SIZE] = 16
    m.reset_pin(0)
    assert m.common[wm.SHAR] == 0 and m.sock[0][wm.Sn_RXBUF_SIZE] == 2 and m.hard_resets == 1
    m.select()
    r = bytearray(4)
    m.xfer(b"\x00\x39\x00\x00", r, 4)  # VERSIONR while in reset: nothing answers
    m.deselect()
    assert r == bytearray(4) and m.spi_transactions == 0
    m.reset_pin(1)
    m.select()
    m.xfer(b"\x00\x39\x00\x00", r, 4)
    m.deselect()
    assert r == bytearray(b"\x01\x02\x03\x04")


# -- the model's SPI frame format ------------------------------------------------------------------
def _txn(m, w):
    r = bytearray(len(w))
    m.select()
    m.xfer(w, r, len(w))
    m.deselect()
    return r


def test_model_frame_formats_fdm_chain_and_vdm():
    m = W5500Model()
    # VDM write of SHAR (6 bytes), VDM read back; FDM 1/2/4 frames chained in one CS-low period
    _txn(m, b"\x00\x09\x04" + OUR_MAC)
    assert bytes(_txn(m, b"\x00\x09\x00" + bytes(6))[3:]) == OUR_MAC
    r = _txn(m, b"\x00\x39\x01\x00" + b"\x00\x09\x02\x00\x00" + b"\x00\x0B\x03\x00\x00\x00\x00")
    assert r[3] == 4 and bytes(r[7:9]) == OUR_MAC[0:2] and bytes(r[12:16]) == OUR_MAC[2:6]
    assert r[0:3] == bytearray(b"\x01\x02\x03") and r[4:7] == bytearray(b"\x01\x02\x03")
    # an FDM 2-byte write then an FDM 1-byte read in one transaction
    _txn(m, b"\x00\x01\x06\xAB\xCD" + b"\x00\x01\x01\x00")
    assert m.common[1] == 0xAB and m.common[2] == 0xCD
    assert m.spi_transactions == 4 and m.spi_bytes == 9 + 9 + 16 + 9


def test_model_buffer_offsets_map_into_the_socket_buffer():
    m = W5500Model()
    # socket 0 TX buffer is 2 KB by default: offset 0x0800 is offset 0 again, 0xFFFF wraps to 0
    _txn(m, b"\x08\x00\x14" + b"\x11\x22")
    assert m.tx_mem[0] == 0x11 and m.tx_mem[1] == 0x22
    _txn(m, b"\xFF\xFF\x14" + b"\x33\x44")
    assert m.tx_mem[0x7FF] == 0x33 and m.tx_mem[0] == 0x44
    # socket 1's TX buffer follows socket 0's (3.3)
    _txn(m, b"\x00\x00\x34" + b"\x55")
    assert m.tx_mem[0x800] == 0x55
    # socket 0 RX buffer with 16 KB: a VDM read across 0x3FFF -> 0x0000
    m.sock[0][wm.Sn_RXBUF_SIZE] = 16
    m.rx_mem[0x3FFF] = 0x66
    m.rx_mem[0] = 0x77
    r = _txn(m, b"\x3F\xFF\x18" + bytes(2))
    assert r[3] == 0x66 and r[4] == 0x77


def test_model_commands_and_pointer_registers():
    m = W5500Model(ListLink())
    m.sock[0][wm.Sn_MR] = wm.SN_MR_MACRAW
    _txn(m, b"\x00\x01\x0D\x01")  # OPEN
    assert m.sreg(0, wm.Sn_SR) == wm.SOCK_MACRAW and m.sreg(0, wm.Sn_CR) == 0
    m.link.inbox.append(frame(60))
    r = _txn(m, b"\x00\x26\x08" + bytes(6))  # RX_RSR, RX_RD, RX_WR in one VDM burst
    assert (r[3] << 8 | r[4]) == 62 and (r[5] << 8 | r[6]) == 0 and (r[7] << 8 | r[8]) == 62
    r = _txn(m, b"\x00\x00\x18" + bytes(3))
    assert r[3] == 0 and r[4] == 62 and r[5] == OUR_MAC[0]
    assert m.sreg(0, wm.Sn_IR) & wm.IR_RECV
    _txn(m, b"\x00\x02\x0D\x04")  # clear RECV
    assert m.sreg(0, wm.Sn_IR) == 0
    _txn(m, b"\x00\x28\x0E\x00\x3E" + b"\x00\x01\x0D\x40")  # RX_RD = 62, RECV
    assert m.sreg16(0, wm.Sn_RX_RSR) == 0
    # TX: 60 bytes at TX_WR 0, TX_WR = 60, SEND
    _txn(m, b"\x00\x00\x14" + frame(60, dst=PEER_MAC))
    _txn(m, b"\x00\x24\x0E\x00\x3C" + b"\x00\x01\x0D\x20")
    assert m.link.sent == [frame(60, dst=PEER_MAC)] and m.sreg(0, wm.Sn_IR) & wm.IR_SENDOK
    assert m.sreg16(0, wm.Sn_TX_RD) == 60 and m.sreg16(0, wm.Sn_TX_FSR) == 2048
    # a short frame goes out padded to 60 bytes
    _txn(m, b"\x00\x3C\x14" + frame(20, dst=PEER_MAC))
    _txn(m, b"\x00\x24\x0E\x00\x50" + b"\x00\x01\x0D\x20")
    assert m.link.sent[-1] == frame(20, dst=PEER_MAC) + bytes(40)
    _txn(m, b"\x00\x01\x0D\x10")  # CLOSE
    assert m.sreg(0, wm.Sn_SR) == wm.SOCK_CLOSED


# -- frames through driver and model ---------------------------------------------------------------
def test_frames_both_ways_byte_exact():
    r = Rig()
    for n in (14, 59, 60, 61, 64, 95, 128, 511, 1000, 1513, 1514):
        f = frame(n, seed=n)
        r.link.inbox.append(f)
        assert r.recv() == f, n
        g = frame(n, dst=PEER_MAC, seed=n + 1)
        r.nic.send(g, n)
        want = g if n >= 60 else g + bytes(60 - n)
        assert r.link.sent[-1] == want, n
    assert r.recv() == b""
    c = r.nic.counters
    assert c.rx_frames == 11 and c.tx_frames == 11 and c.rx_malformed_reset == 0
    assert r.model.rx_frames == 11 and r.model.tx_frames == 11


def test_send_takes_n_bytes_of_a_longer_buffer_and_a_memoryview():
    r = Rig()
    g = bytearray(frame(1514, dst=PEER_MAC))
    r.nic.send(g, 100)
    assert r.link.sent[-1] == bytes(g[0:100])
    r.nic.send(memoryview(g), 77)
    assert r.link.sent[-1] == bytes(g[0:77])


def test_pointer_wrap_across_16_bit_and_16_kb_boundaries():
    r = Rig()
    sizes = (1514, 60, 777, 1200, 61, 1514, 333, 1024, 90, 1500)
    rx_wraps = 0
    tx_wraps = 0
    last_rx = 0
    last_tx = 0
    straddled = 0
    for i in range(220):
        n = sizes[i % len(sizes)]
        f = frame(n, seed=i)
        start = (r.model.sreg16(0, wm.Sn_RX_RD) + 2) & 0x3FFF
        if start + n > 0x4000:
            straddled += 1
        r.link.inbox.append(f)
        assert r.recv() == f, i
        g = frame(n, dst=PEER_MAC, seed=i + 1000)
        r.nic.send(g, n)
        assert r.link.sent[-1] == g, i
        rd = r.model.sreg16(0, wm.Sn_RX_RD)
        wr = r.model.sreg16(0, wm.Sn_TX_WR)
        if rd < last_rx:
            rx_wraps += 1
        if wr < last_tx:
            tx_wraps += 1
        last_rx = rd
        last_tx = wr
    assert rx_wraps >= 2 and tx_wraps >= 2 and straddled >= 5, (rx_wraps, tx_wraps, straddled)
    # a burst: ten full frames wait in the 16 KB buffer at once, read in order
    burst = [frame(1514, seed=500 + i) for i in range(10)]
    for f in burst:
        r.link.inbox.append(f)
    r.model.select()  # the chip takes them in before the driver looks
    r.model.deselect()
    for f in burst:
        assert r.recv() == f
    assert r.recv() == b"" and r.model.rx_dropped_full == 0


def test_rx_buffer_full_drops_are_counted_and_later_frames_work():
    r = Rig()
    for i in range(14):
        r.link.inbox.append(frame(1514, seed=i))
    got = 0
    while r.recv():
        got += 1
    assert got == 10 and r.model.rx_dropped_full == 4  # 10 * 1516 <= 16384 < 11 * 1516
    f = frame(300)
    r.link.inbox.append(f)
    assert r.recv() == f


def test_rx_rsr_read_during_arrival_is_not_trusted():
    r = Rig()
    f = frame(600)
    r.link.inbox.append(f)
    r.model.rsr_glitch_reads = 1
    assert r.recv() == f
    assert r.nic.counters.rx_rsr_unstable == 1 and r.nic.counters.rx_malformed_reset == 0
    # a value that never settles: the driver gives up for now (bounded), nothing lost
    r.link.inbox.append(f)
    r.model.rsr_glitch_reads = 1000
    t, _ = r.cost(lambda: r.nic.recv_into(r.buf))
    assert t == 8 and r.nic.counters.rx_rsr_unstable == 9
    start = r.clock.ticks_ms()
    assert r.nic.wait(100) and r.clock.ticks_ms() == start  # frames may wait: no sleeping
    r.model.rsr_glitch_reads = 0
    assert r.recv() == f and r.nic.counters.rx_malformed_reset == 0


def _corrupt_header(r, value):
    rd = r.model.sreg16(0, wm.Sn_RX_RD) & 0x3FFF
    r.model.rx_mem[rd] = value >> 8
    r.model.rx_mem[(rd + 1) & 0x3FFF] = value & 0xFF


def test_malformed_length_reopens_socket_and_later_frames_work():
    for bad in (5, 15, 1517, 0xFFFF, 700):  # too short, too long, longer than what was received
        r = Rig()
        r.link.inbox.append(frame(200))
        r.model.select()
        r.model.deselect()
        _corrupt_header(r, bad if bad != 700 else 202 + 500)
        cmds = r.model.commands
        assert r.nic.recv_into(r.buf) == 0
        c = r.nic.counters
        assert c.rx_malformed_reset == 1 and c.socket_reopens == 1, bad
        assert r.model.commands == cmds + 2  # CLOSE, OPEN
        assert r.model.sreg(0, wm.Sn_SR) == wm.SOCK_MACRAW
        assert r.model.sreg16(0, wm.Sn_RX_RSR) == 0
        for i in range(3):
            f = frame(100 + i)
            r.link.inbox.append(f)
            assert r.recv() == f
        g = frame(90, dst=PEER_MAC)
        r.nic.send(g, 90)
        assert r.link.sent[-1] == g


def test_frame_larger_than_the_callers_buffer_is_skipped():
    r = Rig()
    r.link.inbox.append(frame(1514))
    assert r.nic.recv_into(bytearray(100)) == 0
    assert r.nic.counters.rx_dropped_too_big == 1
    f = frame(80)
    r.link.inbox.append(f)
    assert r.recv() == f


class FsrSpy(W5500Model):
    """Counts reads of socket 0's Sn_TX_FSR."""

    def __init__(self):
        W5500Model.__init__(self)
        self.fsr_reads = 0

    def _read_socket(self, n, off):
        if n == 0 and off in (wm.Sn_TX_FSR, wm.Sn_TX_FSR + 1):
            self.fsr_reads += 1
        return W5500Model._read_socket(self, n, off)


def test_tx_never_needs_the_free_size():
    # One frame at a time is on its way (SEND waits for the last SEND_OK) and the 16 KB buffer
    # holds two, so Sn_TX_FSR is never read (nor can a glitching read of it hurt), however slow
    # the sends are and however many 16-bit pointer wraps they take.
    m = FsrSpy()
    m.send_delay = 2
    m.fsr_glitch_reads = 1000
    r = Rig(model=m)
    frames = [frame(1514 if i % 3 else 61, dst=PEER_MAC, seed=i) for i in range(60)]
    for g in frames:
        r.nic.send(g, len(g))
    for _ in range(4):
        m.select()
        m.deselect()
    assert r.link.sent == frames and m.fsr_reads == 0
    assert r.nic.counters.tx_no_space == 0 and r.nic.counters.tx_timeouts == 0


def test_send_ok_timeout_is_bounded_and_recovers():
    r = Rig()
    a = frame(100, dst=PEER_MAC, seed=1)
    b = frame(100, dst=PEER_MAC, seed=2)
    c = frame(100, dst=PEER_MAC, seed=3)
    r.model.send_stall = True
    r.nic.send(a, 100)            # taken, never completes
    start = r.clock.ticks_ms()
    t, _ = r.cost(lambda: r.nic.send(b, 100))
    assert r.nic.counters.tx_timeouts == 1 and r.nic.counters.socket_reopens == 1
    assert 20 <= r.clock.ticks_ms() - start <= 100 and t < 100
    r.model.send_stall = False
    r.nic.send(c, 100)
    assert r.link.sent == [b, c] and r.nic.counters.tx_frames == 3


def test_chip_reset_behind_the_drivers_back_is_recovered():
    # a W5500 reset by itself (brown-out, RSTn glitch) forgets SHAR, the buffer sizes and socket 0;
    # the send that then never gets SEND_OK reopens the socket, which must restore all of them, or
    # MFEN with SHAR 00:00:00:00:00:00 drops every unicast frame to us from then on
    r = Rig(int_pin=True)
    r.nic.send(frame(100, dst=PEER_MAC, seed=1), 100)
    r.model.soft_reset()
    for i in range(3):
        r.nic.send(frame(100, dst=PEER_MAC, seed=10 + i), 100)
    assert r.nic.counters.socket_reopens >= 1
    assert r.model.sreg(0, wm.Sn_SR) == wm.SOCK_MACRAW
    assert r.model.sreg(0, wm.Sn_RXBUF_SIZE) == 16 and r.model.sreg(0, wm.Sn_TXBUF_SIZE) == 16
    f = frame(300, seed=7)
    r.link.inbox.append(f)
    assert r.recv() == f
    assert r.link.sent[-1] == frame(100, dst=PEER_MAC, seed=12)
    assert r.model.reg(wm.SIMR) == 0x01 and r.model.sreg(0, wm.Sn_IMR) == wm.IR_RECV


def test_send_ok_of_a_slow_send_is_awaited_before_the_next():
    r = Rig()
    r.model.send_delay = 3
    frames = [frame(700, dst=PEER_MAC, seed=i) for i in range(5)]
    for g in frames:
        r.nic.send(g, 700)
    r.model.select()
    r.model.deselect()
    r.model.select()
    r.model.deselect()
    r.model.select()
    r.model.deselect()
    assert r.link.sent == frames and r.nic.counters.tx_timeouts == 0


def test_slow_commands():
    m = W5500Model()
    m.cmd_latency = 2
    r = Rig(model=m)
    assert m.sreg(0, wm.Sn_SR) == wm.SOCK_MACRAW
    for i in range(6):
        f = frame(300 + i, seed=i)
        r.link.inbox.append(f)
        got = b""
        for _ in range(4):
            got = r.recv()
            if got:
                break
        assert got == f, i
        g = frame(200, dst=PEER_MAC, seed=i)
        r.nic.send(g, 200)
    for _ in range(3):
        r.recv()
    assert r.link.sent == [frame(200, dst=PEER_MAC, seed=i) for i in range(6)]
    assert r.nic.counters.rx_cmd_busy > 0 and r.nic.counters.rx_malformed_reset == 0


def test_send_waits_until_the_last_command_is_taken():
    # DS 4.2 Sn_CR: a command is taken when Sn_CR reads 0 again; one written before that is lost.
    # send() right after a receive must not write SEND over a RECV the chip has not taken yet
    # (a lost RECV leaves Sn_RX_RSR counting a frame already read: the pointers go out of step)
    for latency in (2, 4, 8):
        m = W5500Model()
        m.cmd_latency = latency
        r = Rig(model=m)
        for i in range(6):
            f = frame(300 + i, seed=i)
            r.link.inbox.append(f)
            got = b""
            for _ in range(2 * latency + 4):
                got = r.recv()
                if got:
                    break
            assert got == f, (latency, i)
            r.nic.send(frame(200, dst=PEER_MAC, seed=i), 200)
        for _ in range(2 * latency + 4):
            r.recv()
        assert r.link.sent == [frame(200, dst=PEER_MAC, seed=i) for i in range(6)], latency
        c = r.nic.counters
        assert c.rx_malformed_reset == 0 and c.socket_reopens == 0 and c.tx_no_space == 0, \
            (latency, c.snapshot())


def test_mac_filter_and_ipv6_block():
    r = Rig()
    mine = frame(100)
    other = frame(100, dst=OTHER_MAC)
    bcast = frame(100, dst=b"\xff\xff\xff\xff\xff\xff")
    mcast = frame(100, dst=b"\x01\x00\x5e\x00\x00\xfb")
    ipv6 = frame(100, ethertype=0x86DD)
    for f in (other, mine, bcast, mcast, ipv6):
        r.link.inbox.append(f)
    assert r.recv() == mine and r.recv() == bcast and r.recv() == mcast and r.recv() == b""
    assert r.model.rx_filtered_mac == 1 and r.model.rx_filtered_ipv6 == 1


def test_link_down_and_up():
    r = Rig()
    assert r.nic.link_up()
    r.model.set_link(False)
    assert not r.nic.link_up()
    r.link.inbox.append(frame(100))
    assert r.recv() == b"" and r.model.rx_dropped_link == 1
    r.model.set_link(True, speed_100=False, full_duplex=False)
    assert r.nic.link_up() and r.model.reg(wm.PHYCFGR) & 0x07 == 0x01
    f = frame(100)
    r.link.inbox.append(f)
    assert r.recv() == f


def test_sends_while_the_link_is_down_do_not_wait_for_send_ok():
    # a W5500 gives no SEND_OK while the link is down (ESP-IDF's emac_w5500_transmit gives up on
    # SEND_OK when PHYCFGR shows no link): each send then must not spend the 20 ms SEND_OK wait
    r = Rig()
    r.model.set_link(False)
    start = r.clock.ticks_ms()
    for i in range(5):
        r.nic.send(frame(100, dst=PEER_MAC, seed=i), 100)
    assert r.clock.ticks_ms() - start < 5, r.clock.ticks_ms() - start
    assert r.nic.counters.tx_link_down == 4 and r.nic.counters.tx_timeouts == 0
    r.model.set_link(True)
    g = frame(100, dst=PEER_MAC, seed=9)
    r.nic.send(g, 100)
    r.nic.send(g, 100)
    assert r.link.sent[-2:] == [g, g] and r.nic.counters.socket_reopens == 0
    f = frame(100)
    r.link.inbox.append(f)
    assert r.recv() == f


def test_int_pin_follows_received_frames():
    r = Rig(int_pin=True)
    m = r.model
    assert m.reg(wm.SIMR) == 0x01 and m.sreg(0, wm.Sn_IMR) == wm.IR_RECV
    assert r.int_pin.value() == 1
    start = r.clock.ticks_ms()
    assert not r.nic.wait(5) and r.clock.ticks_ms() - start == 5
    f = frame(100)
    g = frame(200)
    r.link.inbox.append(f)
    r.link.inbox.append(g)
    m.select()
    m.deselect()
    assert r.int_pin.value() == 0 and r.nic.wait(50)
    assert r.recv() == f and r.int_pin.value() == 1  # cleared before reading RSR, frame g still there
    assert r.recv() == g and r.recv() == b"" and r.int_pin.value() == 1
    r.nic.send(frame(100, dst=PEER_MAC), 100)
    r.nic.send(frame(100, dst=PEER_MAC), 100)
    assert r.int_pin.value() == 1  # SEND_OK does not raise INTn
    # INTn falls when a frame arrives, without waiting for the host's next transaction
    r.link.inbox.append(f)
    assert r.int_pin.value() == 0 and r.recv() == f and r.int_pin.value() == 1


# -- SPI cost per frame ----------------------------------------------------------------------------
def _blocks(n):
    return (n + 31) // 32 * 32  # transfers are whole 32-byte blocks


def test_spi_transactions_and_bytes_per_frame():
    # poll [CR, RSR, RSR, length at RX_RD] = 4 + 5 + 5 + 5 bytes; a frame: 3 + its blocks (with the
    # next length header when another frame waits); release [RX_RD, CR] = 5 + 4; send: the
    # frame's blocks (SPI header included), then [IR, CR] read + [IR, TX_WR, CR] written = 21
    r = Rig()
    assert r.cost(lambda: r.nic.recv_into(r.buf)) == (1, 19)  # idle poll
    for n in (60, 1514):
        f = frame(n)
        r.link.inbox.append(f)
        t, b = r.cost(lambda: r.nic.recv_into(r.buf))
        assert (t, b) == (3, 19 + 3 + _blocks(n) + 9), (n, t, b)
        g = frame(n, dst=PEER_MAC)
        t, b = r.cost(lambda: r.nic.send(g, n))
        assert (t, b) == (2, _blocks(3 + n) + 21), (n, t, b)
    assert (19 + 3 + 1536 + 9) / 1514 <= 1.04 and (1536 + 21) / 1514 <= 1.03
    # a batch: five frames that wait together cost one poll, one transaction each, one release
    burst = [frame(1514 - 100 * i, seed=i) for i in range(5)]
    for f in burst:
        r.link.inbox.append(f)
    r.model.select()
    r.model.deselect()
    got = []
    t, b = r.cost(lambda: got.extend([r.recv() for _ in range(5)]))
    assert got == burst and t == 1 + 5 + 1, t
    assert b == 19 + sum([3 + _blocks(len(f) + 2) for f in burst[:4]]) + 3 + _blocks(len(burst[4])) + 9
    # the same with one transaction per FDM frame
    r = Rig(fdm_chain=False)
    assert r.cost(lambda: r.nic.recv_into(r.buf)) == (4, 19)
    f = frame(1514)
    r.link.inbox.append(f)
    assert r.cost(lambda: r.nic.recv_into(r.buf)) == (4 + 1 + 2, 19 + 3 + 1536 + 9)
    assert bytes(r.buf[0:1514]) == f
    g = frame(1514, dst=PEER_MAC)
    assert r.cost(lambda: r.nic.send(g, 1514)) == (1 + 2 + 3, 1536 + 21) and r.link.sent[-1] == g
    r = Rig(int_pin=True)
    assert r.cost(lambda: r.nic.recv_into(r.buf)) == (1, 23)


# -- DMA: the next frame read while the stack works on the last (drivers/rp2dma.py) ---------------
def test_dma_reads_the_next_frame_ahead_and_frames_stay_byte_exact():
    # frames of 510 bytes and more (512 with the length header) are read by DMA (after the first
    # of a burst, ahead of time); smaller ones cost less read at once
    r = Rig(dma=True)
    sizes = (1514, 60, 777, 1200, 61, 1514, 333, 1024, 90, 1500, 509, 510)
    ahead = 0
    for rnd in range(40):
        burst = [frame(sizes[(rnd + i) % len(sizes)], seed=rnd * 10 + i) for i in range(1 + rnd % 7)]
        ahead += len([f for f in burst if len(f) >= 510])
        for f in burst:
            r.link.inbox.append(f)
        r.model.select()  # they arrive together: one poll, then each frame read ahead of time
        r.model.deselect()
        for i in range(len(burst)):
            assert r.recv() == burst[i], (rnd, i)
            if i % 2:
                g = frame(100 + i, dst=PEER_MAC, seed=rnd)
                r.nic.send(g, len(g))  # a send while a frame is being read ahead
                assert r.link.sent[-1] == g
        assert r.recv() == b"" and r.nic._ahead == 0
    c = r.nic.counters
    assert c.rx_malformed_reset == 0 and c.rx_frames == sum([1 + k % 7 for k in range(40)])
    assert r.dma.reads == ahead and ahead > 50 and r.model.rx_dropped_full == 0


def test_dma_read_ahead_gives_its_space_back_only_when_read():
    # RX_RD moves past a frame read ahead only once its transfer is over: the chip must not
    # reuse memory a DMA read is still taking
    r = Rig(dma=True)
    burst = [frame(1514, seed=i) for i in range(3)]
    for f in burst:
        r.link.inbox.append(f)
    r.model.select()
    r.model.deselect()
    assert r.recv() == burst[0] and r.nic._ahead == 1
    assert r.model.sreg16(0, wm.Sn_RX_RD) == 0  # nothing released while a read runs
    assert r.recv() == burst[1] and r.recv() == burst[2]
    assert r.model.sreg16(0, wm.Sn_RX_RD) == 3 * 1516 and r.nic._ahead == 0


def test_dma_link_check_during_a_read_ahead_and_a_bad_header_found_by_one():
    r = Rig(dma=True)
    for i in range(4):
        r.link.inbox.append(frame(600, seed=i))
    r.model.select()
    r.model.deselect()
    # the length header of the fourth frame goes bad in the chip's memory (frames of 602 bytes
    # with their headers, from offset 0)
    r.model.rx_mem[3 * 602] = 0
    r.model.rx_mem[3 * 602 + 1] = 5
    assert r.recv() == frame(600, seed=0) and r.nic._ahead == 1
    assert r.nic.link_up() and r.nic._ahead == 2  # the bus freed, the frame kept
    assert r.recv() == frame(600, seed=1)
    assert r.recv() == frame(600, seed=2)  # its read ahead brought the bad header: not started
    assert r.nic._ahead == 0 and r.nic.counters.rx_malformed_reset == 0
    assert r.recv() == b"" and r.nic.counters.rx_malformed_reset == 1  # found, socket reopened
    f = frame(100, seed=9)
    r.link.inbox.append(f)
    assert r.recv() == f and r.nic.counters.socket_reopens == 1


def test_dma_writes_a_frame_while_the_stack_goes_on():
    # a frame of 510 bytes or more goes out of _dtx by DMA; its SEND waits for the transfer: the
    # next bus use issues it, or the write's end (the IRQ's doorbell) when nothing comes first
    r = Rig(dma=True)
    g = frame(1514, dst=PEER_MAC, seed=1)
    r.nic.send(g, 1514)
    assert r.link.sent == [] and r.dma.job is not None  # still being written
    assert r.recv() == b""  # the next bus use: the transfer ends, SEND
    assert r.link.sent == [g]
    h = frame(800, dst=PEER_MAC, seed=2)
    r.nic.send(h, 800)
    assert r.link.sent == [g]
    r.dma.complete()  # nothing else touches the bus: the doorbell sends it
    assert r.link.sent == [g, h] and r.nic._txing == 0 and r.nic.counters.tx_frames == 2
    small = frame(100, dst=PEER_MAC, seed=3)  # below 510 bytes: machine.SPI, sent at once
    r.nic.send(small, 100)
    assert r.link.sent[-1] == small and r.dma.writes == 2


def test_dma_frames_both_ways_interleaved_stay_byte_exact():
    r = Rig(dma=True)
    sizes = (1514, 60, 777, 1200, 61, 1514, 333, 1024, 509, 510)
    out = []
    for rnd in range(30):
        burst = [frame(sizes[(rnd + i) % len(sizes)], seed=rnd * 10 + i) for i in range(1 + rnd % 5)]
        for f in burst:
            r.link.inbox.append(f)
        r.model.select()
        r.model.deselect()
        for i in range(len(burst)):
            g = frame(sizes[(rnd + 3 * i) % len(sizes)], dst=PEER_MAC, seed=rnd * 10 + i)
            r.nic.send(g, len(g))
            out.append(g)
            assert r.recv() == burst[i], (rnd, i)
            if rnd % 3 == 0:
                r.dma.complete()
    r.recv()
    assert r.link.sent == out and r.nic.counters.tx_timeouts == 0
    assert r.dma.writes > 20 and r.dma.reads > 10


def test_dma_frame_resent_from_its_buffer_after_a_send_ok_timeout():
    r = Rig(dma=True)
    a = frame(1000, dst=PEER_MAC, seed=1)
    b = frame(1000, dst=PEER_MAC, seed=2)
    r.model.send_stall = True
    r.nic.send(a, 1000)
    r.recv()  # a's SEND: taken, never completes
    r.nic.send(b, 1000)
    start = r.clock.ticks_ms()
    r.recv()  # b's SEND waits for a's SEND_OK in vain: reopen, b written again from _dtx
    assert r.nic.counters.tx_timeouts == 1 and r.nic.counters.socket_reopens == 1
    assert 20 <= r.clock.ticks_ms() - start <= 100
    r.model.send_stall = False
    r.recv()
    assert r.link.sent == [b]


def test_dma_stack_answers_ping_through_the_chip():
    r = Rig(dma=True)
    stack = Stack(r.nic, r.clock, addr="192.0.2.2/24", gateway="192.0.2.1")
    pings = []
    for i in range(6):
        data = b"ping %d " % i * 80  # frames of ~600 bytes: read ahead by DMA
        icmp = bytearray(8 + len(data))
        icmp[8:] = data
        IcmpRepr(8, 0, 0x4242, i, len(data)).emit(icmp, 0)
        pings.append(eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4,
                         ip_packet(PEER_IP, OUR_IP, ipv4.PROTO_ICMP, icmp)))
    stack.arp.state[0] = 2  # the peer's MAC known (as an ARP exchange would teach it)
    stack.arp.ip[0:4] = PEER_IP
    stack.arp.mac[0:6] = PEER_MAC
    stack.arp.deadline[0] = 1 << 28
    for p in pings:
        r.link.inbox.append(p)
    stack.poll()
    replies = [Sent(f) for f in r.link.sent]
    assert [s.icmp.seq for s in replies] == list(range(6)) and stack.counters.icmp_echo_reply_sent == 6
    assert r.dma.reads == 6  # every frame by DMA, those after the first of the burst ahead of time


def test_bad_send_sizes_are_dropped_not_raised():
    r = Rig()
    r.nic.send(bytearray(2000), 1515)
    r.nic.send(bytearray(10), 10)
    r.nic.send(bytearray(20), 30)
    assert r.nic.counters.tx_dropped_size == 3 and r.link.sent == []


def test_no_heap_allocation_per_frame_on_micropython():
    if not MICROPYTHON:
        return  # gc.mem_alloc is MicroPython's; CPython has no equivalent to assert on
    import gc
    sizes = (60, 1514, 333, 1514, 61, 900, 1514, 64)
    frames = [bytearray(frame(sizes[i % len(sizes)], seed=i)) for i in range(40)]
    link = PreloadedLink(frames)
    m = W5500Model(link)
    nic = W5500(FakeSpi(m), FakeCs(m), reset=FakeResetPin(m), mac=OUR_MAC, clock=ManualClock())
    buf = bytearray(1518)
    tx = frames[1]
    link.armed = 1
    nic.recv_into(buf)   # warm up both paths
    nic.send(tx, 1514)
    gc.collect()
    gc.disable()
    try:
        before = gc.mem_alloc()
        got = 0
        for i in range(30):
            link.armed = 1
            n = nic.recv_into(buf)
            got += n
            nic.send(buf, n)
            nic.recv_into(buf)  # idle poll
        after = gc.mem_alloc()
    finally:
        gc.enable()
    assert got > 30 * 60 and link.sent == 31 and nic.counters.rx_frames == 31
    assert after - before == 0, after - before


# -- a Stack over the driver over the model --------------------------------------------------------
def test_stack_answers_arp_and_ping_through_the_chip():
    r = Rig()
    stack = Stack(r.nic, r.clock, addr="192.0.2.2/24", gateway="192.0.2.1")
    a = ArpRepr(1, PEER_MAC, PEER_IP, b"\x00" * 6, OUR_IP)
    body = bytearray(28)
    a.emit(body, 0)
    r.link.inbox.append(eth(ethernet.BROADCAST, PEER_MAC, ethernet.ETHERTYPE_ARP, body))
    stack.poll()
    assert len(r.link.sent) == 1
    s = Sent(r.link.sent[0])
    assert s.arp is not None and s.arp.oper == 2 and s.arp.sha == OUR_MAC and s.arp.tpa == PEER_IP
    assert s.eth.dst == PEER_MAC and s.eth.src == OUR_MAC
    data = b"ping through the W5500 model " * 4
    icmp = bytearray(8 + len(data))
    icmp[8:] = data
    IcmpRepr(8, 0, 0x4242, 7, len(data)).emit(icmp, 0)
    r.link.inbox.append(eth(OUR_MAC, PEER_MAC, ethernet.ETHERTYPE_IPV4,
                          ip_packet(PEER_IP, OUR_IP, ipv4.PROTO_ICMP, icmp)))
    stack.poll()
    assert len(r.link.sent) == 2
    s = Sent(r.link.sent[1])
    assert s.icmp is not None and s.icmp.type == 0 and s.icmp.ident == 0x4242 and s.icmp.seq == 7
    assert s.payload == data and s.ip.dst == PEER_IP and s.eth.dst == PEER_MAC
    assert stack.counters.icmp_echo_reply_sent == 1 and r.nic.counters.rx_frames == 2

