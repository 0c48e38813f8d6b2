"""ConnEngine's Python boundary: every index and byte string it is given
is checked before C uses it (an out-of-range dest, service or conn, or a
short address, read or wrote outside the engine's arrays before)."""
import pytest

import ipvs_py
from ipvs_py._core.conntab import ConnEngine
from ipvs_py._core.sched import BatchScheduler

A16 = bytes(16)


def engine_with_one_of_each():
    e = ConnEngine()
    e.set_dest(0, A16, 80, 2, 0, 1)
    e.set_service(0, A16, 80, 2, 6, 0, 0, 0, A16)
    return e


@pytest.mark.parametrize("idx", [1, 7, -1, 2**31 - 1])
def test_dest_accessors_reject_an_unknown_dest(idx):
    e = engine_with_one_of_each()
    with pytest.raises(IndexError, match=f"no dest {idx}"):
        e.dest_counters(idx)
    with pytest.raises(IndexError, match=f"no dest {idx}"):
        e.set_overload(idx, True)
    assert e.dest_counters(0)[4] & 2 == 0       # nothing else changed


@pytest.mark.parametrize("idx", [1, -1])
def test_svc_counters_rejects_an_unknown_service(idx):
    e = engine_with_one_of_each()
    with pytest.raises(IndexError, match=f"no service {idx}"):
        e.svc_counters(idx)


def test_set_overload_sets_and_clears_the_flag():
    e = engine_with_one_of_each()
    e.set_overload(0, True)
    assert e.dest_counters(0)[4] & 2
    e.set_overload(0, False)
    assert not e.dest_counters(0)[4] & 2


def test_negative_indexes_and_short_addresses_are_refused():
    e = engine_with_one_of_each()
    with pytest.raises(ValueError, match="dest index -1 is negative"):
        e.set_dest(-1, A16, 80, 2, 0, 1)
    with pytest.raises(ValueError, match="service index -2 is negative"):
        e.set_service(-2, A16, 80, 2, 6, 0, 0, 0, A16)
    with pytest.raises(ValueError, match="addr must be 16 raw bytes, got 4"):
        e.set_dest(1, bytes(4), 80, 2, 0, 1)
    with pytest.raises(ValueError, match="netmask must be 16 raw bytes"):
        e.set_service(1, A16, 80, 2, 6, 0, 0, 0, b"\xff" * 4)
    with pytest.raises(ValueError, match="addresses must be 16 raw bytes"):
        e.lookup_in(2, 6, bytes(4), 1, A16, 80)
    with pytest.raises(ValueError, match="addresses must be 16 raw bytes"):
        e.lookup_out(2, 6, A16, 1, b"", 80)
    # none of them grew the engine
    with pytest.raises(IndexError):
        e.dest_counters(1)
    with pytest.raises(IndexError):
        e.svc_counters(1)


def test_scheduler_rows_must_name_known_dests():
    net = ipvs_py.Netns()
    net.restore("-A -t 10.0.0.1:80 -s rr\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m\n")
    bs = BatchScheduler(net.get_service("tcp", "10.0.0.1", 80), "rr",
                        from_python=True)
    e = engine_with_one_of_each()       # one dest: id 0
    with pytest.raises(ValueError, match="row_dest has 1 entries, the "
                                         "scheduler 2 rows"):
        e.set_service(0, A16, 80, 2, 6, 0, 0, 0, A16, bs, [0])
    with pytest.raises(IndexError, match="row 1: no dest 5"):
        e.set_service(0, A16, 80, 2, 6, 0, 0, 0, A16, bs, [0, 5])
    e.set_dest(1, A16, 81, 2, 0, 1)
    e.set_service(0, A16, 80, 2, 6, 0, 0, 0, A16, bs, [0, 1])


def test_expire_conn_rejects_a_conn_that_is_not_there():
    net = ipvs_py.Netns()
    net.restore("-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n")
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    e = net._conn.e
    for bad in (v.conn + 1, 2**32 - 1):
        with pytest.raises(IndexError, match=f"no conn {bad}"):
            e.expire_conn(bad)
    assert e.nconns == 1
    e.expire_conn(v.conn)
    assert e.nconns == 0
    with pytest.raises(IndexError, match=f"no conn {v.conn}"):
        e.expire_conn(v.conn)                   # freed: not again
