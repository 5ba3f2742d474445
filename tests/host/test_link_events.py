# dual: cpython micropython
# Link events (issue 10, item 5): the stack asks the device's link_up() once a second (one register
# read on a chip), counts and reports a change (stack.link, stack.on_link(up), link_down/link_up),
# forgets its neighbours when the cable goes, and has DHCP confirm the lease with INIT-REBOOT
# (RFC 2131 3.2) when it comes back: ACK -> bound again, NAK -> INIT, silence -> the old lease.
from segment import Harness
from test_dhcp import YIADDR, DhcpHarness, bootp_reply, server_frame
from tcpip import dhcp


class Cable:
    def __init__(self):
        self.up = True
        self.asked = 0

    def __call__(self):
        self.asked += 1
        return self.up


def wired(h):
    cable = Cable()
    h.dev.link_up = cable
    h.stack._link_up = cable  # (the stack takes the device's link_up when it is made)
    return cable


def seconds(h, n):
    for _ in range(n):
        h.advance(1000)


def test_the_link_is_read_once_a_second_and_changes_are_reported():
    h = Harness()
    cable = wired(h)
    seen = []
    h.stack.on_link = seen.append
    seconds(h, 2)
    assert h.stack.link is True and seen == []  # the first look is no change
    asked = cable.asked
    for _ in range(10):
        h.advance(100)
    assert cable.asked - asked == 1  # bounded: one read a second, however often poll runs
    cable.up = False
    h.advance(1000)
    assert h.stack.link is True  # one reading is not enough: a second one must agree
    h.advance(1000)
    assert h.stack.link is False and seen == [False] and h.stack.counters.link_down == 1
    # the neighbours are forgotten: the next frame to the peer asks for it again
    assert h.stack.arp.lookup(b"\xc0\x00\x02\x01", 0, h.clock.ticks_ms()) is None
    cable.up = True
    seconds(h, 2)
    assert h.stack.link is True and seen == [False, True] and h.stack.counters.link_up == 1


def test_one_odd_reading_is_not_a_link_change():
    h = Harness()
    cable = wired(h)
    seen = []
    h.stack.on_link = seen.append
    seconds(h, 2)
    for _ in range(3):
        cable.up = False  # a PHY read that failed once
        h.advance(1000)
        cable.up = True
        h.advance(1000)
    assert seen == [] and h.stack.link is True and h.stack.counters.link_down == 0


def test_a_device_without_link_up_is_never_asked():
    h = Harness()
    h.advance(5000)
    assert h.stack.link is None and h.stack.counters.link_down == 0


def _rebooting(h, cable):
    cable.up = False
    seconds(h, 2)
    cable.up = True
    seconds(h, 2)
    out = h.take()
    assert len(out) == 1, out
    return out[0]


def test_the_lease_is_confirmed_with_init_reboot_when_the_cable_comes_back():
    h = DhcpHarness(base_ms=400)
    cable = wired(h)
    h.bind()
    seconds(h, 2)
    req = _rebooting(h, cable)
    # RFC 2131 3.2 / 4.3.2: broadcast, ciaddr 0, requested IP our address, no server identifier
    assert req.type == dhcp.REQUEST and req.ip.dst == b"\xff\xff\xff\xff" and req.ciaddr == bytes(4)
    assert req.option(50) == YIADDR and req.option(54) is None
    assert h.client.state == dhcp.REBOOTING and h.client.bound()  # the address stays in use
    assert h.stack.route.addr == YIADDR
    h.feed(server_frame(bootp_reply(req.xid, dhcp.ACK, lease=600)))
    assert h.client.state == dhcp.BOUND and h.client.lease_s == 600
    assert h.stack.counters.dhcp_reboot == 1


def test_a_nak_to_init_reboot_gives_the_address_up():
    h = DhcpHarness(base_ms=400)
    cable = wired(h)
    h.bind()
    seconds(h, 2)
    req = _rebooting(h, cable)
    h.feed(server_frame(bootp_reply(req.xid, dhcp.NAK)))
    assert h.stack.route.addr == bytes(4)  # another network: the old address is no good
    d = h.one()
    assert d.type == dhcp.DISCOVER and h.client.state == dhcp.SELECTING


def test_no_answer_to_init_reboot_keeps_the_old_lease():
    h = DhcpHarness(base_ms=400, jitter_ms=0)
    cable = wired(h)
    h.bind()
    seconds(h, 2)
    _rebooting(h, cable)
    sent = 1
    for _ in range(200):  # 400, 800, 1600, 3200 ms between the tries, 5 in all
        h.advance(100)
        sent += len(h.take())
        if h.client.state != dhcp.REBOOTING:
            break
    assert sent == 5 and h.client.state == dhcp.BOUND and h.stack.route.addr == YIADDR
