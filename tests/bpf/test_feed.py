"""The engine's session events and the feed that turns them into map
updates (ipvs_events.h, ipvs_py/bpf/feed.py)."""
import ipaddress

import pytest

import ipvs_py
from ipvs_py.bpf import ConnRecord, SessionMirror
from ipvs_py.bpf.feed import (EV_DOWN, EV_UP, SMALL_DRAIN, _decode_few,
                               decode_events)
from ipvs_py.bpf.mirror import entries


CONFIG = """\
-A -t 10.9.0.1:80 -s rr
-a -t 10.9.0.1:80 -r 10.2.0.1:8080 -m
-A -u 10.9.0.1:53 -s rr
-a -u 10.9.0.1:53 -r 10.2.0.3:53 -m
-A -t 10.9.0.5:80 -s rr
-a -t 10.9.0.5:80 -r 10.2.0.9:80 -g
-A -t [fd00::9]:443 -s rr
-a -t [fd00::9]:443 -r [fd00::2:1]:8443 -m
-A -t 10.9.0.2:80 -s rr -p 60
-a -t 10.9.0.2:80 -r 10.2.0.4:80 -m
"""


@pytest.fixture
def net():
    n = ipvs_py.Netns()
    n.restore(CONFIG)
    return n


def handshake(net, c, cp, v, vp):
    d = net.packet("tcp", c, cp, v, vp, "S").dest
    net.packet("tcp", *d, c, cp, "SA", direction="out")
    net.packet("tcp", c, cp, v, vp, "A")
    return d


def drained(net):
    """Events since the last drain as (kind, ConnRecord)."""
    raw, lost = net._path().e.events_drain()
    assert lost == 0
    kinds, ik, _, _, _ = decode_events(raw)
    return kinds, ik


def key(proto, c, cp, v, vp, d, dp):
    return entries(ConnRecord(proto, c, cp, v, vp, d, dp))[0][0]


# -- the engine's events --------------------------------------------------
def test_engine_events_follow_the_tcp_state(net):
    net._path().e.events_on(64)
    net.packet("tcp", "10.1.0.1", 40000, "10.9.0.1", 80, "S")
    net.packet("tcp", "10.2.0.1", 8080, "10.1.0.1", 40000, "SA",
               direction="out")
    assert drained(net) == ([], [])               # handshake: slow path
    net.packet("tcp", "10.1.0.1", 40000, "10.9.0.1", 80, "A")
    k = key("tcp", "10.1.0.1", 40000, "10.9.0.1", 80, "10.2.0.1", 8080)
    assert drained(net) == ([EV_UP], [k])
    net.packet("tcp", "10.1.0.1", 40000, "10.9.0.1", 80, "PA")
    assert drained(net) == ([], [])               # still ESTABLISHED
    net.packet("tcp", "10.1.0.1", 40000, "10.9.0.1", 80, "FA")
    assert drained(net) == ([EV_DOWN], [k])       # CLOSE_WAIT: back to the model
    net.advance(1000)
    assert drained(net) == ([], [])               # freed, was not mirrored


