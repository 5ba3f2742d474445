# dual: cpython micropython
# Ephemeral ports (RFC 6056 Algorithm 4, as __inet_hash_connect) and ISNs (RFC 6528).
from segment import PEER_IP, Harness
from tcpip import errors
from manualclock import ManualClock
from tcpip.isn import IsnGenerator
from tcpip.ports import PortAllocator
from wirerep import ipv4
from wirerep.tcp import seq_diff

LADDR = ipv4.aton("192.0.2.2")
RADDR = ipv4.aton("192.0.2.1")


def always_free(port):
    return True


def test_ports_stay_in_the_default_range():
    p = PortAllocator()
    for i in range(200):
        port = p.allocate(LADDR, RADDR, 80 + (i % 3), always_free)
        assert 32768 <= port <= 60999


def test_consecutive_ports_to_one_destination_are_not_sequential():
    p = PortAllocator()
    ports = [p.allocate(LADDR, RADDR, 80, always_free) for _ in range(50)]
    steps = [ports[i + 1] - ports[i] for i in range(49)]
    assert len(set(steps)) > 3, steps  # the random bump makes the steps irregular
    assert not all(s in (1, 2) for s in steps), steps


def test_different_destinations_start_at_unrelated_offsets():
    p = PortAllocator(secret=b"k" * 16)
    a = [p.allocate(LADDR, RADDR, port, always_free) for port in range(1000, 1010)]
    assert len(set(a)) >= 8, a


def test_secret_changes_the_choice():
    a = PortAllocator(secret=b"a" * 16)
    b = PortAllocator(secret=b"b" * 16)
    a.perturb = [0] * len(a.perturb)
    b.perturb = [0] * len(b.perturb)
    pa = [a.allocate(LADDR, RADDR, 80 + i, always_free) for i in range(8)]
    pb = [b.allocate(LADDR, RADDR, 80 + i, always_free) for i in range(8)]
    assert pa != pb


def test_busy_ports_are_skipped_and_low_parity_tried_first():
    p = PortAllocator(low=40000, high=40009)
    taken = set()
    got = []
    for _ in range(10):
        port = p.allocate(LADDR, RADDR, 80, lambda x: x not in taken)
        taken.add(port)
        got.append(port)
    assert sorted(got) == list(range(40000, 40010))
    # the first five handed out share the range's low parity (even), as Linux's first pass
    assert all(x % 2 == 0 for x in got[:5]), got


def test_exhaustion_is_eaddrnotavail():
    p = PortAllocator(low=40000, high=40003)
    try:
        p.allocate(LADDR, RADDR, 80, lambda x: False)
    except OSError as e:
        assert e.args[0] == errors.EADDRNOTAVAIL
        return
    raise AssertionError("no error")


def test_odd_sized_range_hands_out_every_port():
    # every starting offset of the perturbation table, so the outcome does not hang on chance
    for start in range(8):
        p = PortAllocator(low=40000, high=40004, secret=b"o" * 16)
        p.perturb = [start] * len(p.perturb)
        taken = set()
        for _ in range(5):
            taken.add(p.allocate(LADDR, RADDR, 80, lambda x: x not in taken))
        assert taken == {40000, 40001, 40002, 40003, 40004}, (start, taken)


def test_bad_range_rejected():
    for lo, hi in ((0, 10), (10, 5), (1, 70000)):
        try:
            PortAllocator(lo, hi)
        except ValueError:
            continue
        raise AssertionError("accepted %d-%d" % (lo, hi))


def test_connections_get_distinct_4tuples_on_the_stack():
    h = Harness(max_connections=30)
    ports = set()
    for _ in range(30):
        t = h.stack.tcp.connect(None, 0, PEER_IP, 80)
        ports.add(t.local_port)
    assert len(ports) == 30


def test_isn_differs_per_4tuple_and_is_keyed():
    clock = ManualClock(0)
    g = IsnGenerator(clock, secret=b"s" * 16)
    a = g.isn(LADDR, 40000, RADDR, 80)
    b = g.isn(LADDR, 40001, RADDR, 80)
    assert a != b
    g2 = IsnGenerator(clock, secret=b"t" * 16)
    assert g2.isn(LADDR, 40000, RADDR, 80) != a
    assert 0 <= a <= 0xFFFFFFFF


def test_isn_of_one_4tuple_advances_with_the_4us_clock():
    clock = ManualClock(0)
    g = IsnGenerator(clock, secret=b"s" * 16)
    a = g.isn(LADDR, 40000, RADDR, 80)
    clock.advance(1000)
    b = g.isn(LADDR, 40000, RADDR, 80)
    assert seq_diff(b, a) == 250000  # one second of 4 us ticks


def test_isn_clock_survives_the_tick_wrap():
    from tcpip.clock import PERIOD
    clock = ManualClock(PERIOD - 300)
    g = IsnGenerator(clock, secret=b"s" * 16)
    a = g.isn(LADDR, 40000, RADDR, 80)
    clock.advance(600)
    b = g.isn(LADDR, 40000, RADDR, 80)
    assert seq_diff(b, a) == 600 * 250


def test_random_secret_makes_isns_unpredictable():
    clock = ManualClock(0)
    a = IsnGenerator(clock).isn(LADDR, 40000, RADDR, 80)
    b = IsnGenerator(clock).isn(LADDR, 40000, RADDR, 80)
    assert a != b  # two boots, same 4-tuple, same clock: different ISNs


def test_the_port_secret_and_table_are_drawn_afresh_when_the_local_address_changes():
    # a fingerprint of the perturbation table (Klein and Pinkas 2022) does not follow the device
    # from one network to the next
    p = PortAllocator(40000, 40999)
    free = always_free
    p.allocate(LADDR, RADDR, 80, free)
    secret, table = p.secret, bytes(p.perturb)
    p.allocate(LADDR, RADDR, 81, free)
    assert p.secret == secret  # the same network: the same state (RFC 6056 needs it)
    other = b"\xc6\x33\x64\x02"
    p.allocate(other, RADDR, 80, free)
    assert p.secret != secret and bytes(p.perturb) != table


def test_the_port_table_size_is_a_power_of_two():
    for bad in (0, 3, 300):
        try:
            PortAllocator(table_size=bad)
            raise AssertionError(bad)
        except ValueError:
            pass
    assert len(PortAllocator(table_size=1024).perturb) == 1024
