"""SessionMirror: the model's hooks keep both session maps in step."""
import pytest

from ipvs_py.bpf import BpfMapFullError, ConnRecord, SessionMirror
from ipvs_py.bpf.layout import pack_key, pack_value
from ipvs_py.bpf.mirror import eligible, entries


def rec(i=0, proto="tcp", state="ESTABLISHED", fwd="masq", dport=8080,
        daddr="10.2.0.2"):
    return ConnRecord(proto, f"10.1.0.{i + 2}", 40000 + i, "10.9.9.9", 80,
                      daddr, dport, fwd=fwd, state=state)


@pytest.fixture
def m(session_maps):
    return SessionMirror(sess_in=session_maps[0], sess_out=session_maps[1])


def test_record_validation():
    with pytest.raises(ValueError, match="mixed"):
        ConnRecord("tcp", "10.0.0.1", 1, "fd00::1", 2, "10.0.0.2", 3)
    with pytest.raises(ValueError, match="forwarding"):
        rec(fwd="nat")
    with pytest.raises(ValueError, match="port"):
        ConnRecord("udp", "10.0.0.1", 70000, "10.0.0.2", 2, "10.0.0.3", 3)
    assert ConnRecord("udp", "fd00::1", 1, "fd00::2", 2, "fd00::3", 3).af == 10


@pytest.mark.parametrize("r, ok", [
    (rec(), True),
    (rec(state="SYN_RECV"), False),       # handshake stays on the slow path
    (rec(proto="udp", state="UDP"), True),
    (rec(fwd="route"), False),            # DR: nothing to rewrite at the LB
    (rec(fwd="tunnel"), False),
    (rec(proto="sctp"), False),
])
def test_eligibility(r, ok):
    assert eligible(r) is ok


def test_entries_layout():
    (ik, iv), (ok, ov) = entries(rec())
    c, v, d = (bytes(map(int, a.split("."))) for a in
               ("10.1.0.2", "10.9.9.9", "10.2.0.2"))
    assert ik == pack_key(2, 6, c, 40000, v, 80)
    assert iv == pack_value(d, 8080)
    assert ok == pack_key(2, 6, d, 8080, c, 40000)
    assert ov == pack_value(v, 80)


def test_hooks_install_and_remove(m, session_maps):
    assert m.on_established(rec()) is True
    assert len(m) == 1 and len(session_maps[1]) == 1
    assert m.on_established(rec(state="SYN_RECV", i=1)) is False
    assert len(m) == 1
    assert m.on_expired(rec()) is True
    assert m.on_expired(rec()) is False
    assert len(m) == 0 and len(session_maps[1]) == 0


def test_state_changes(m):
    assert m.on_state_change(rec(state="SYN_RECV")) is False
    assert len(m) == 0
    assert m.on_state_change(rec()) is True
    assert len(m) == 1
    assert m.on_state_change(rec(state="FIN_WAIT")) is False
    assert len(m) == 0


def test_reinstall_keeps_counters_changed_dest_overwrites(m, session_maps):
    m.install(rec())
    (ik, iv), _ = entries(rec())
    bumped = iv[:24] + (7).to_bytes(8, "little") + iv[32:]   # packets = 7
    session_maps[0].update(ik, bumped)
    m.install(rec())
    assert m.stats(rec())[0].packets == 7
    m.install(rec(dport=9090))
    fwd, _ = m.stats(rec(dport=9090))
    assert (fwd.port, fwd.packets) == (9090, 0)


def test_full_map_undoes_half_install(m, session_maps):
    for i in range(8):
        m.install(rec(i))
    # Make room in sess_out only: the pair insert fails on sess_in and
    # must not leave a dangling reply entry behind.
    (_, _), (ok, _) = entries(rec(0))
    session_maps[1].delete(ok)
    with pytest.raises(BpfMapFullError):
        m.install(rec(20))
    assert len(session_maps[1]) == 7
    assert m.stats(rec(20)) is None


def test_resync(m, session_maps):
    for i in range(4):
        m.install(rec(i))
    table = [rec(2), rec(3, dport=9999), rec(4), rec(5, state="CLOSE_WAIT"),
             rec(6, proto="udp", state="UDP")]
    res = m.resync(table)
    # removed: 0, 1 in both maps, plus 3's old reply entry (its key holds
    # the old real-server port); installed: 3 (changed), 4, 6 in both maps;
    # kept: 2 in both maps.
    assert (res.removed, res.installed, res.kept) == (5, 6, 2)
    want = {entries(r)[0][0] for r in table if eligible(r)}
    assert set(session_maps[0].keys()) == want
    assert len(session_maps[1]) == len(want)
    assert m.resync(table).installed == 0


def test_install_many(m):
    assert m.install_many([rec(i) for i in range(5)] + [rec(9, fwd="route")]) == 5
    assert len(m) == 5
    with pytest.raises(BpfMapFullError):
        m.install_many([rec(i) for i in range(5, 12)])