def test_engine_events_udp_v6_dr_templates(net):
    net._path().e.events_on(64)
    net.packet("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "")
    ku = key("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "10.2.0.3", 53)
    assert drained(net) == ([EV_UP], [ku])        # UDP: at creation
    handshake(net, "10.1.0.1", 40000, "10.9.0.5", 80)
    assert drained(net) == ([], [])               # DR: nothing to rewrite
    handshake(net, "fd00::1", 40000, "fd00::9", 443)
    k6 = key("tcp", "fd00::1", 40000, "fd00::9", 443, "fd00::2:1", 8443)
    assert drained(net) == ([EV_UP], [k6])
    handshake(net, "10.1.0.1", 40001, "10.9.0.2", 80)   # + a template
    kp = key("tcp", "10.1.0.1", 40001, "10.9.0.2", 80, "10.2.0.4", 80)
    assert drained(net) == ([EV_UP], [kp])
    net.advance(301)                              # UDP timeout 300 s
    assert drained(net) == ([EV_DOWN], [ku])
    net.advance(1000)
    kinds, keys = drained(net)
    assert sorted(zip(kinds, keys)) == sorted([(EV_DOWN, k6), (EV_DOWN, kp)])


def test_engine_event_when_a_conn_learns_its_client_port(net):
    # A conn made from a packet with source port 0 (NO_CPORT) is not
    # mirrorable; the next packet with a port fills it in
    # (ip_vs_conn_fill_cport) and that is when the session appears.
    path = net._path()
    path.sync_config()
    e = path.e
    e.events_on(8)
    raw = [ipaddress.ip_address(a).packed.ljust(16, b"\0")
           for a in ("10.1.0.1", "10.9.0.1")]
    assert e.packet(2, 17, raw[0], 0, raw[1], 53)[0] == "forward"
    assert e.events_drain() == (b"", 0)
    assert e.packet(2, 17, raw[0], 5000, raw[1], 53)[0] == "forward"
    ku = key("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "10.2.0.3", 53)
    assert drained(net) == ([EV_UP], [ku])
    assert e.nconns == 1


def test_engine_ring_counts_what_does_not_fit(net):
    e = net._path().e
    e.events_on(2)
    for p in range(5):
        net.packet("udp", "10.1.0.1", 5000 + p, "10.9.0.1", 53, "")
    raw, lost = e.events_drain()
    assert (len(raw) // 64, lost) == (2, 3)
    assert e.events_drain() == (b"", 0)
    assert len(decode_events(e.events_snapshot())[1]) == 5
    e.events_off()
    assert e.events_drain() == (b"", 0)
    with pytest.raises(ValueError, match="capacity"):
        e.events_on(0)


def test_both_decoders_agree(net):
    net._path().e.events_on(64)
    net.packet("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "")
    rec = ConnRecord("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "10.2.0.3", 53)
    (ik, iv), (ok, ov) = entries(rec)
    raw, _ = net._path().e.events_drain()
    assert decode_events(raw) == ([EV_UP], [ik], [iv], [ok], [ov])
    for p in range(SMALL_DRAIN + 4):
        net.packet("udp", "10.1.0.1", 5001 + p, "10.9.0.1", 53, "")
        handshake(net, "fd00::1", 40000 + p, "fd00::9", 443)
    raw = net._path().e.events_snapshot()
    assert len(raw) == 64 * (2 * (SMALL_DRAIN + 4) + 1)
    assert decode_events(raw) == _decode_few(raw)      # numpy path


# -- the feed ---------------------------------------------------------------
def test_attach_twice_and_detach(net, session_maps):
    mirror = SessionMirror(sess_in=session_maps[0], sess_out=session_maps[1])
    feed = mirror.attach(net)
    with pytest.raises(ValueError, match="already feeds"):
        mirror.attach(net)
    net.packet("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "")
    assert len(mirror) == 1 and feed.stats.installs == 1
    feed.detach()
    net.packet("udp", "10.1.0.1", 5001, "10.9.0.1", 53, "")
    assert len(mirror) == 1                     # no longer fed
    with mirror.attach(net) as again:           # resyncs at attach
        assert len(mirror) == 2 and again.stats.resyncs == 1
    assert net._path().after_engine is None


def test_full_maps_leave_sessions_on_the_slow_path(net, session_maps):
    mirror = SessionMirror(sess_in=session_maps[0], sess_out=session_maps[1])
    feed = mirror.attach(net)
    net.replay([("udp", "10.1.0.1", 5000 + p, "10.9.0.1", 53, "", 0)
                for p in range(20)])
    assert feed.stats.installs == 8 and feed.stats.overflow == 12
    fwd = dict(session_maps[0].lookup_batch())
    rev = dict(session_maps[1].lookup_batch())
    assert len(fwd) == len(rev) == 8
    for k in fwd:                # every forward entry has its reply entry
        rec = ConnRecord("udp", "10.1.0.1", int.from_bytes(k[2:4], "big"),
                         "10.9.0.1", 53, "10.2.0.3", 53)
        assert entries(rec)[1][0] in rev
    net.advance(301)             # all expire: the 8 installed are removed
    assert len(mirror) == 0 and len(session_maps[1]) == 0
    assert feed.stats.removals == 8


def test_lost_events_resync(net, session_maps):
    mirror = SessionMirror(sess_in=session_maps[0], sess_out=session_maps[1])
    feed = mirror.attach(net, capacity=2)
    net.replay([("udp", "10.1.0.1", 5000 + p, "10.9.0.1", 53, "", 0)
                for p in range(5)])
    assert feed.stats.lost == 3 and feed.stats.resyncs == 2
    assert len(mirror) == 5


def test_a_failed_drain_is_repaired_by_the_next(net, session_maps):
    mirror = SessionMirror(sess_in=session_maps[0], sess_out=session_maps[1])
    feed = mirror.attach(net)
    real = session_maps[0].update

    def broken(*a, **kw):
        raise OSError(5, "injected EIO")
    session_maps[0].update = broken
    with pytest.raises(OSError, match="injected"):
        net.packet("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "")
    session_maps[0].update = real
    assert len(mirror) == 0 and len(session_maps[1]) == 1   # half-applied
    net.advance(1)               # next drain: a resync from the table
    assert feed.stats.resyncs == 2
    assert len(mirror) == 1 and len(session_maps[1]) == 1
    k = key("udp", "10.1.0.1", 5000, "10.9.0.1", 53, "10.2.0.3", 53)
    assert session_maps[0].lookup(k) is not None


def test_a_multicore_replay_resyncs_the_maps(net, session_maps):
    # worker clones record no events (ipvs_mt.h): the run counts as lost
    # events, and the feed's drain rebuilds the maps from the table
    mirror = SessionMirror(sess_in=session_maps[0], sess_out=session_maps[1])
    feed = mirror.attach(net)
    net.replay([("udp", f"10.1.0.{c}", 5000, "10.9.0.1", 53, "", 0)
                for c in range(1, 9)], workers=2)
    assert net.conn_count == 8
    assert feed.stats.resyncs == 2 and len(mirror) == 8
    for c in range(1, 9):
        k = key("udp", f"10.1.0.{c}", 5000, "10.9.0.1", 53, "10.2.0.3", 53)
        assert session_maps[0].lookup(k) is not None
