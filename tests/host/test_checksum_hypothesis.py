"""Property tests (CPython only): every sum16 implementation against a naive RFC 1071 loop."""
from hypothesis import given, settings
from hypothesis import strategies as st

from tcpip import checksum
from tcpip import _pure


def naive_sum(data, acc):
    """RFC 1071: big-endian words, odd byte padded with zero, end-around carry per addition."""
    if len(data) & 1:
        data = data + b"\x00"
    s = acc
    for i in range(0, len(data), 2):
        s += (data[i] << 8) | data[i + 1]
        s = (s & 0xFFFF) + (s >> 16)
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


IMPLEMENTATIONS = (checksum.sum16, _pure.sum16_cpython, _pure.sum16_bytecode)


@st.composite
def buffer_and_range(draw):
    data = draw(st.binary(max_size=600) | st.lists(st.sampled_from([0, 0xFF]), max_size=80).map(bytes))
    start = draw(st.integers(0, len(data)))
    end = draw(st.integers(start, len(data)))
    kind = draw(st.sampled_from(["bytes", "bytearray", "memoryview", "memoryview-slice"]))
    return data, start, end, kind


def as_kind(data, kind, pad):
    if kind == "bytes":
        return data
    if kind == "bytearray":
        return bytearray(data)
    if kind == "memoryview":
        return memoryview(data)
    return memoryview(b"\xa5" * pad + data + b"\x5a")[pad:]


@settings(max_examples=600, deadline=None)
@given(buffer_and_range(), st.integers(0, 0xFFFF), st.integers(0, 7))
def test_sum16_matches_naive(case, acc, pad):
    data, start, end, kind = case
    buf = as_kind(data, kind, pad)
    want = naive_sum(data[start:end], acc)
    for f in IMPLEMENTATIONS:
        assert f(buf, start, end, acc) == want, f
    assert checksum.checksum(buf, start, end, acc) == (~want) & 0xFFFF


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=64).map(lambda b: b[: len(b) & ~1]), max_size=8), st.binary(max_size=9))
def test_chunks_chain_through_acc(chunks, last):
    data = b"".join(chunks) + last
    acc = 0
    pos = 0
    for part in chunks + [last]:
        acc = checksum.sum16(data, pos, pos + len(part), acc)
        pos += len(part)
    assert acc == naive_sum(data, 0)


@given(st.binary(min_size=4, max_size=4), st.binary(min_size=4, max_size=4),
       st.integers(0, 255), st.integers(0, 0xFFFF), st.integers(0, 5), st.integers(0, 5))
def test_pseudo_sum_matches_naive(src, dst, proto, length, soff, doff):
    sbuf = bytes(soff) + src
    dbuf = bytearray(doff) + dst
    want = naive_sum(src + dst + bytes([0, proto]) + length.to_bytes(2, "big"), 0)
    assert checksum.pseudo_sum(sbuf, soff, dbuf, doff, proto, length) == want
