"""PacketBatch: building from rows and columns, and bad input."""
import numpy as np
import pytest

import ipvs_py
from ipvs_py.packets import PacketBatch


def test_from_rows_round_trips_through_rows():
    rows = [("tcp", "10.0.0.1", 1000, "192.0.2.1", 80, "S", 0.0),
            ("tcp", "10.0.0.1", 1000, "192.0.2.1", 80, "A", 0.5),
            ("udp", "2001:db8::1", 53, "2001:db8::2", 53, 0, 1.5, 7, 100, "out"),
            ("sctp", "10.0.0.2", 5000, "192.0.2.1", 3868, "INIT", 2.0)]
    b = ipvs_py.PacketBatch.from_rows(rows)
    assert len(b) == 4
    p = b[0]
    assert (p.proto, p.saddr, p.sport, p.daddr, p.dport, p.tcp_flags, p.time) \
        == rows[0]
    assert b[1].tcp_flags == "A"
    assert b[2].saddr == "2001:db8::1" and b[2].direction == "out"
    assert b[2].fwmark == 7 and b[2].length == 100
    assert b.tcp_flags[3] == 1
    assert b.af.tolist() == [2, 2, 10, 2]
    # raw network-order bytes, IPv4 in the first four
    assert bytes(b.saddr[0]) == bytes([10, 0, 0, 1]) + bytes(12)


def test_from_columns_matches_from_rows():
    rows = PacketBatch.from_rows([
        ("tcp", "198.18.0.1", 1024, "192.0.2.1", 80, "S", 0.0),
        ("udp", "198.18.0.2", 2000, "192.0.2.2", 53, 0, 1.0)])
    cols = PacketBatch.from_columns(
        proto=np.array([6, 17]), saddr=np.array([0xC6120001, 0xC6120002], np.uint32),
        sport=[1024, 2000], daddr=np.array([[192, 0, 2, 1], [192, 0, 2, 2]], np.uint8),
        dport=[80, 53], tcp_flags=[2, 0], time=[0.0, 1.0])
    for k, v in rows.columns().items():
        assert np.array_equal(v, cols.columns()[k]), k


def test_slicing_take_concat_and_flow_ids():
    b = PacketBatch.from_rows([("tcp", "10.0.0.1", 1, "192.0.2.1", 80, "S", t)
                               for t in range(5)])
    assert len(b[1:3]) == 2
    assert b.take([4, 0]).time.tolist() == [4.0, 0.0]
    c = PacketBatch.concat([b[3:], b[:3]])
    assert c.time.tolist() == [0, 1, 2, 3, 4]
    assert set(b.flow_ids().tolist()) == {0}
    assert "5 packets" in repr(b)


@pytest.mark.parametrize("row, match", [
    (("gre", "10.0.0.1", 1, "192.0.2.1", 80, "S", 0), "row 0: unknown protocol"),
    (("tcp", "10.0.0.300", 1, "192.0.2.1", 80, "S", 0), "bad IP address"),
    (("tcp", "10.0.0.1", 70000, "192.0.2.1", 80, "S", 0), "sport must be"),
    (("tcp", "10.0.0.1", 1, "192.0.2.1", -1, "S", 0), "dport must be"),
    (("tcp", "10.0.0.1", 1, "192.0.2.1", 80, "SX", 0), "unknown TCP flag"),
    (("tcp", "10.0.0.1", 1, "2001:db8::1", 80, "S", 0), "families differ"),
    (("tcp", "10.0.0.1", 1, "192.0.2.1", 80, "S"), "7 to 11 fields"),
    (("tcp", "10.0.0.1", 1, "192.0.2.1", 80, "S", 0, 0, 0, "up"), "direction"),
])
def test_bad_rows_name_the_row_and_the_field(row, match):
    with pytest.raises(ValueError, match=match):
        PacketBatch.from_rows([row])


def test_time_must_not_go_backwards():
    with pytest.raises(ValueError, match="row 1: time goes backwards"):
        PacketBatch.from_rows([("udp", "10.0.0.1", 1, "192.0.2.1", 53, 0, 5),
                               ("udp", "10.0.0.1", 1, "192.0.2.1", 53, 0, 4)])


def test_bad_columns():
    with pytest.raises(ValueError, match="rows"):
        PacketBatch.from_columns(proto=[6, 6], saddr=np.array([1], np.uint32),
                                 sport=1, daddr=np.array([1, 2], np.uint32),
                                 dport=80, time=[0, 1])
    with pytest.raises(ValueError, match="unknown protocol"):
        PacketBatch.from_columns(proto=[1], saddr=np.array([1], np.uint32),
                                 sport=1, daddr=np.array([2], np.uint32),
                                 dport=80, time=[0])
