# dual: cpython micropython
from tcpip import clock
from manualclock import ManualClock
from tcpip.clock import PERIOD, Clock, ticks_add, ticks_diff

HALF = PERIOD // 2


def test_period_is_2_pow_30():
    assert PERIOD == 1 << 30
    assert ticks_add(0, -1) == PERIOD - 1


def test_ticks_add_wraps_both_ways():
    assert ticks_add(PERIOD - 1, 1) == 0
    assert ticks_add(PERIOD - 5, 10) == 5
    assert ticks_add(5, -10) == PERIOD - 5
    assert ticks_add(0, -(HALF - 1)) == HALF + 1
    assert ticks_add(123, 0) == 123


def test_ticks_add_negative_deltas_round_trip():
    for t in (0, 1, 7, HALF - 1, HALF, PERIOD - 1, PERIOD - 7):
        for d in (-1, -2, -1000, -(HALF - 1), 1, 1000, HALF - 1):
            u = ticks_add(t, d)
            assert 0 <= u < PERIOD
            assert ticks_diff(u, t) == d
            assert ticks_diff(t, u) == -d
            assert ticks_add(u, -d) == t


def test_ticks_add_rejects_half_period():
    for d in (HALF, -HALF, PERIOD):
        try:
            ticks_add(0, d)
        except OverflowError:
            pass
        else:
            assert False, d


def test_ticks_diff_sign_near_half_period():
    assert ticks_diff(HALF - 1, 0) == HALF - 1
    assert ticks_diff(HALF, 0) == -HALF  # range is [-PERIOD/2, PERIOD/2)
    assert ticks_diff(HALF + 1, 0) == -(HALF - 1)
    assert ticks_diff(0, HALF - 1) == -(HALF - 1)
    assert ticks_diff(0, HALF) == -HALF
    assert ticks_diff(0, HALF + 1) == HALF - 1
    # across the wrap: 3 is "after" PERIOD - 3
    assert ticks_diff(3, PERIOD - 3) == 6
    assert ticks_diff(PERIOD - 3, 3) == -6


def test_ticks_diff_range():
    for a in (0, 1, HALF - 1, HALF, HALF + 1, PERIOD - 1):
        for b in (0, 1, HALF - 1, HALF, HALF + 1, PERIOD - 1):
            d = ticks_diff(a, b)
            assert -HALF <= d < HALF
            assert (b + d) % PERIOD == a
            if d != -HALF:  # ticks_add accepts |delta| < PERIOD/2 only
                assert ticks_add(b, d) == a


def test_manual_clock_wraps_at_period():
    c = ManualClock(PERIOD - 5)
    t0 = c.ticks_ms()
    assert t0 == PERIOD - 5
    deadline = c.ticks_add(t0, 10)
    assert deadline == 5
    assert c.ticks_diff(deadline, c.ticks_ms()) == 10
    c.advance(4)
    assert c.ticks_ms() == PERIOD - 1
    assert c.ticks_diff(deadline, c.ticks_ms()) == 6
    c.advance(1)
    assert c.ticks_ms() == 0
    assert c.ticks_diff(c.ticks_ms(), t0) == 5
    c.advance(4)
    assert c.ticks_diff(c.ticks_ms(), deadline) == -1  # not yet due
    c.advance(1)
    assert c.ticks_ms() == 5
    assert c.ticks_diff(c.ticks_ms(), deadline) == 0  # due
    c.advance(1000)
    assert c.ticks_ms() == 1005
    assert c.ticks_diff(c.ticks_ms(), t0) == 1010


def test_manual_clock_us_follows_ms():
    c = ManualClock(PERIOD - 5)
    assert c.ticks_us() == ((PERIOD - 5) * 1000) % PERIOD
    c.advance(5)
    assert c.ticks_ms() == 0
    assert c.ticks_us() == (PERIOD * 1000) % PERIOD
    u0 = c.ticks_us()
    c.advance_us(1500)
    assert c.ticks_diff(c.ticks_us(), u0) == 1500
    assert c.ticks_ms() == 1
    c.advance_us(500)
    assert c.ticks_ms() == 2


def test_manual_clock_us_wraps():
    # ticks_us wraps every PERIOD us (about 17.9 minutes): walk across it
    c = ManualClock(0)
    c.set(PERIOD // 1000)  # just before the first us wrap
    u0 = c.ticks_us()
    assert u0 == (PERIOD // 1000) * 1000
    c.advance(1)
    u1 = c.ticks_us()
    assert u1 < u0  # wrapped
    assert c.ticks_diff(u1, u0) == 1000


def test_manual_clock_set_and_sleep():
    c = ManualClock()
    assert c.ticks_ms() == 0 and c.ticks_us() == 0
    c.set(42)
    assert c.ticks_ms() == 42
    c.sleep_ms(8)
    assert c.ticks_ms() == 50
    c.sleep_ms(0)
    assert c.ticks_ms() == 50
    c.set(PERIOD + 3)  # taken mod PERIOD
    assert c.ticks_ms() == 3
    assert c.period == PERIOD


def test_manual_clock_rejects_negative_advance():
    c = ManualClock(10)
    try:
        c.advance(-1)
    except ValueError:
        pass
    else:
        assert False
    assert c.ticks_ms() == 10


def test_real_clock_moves_and_agrees_with_module():
    c = Clock()
    assert c.period == PERIOD
    t0 = c.ticks_ms()
    u0 = c.ticks_us()
    assert 0 <= t0 < PERIOD and 0 <= u0 < PERIOD
    c.sleep_ms(20)
    dt = c.ticks_diff(c.ticks_ms(), t0)
    du = c.ticks_diff(c.ticks_us(), u0)
    assert 15 <= dt < 2000, dt
    assert 15000 <= du < 2000000, du
    # values from this clock mix with the module's functions
    deadline = ticks_add(t0, 5)
    assert ticks_diff(c.ticks_ms(), deadline) > 0
    assert c.ticks_diff(c.ticks_ms(), deadline) > 0
    assert c.ticks_add(t0, -1) == ticks_add(t0, -1)


def test_emulation_matches_formula():
    from tcpip import _host

    # the emulated pair (used on CPython and the 64-bit unix port) against plain arithmetic
    for a in (0, 5, HALF - 1, HALF, PERIOD - 1):
        for b in (0, 3, HALF + 2, PERIOD - 2):
            d = (a - b) % PERIOD
            if d >= HALF:
                d -= PERIOD
            assert _host.ticks_diff(a, b) == d
            assert ticks_diff(a, b) == d
