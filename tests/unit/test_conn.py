"""The packet path: conn table, states, counters, timers, persistence,
texts, and replay() == packet() row by row (issue 6)."""
import ipaddress
import random

import pytest

import ipvs_py
from ipvs_py._core.conntab import CONN_BYTES

RULES = """-A -t 10.0.0.1:80 -s {s}
-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -{m} -w 1
-a -t 10.0.0.1:80 -r 10.0.1.2:8080 -{m} -w 2
-A -u 10.0.0.1:53 -s rr
-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m
"""


def make(s="rr", m="m", **kw):
    net = ipvs_py.Netns(seed=7, **kw)
    net.restore(RULES.format(s=s, m=m))
    return net


def raw(a):
    return ipaddress.ip_address(a).packed.ljust(16, b"\0")


def dests(net, proto="tcp", port=80):
    svc = net.get_service(proto, "10.0.0.1", port)
    return {(str(d.addr), d.port): d for d in svc.dests}


def test_conn_entry_fits_128_bytes():
    assert CONN_BYTES == 112


def test_memory_accounts_every_part():
    """ConnEngine.memory() counts what the process holds: whole 2 MiB
    chunks of 112-byte slots, the timer heap's capacity, 4-byte bucket
    heads of the live array."""
    net = make()
    for i in range(3000):
        net.packet("tcp", f"1.1.{i >> 8}.{i & 255}", 4000, "10.0.0.1", 80, "S")
    e = net._conn.e
    m = e.memory()
    per_chunk = (2 << 20) // CONN_BYTES
    assert m["conn_slots"] == per_chunk * CONN_BYTES      # one chunk so far
    assert m["timer_heap"] == 4096 * 8                  # 1024, doubled twice
    assert m["buckets"] == e.table_info()[0] * 4
    assert m["total"] == sum(m[k] for k in ("conn_slots", "timer_heap",
                                            "buckets", "locks"))


def test_masq_conn_found_in_both_directions():
    net = make()
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    assert v.action == "forward" and v.dest[1] == 8080
    e = net._conn.e
    assert e.lookup_in(2, 6, raw("1.1.1.1"), 4000, raw("10.0.0.1"), 80) == v.conn
    assert e.lookup_out(2, 6, raw("1.1.1.1"), 4000, raw(v.dest[0]),
                        8080) == v.conn
    r = net.packet("tcp", v.dest[0], 8080, "1.1.1.1", 4000, "SA",
                   direction="out")
    assert r.action == "forward" and r.conn == v.conn
    # two hash nodes for one NAT conn
    assert sum(i * c for i, c in enumerate(net.conn_chain_lengths())) == 2


def test_dr_conn_has_no_reply_node():
    net = make(m="g")
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    e = net._conn.e
    assert e.lookup_out(2, 6, raw("1.1.1.1"), 4000, raw(v.dest[0]),
                        8080) == -1
    assert net.packet("tcp", v.dest[0], 8080, "1.1.1.1", 4000, "SA",
                      direction="out").action == "pass"


def test_tcp_life_cycle_counters_and_expiry():
    net = make()
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    d = dests(net)[v.dest]
    assert (d.activeconns, d.inactconns) == (1, 0)      # SYN_RECV is active
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "A")
    assert "ESTABLISHED" in net.proc_ip_vs_conn()
    assert " 900\n" in net.proc_ip_vs_conn()
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "FA")
    # NAT: INPUT fin in ESTABLISHED -> CLOSE_WAIT, inactive
    assert "CLOSE_WAIT" in net.proc_ip_vs_conn()
    assert (d.activeconns, d.inactconns) == (0, 1)
    net.advance(59)
    assert net.conn_count == 1
    net.advance(2)
    assert net.conn_count == 0 and (d.activeconns, d.inactconns) == (0, 0)
    assert d.refcnt == 0


def test_non_syn_without_conn_passes_and_rst_never_schedules():
    net = make()
    assert net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "A").action \
        == "pass"
    assert net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "SR").action \
        == "pass"
    assert net.packet("tcp", "1.1.1.1", 4000, "10.0.0.9", 80, "S").action \
        == "pass"
    assert net.conn_count == 0


def test_udp_conn_inactive_with_udp_timeout():
    net = make()
    v = net.packet("udp", "1.1.1.1", 5000, "10.0.0.1", 53, 0)
    d = dests(net, "udp", 53)[v.dest]
    assert (d.activeconns, d.inactconns) == (0, 1)
    assert "UDP" in net.proc_ip_vs_conn() and " 300\n" in net.proc_ip_vs_conn()
    net.restore("--set 0 0 10\n") if False else None
    net.advance(301)
    assert net.conn_count == 0 and d.inactconns == 0


def test_set_timeout_applies_to_new_states():
    net = make()
    net._run("set_timeout", {"tcp": 100, "tcp_fin": 0, "udp": 7})
    net.packet("udp", "1.1.1.1", 5000, "10.0.0.1", 53, 0)
    assert "       7\n" in net.proc_ip_vs_conn()


def test_secure_tcp_uses_dos_table():
    net = make()
    net.sysctl["secure_tcp"] = 3
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    # DR-less NAT conn, INPUT syn from NONE: SYN_RECV in both tables; a
    # second SYN on SYN_RECV stays; an ACK in the dos table keeps SYN_RECV
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "A")
    assert "SYN_RECV" in net.proc_ip_vs_conn()


def test_stats_counted():
    net = make()
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S", length=60)
    net.packet("tcp", v.dest[0], 8080, "1.1.1.1", 4000, "SA",
               direction="out", length=40)
    d = dests(net)[v.dest]
    s = d.stats.shown()
    assert (s["conns"], s["inpkts"], s["outpkts"], s["inbytes"],
            s["outbytes"]) == (1, 1, 1, 60, 40)
    assert net.tot_stats.conns == 1


def test_bad_packets_are_errors_not_crashes():
    net = make()
    with pytest.raises(ValueError):
        net.packet("icmp", "1.1.1.1", 1, "10.0.0.1", 80)
    with pytest.raises(ValueError):
        net.packet("tcp", "1.1.1.1", 0, "10.0.0.1", 80)
    with pytest.raises(ValueError):
        net.packet("tcp", "1.1.1.1", 1, "::1", 80)
    assert net.conn_count == 0


def test_persistence_same_dest_within_timeout_and_template_row():
    net = ipvs_py.Netns(seed=3)
    net.restore("-A -t 10.0.0.1:80 -s rr -p 100\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m\n")
    first = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80).dest
    for port in range(4001, 4010):
        assert net.packet("tcp", "1.1.1.1", port, "10.0.0.1", 80).dest \
            == first
    other = net.packet("tcp", "2.2.2.2", 4000, "10.0.0.1", 80).dest
    assert other != first
    text = net.proc_ip_vs_conn()
    assert "TCP 01010101 0000 0A000001 0050" in text     # the template
    d = dests(net)[first]
    assert d.persistconns == 1 and d.activeconns == 10
    net.advance(3000)           # everything expires, templates last
    assert net.conn_count == 0 and d.persistconns == 0


def test_fwmark_persistence_across_ports():
    net = ipvs_py.Netns(seed=3)
    net.restore("-A -f 5 -s rr -p 100\n-a -f 5 -r 10.0.1.1:0 -g\n"
                "-a -f 5 -r 10.0.1.2:0 -g\n")
    a = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, fwmark=5).dest
    b = net.packet("tcp", "1.1.1.1", 4001, "10.0.0.1", 443, fwmark=5).dest
    assert a[0] == b[0]
    assert "IP  01010101 0000 00000005 0000" in net.proc_ip_vs_conn()


def test_conn_reuse_mode_reschedules_time_wait():
    net = make()
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    # RST on SYN_RECV stays SYN_RECV (tcp_states); on ESTABLISHED closes
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "R")
    assert "SYN_RECV" in net.proc_ip_vs_conn()
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "A")
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "R")
    assert "CLOSE " in net.proc_ip_vs_conn()
    w = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    assert w.conn is not None and net.conn_count == 1
    assert w.dest != v.dest                 # rr moved on: rescheduled


def test_deleted_dest_drops_or_expires_nodest():
    net = make()
    v = net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    net.del_dest(("tcp", "10.0.0.1", 80), v.dest[0], v.dest[1])
    assert net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80,
                      "A").action == "drop"
    net.sysctl["expire_nodest_conn"] = 1
    assert net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80,
                      "A").action == "pass"
    assert net.conn_count == 0


def _traffic(seed, n=600):
    rng = random.Random(seed)
    rows, t = [], 0.0
    for _ in range(n):
        t += rng.choice([0, 0, 0.5, 3, 40])
        c = "1.1.%d.%d" % (rng.randrange(3), rng.randrange(6))
        if rng.random() < 0.7:
            rows.append(("tcp", c, 1000 + rng.randrange(4), "10.0.0.1", 80,
                         rng.choice(["S", "A", "FA", "R", "SA"]), t))
        else:
            rows.append(("udp", c, 2000 + rng.randrange(4), "10.0.0.1", 53,
                         0, t))
    return rows


@pytest.mark.parametrize("sched", ["rr", "wlc", "lblc", "sh", "mh"])
def test_replay_equals_packet_row_by_row(sched):
    rows = _traffic(11)
    a, b = make(sched), make(sched)
    res = a.replay(ipvs_py.PacketBatch.from_rows(rows))
    for i, r in enumerate(rows):
        b.advance(max(0.0, r[6] - b.now))
        v = b.packet(*r[:6])
        assert (res.action[i], res.dest[i]) == (v.action, v.dest), i
    assert a.proc_ip_vs_conn().count("\n") == b.proc_ip_vs_conn().count("\n")
    assert a.conn_count == b.conn_count


def test_nothing_leaks_after_all_timers():
    net = make("wlc")
    net.replay(ipvs_py.PacketBatch.from_rows(_traffic(5, 2000)))
    net.advance(10000)
    assert net.conn_count == 0
    for d in dests(net).values():
        assert (d.activeconns, d.inactconns, d.persistconns, d.refcnt) \
            == (0, 0, 0, 0)


def test_table_grows_with_conns_and_status_rows():
    net = make()
    rows = [("udp", str(ipaddress.IPv4Address(0x01000000 + i)), 2000,
             "10.0.0.1", 53, 0, 0.0) for i in range(3000)]
    net.replay(ipvs_py.PacketBatch.from_rows(rows))
    assert net.conn_count == 3000
    assert net.conn_tab_size >= 1024 or net._conn.e.table_info()[0] >= 1024
    st = net.status()
    assert st.startswith("Conns:\t3000\n")
    assert "Conn buckets empty:" in st


def test_drop_packet_mode_3_drops_every_am_droprate_new_conn():
    net = make()
    net.sysctl["drop_packet"] = 3          # drop_rate = am_droprate (10)
    acts = [net.packet("udp", "1.1.1.1", 2000 + i, "10.0.0.1", 53, 0).action
            for i in range(30)]
    assert acts.count("drop") == 3 and acts[9] == "drop"


def test_drop_entry_drops_idle_half_open_and_light_conns():
    net = make()
    for i in range(50):                    # half-open TCP: SYN_RECV
        net.packet("tcp", "1.1.1.1", 2000 + i, "10.0.0.1", 80, "S")
    for i in range(50):                    # UDP with one packet
        net.packet("udp", "1.1.1.2", 2000 + i, "10.0.0.1", 53, 0)
    assert net.conn_count == 100
    net.sysctl["drop_entry"] = 3
    net.advance(59)      # each scan samples 1/32 of the buckets at random
    left = net.conn_count
    assert left < 100                      # SYN_RECV goes at once
    assert net._conn.e.dropentry == 100 - left
    net.sysctl["drop_entry"] = 0


def test_defense_modes_follow_memory():
    net = make()
    net.sysctl["drop_entry"] = 1
    assert not net.dropentry_on and net.sysctl["drop_entry"] == 1
    net.mem_pages = 10                     # below amemthresh (1024)
    net.update_defense_level()
    assert net.dropentry_on and net.sysctl["drop_entry"] == 2
    net.mem_pages = 1 << 20
    net.update_defense_level()
    assert not net.dropentry_on and net.sysctl["drop_entry"] == 1


def test_no_cport_conn_rehashed_when_port_known():
    from ipvs_py._core.conntab import ConnEngine
    e = ConnEngine()
    e.set_dest(0, raw("10.0.1.1"), 80, 2, 0, 1, svc=0)
    e.set_service(0, raw("10.0.0.1"), 0, 2, 17, 0, 0, 0, b"\xff" * 16)
    e.set_sched_callback(lambda *a: 0)
    act, did, cid = e.packet(2, 17, raw("1.1.1.1"), 0, raw("10.0.0.1"), 0)
    assert act == "forward" and e.no_cport == 1
    # a later packet with the real port finds it and fills the port
    assert e.packet(2, 17, raw("1.1.1.1"), 5000, raw("10.0.0.1"), 0)[2] == cid
    assert e.no_cport == 0
    assert e.lookup_in(2, 17, raw("1.1.1.1"), 5000, raw("10.0.0.1"), 0) == cid
    assert e.lookup_out(2, 17, raw("1.1.1.1"), 5000, raw("10.0.1.1"),
                        80) == cid
    assert e.nconns == 1


def test_ipvsadm_lnc_text():
    net = make()
    net.packet("tcp", "1.1.1.1", 4000, "10.0.0.1", 80, "S")
    net.advance(1.5)
    lines = net.list_conn_text().splitlines()
    assert lines[0] == "IPVS connection entries"
    assert lines[1] == ("pro expire state       source             "
                        "virtual            destination")
    assert lines[2].startswith("TCP 00:58  SYN_RECV    1.1.1.1:4000       "
                               "10.0.0.1:80        10.0.1.")


def test_model_matches_kernel_golden_nat_traffic():
    """tests/kernel/golden/traffic_*: two socat conns through Debian 6.1's
    IPVS (test_guest_ipvs.py); the model fed their packets gives the same
    rows (expires aside), states and dest counters."""
    import pathlib
    golden = pathlib.Path(__file__).resolve().parents[1] / "kernel" / "golden"
    net = ipvs_py.Netns(kernel="6.1", seed=1)
    net.restore("-A -t 10.0.0.1:80 -s rr\n"
                "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 2\n")
    c, v, r = "10.0.2.2", "10.0.0.1", "10.0.1.1"
    for cport, close in ((40001, True), (40002, False)):
        net.packet("tcp", c, cport, v, 80, "S")
        net.packet("tcp", r, 80, c, cport, "SA", direction="out")
        net.packet("tcp", c, cport, v, 80, "A")
        net.packet("tcp", r, 80, c, cport, "PA", direction="out")
        net.packet("tcp", c, cport, v, 80, "A")
        if close:                       # client EOF, server closes too
            net.packet("tcp", c, cport, v, 80, "FA")
            net.packet("tcp", r, 80, c, cport, "FA", direction="out")
            net.packet("tcp", c, cport, v, 80, "A")
        net.advance(1)

    def rows(text):
        return sorted(tuple(ln.split()[:8]) for ln in text.splitlines()[1:])

    assert rows(net.proc_ip_vs_conn()) == rows(
        (golden / "traffic_proc_ip_vs_conn.txt").read_text())
    assert net.list_text() == (golden / "traffic_ipvsadm_Ln.txt").read_text()
    lnc = net.list_conn_text().splitlines()
    want = (golden / "traffic_ipvsadm_Lnc.txt").read_text().splitlines()
    assert lnc[:2] == want[:2]
    assert sorted(ln[11:] for ln in lnc[2:]) == sorted(ln[11:] for ln in want[2:])


def test_engine_passes_unknown_protocols_and_families():
    from ipvs_py._core.conntab import ConnEngine
    e = ConnEngine()
    e.set_dest(0, raw("10.0.1.1"), 80, 2, 0, 1, svc=0)
    e.set_service(0, raw("0.0.0.0"), 0, 2, 6, 5, 0, 0, b"\xff" * 16)
    e.set_sched_callback(lambda *a: 0)
    # an fwmark service would match any protocol: ICMP (1) still passes
    assert e.packet(2, 1, raw("1.1.1.1"), 1, raw("10.0.0.1"), 1,
                    fwmark=5)[0] == "pass"
    assert e.packet(7, 6, raw("1.1.1.1"), 1, raw("10.0.0.1"), 1, 2,
                    fwmark=5)[0] == "pass"
    assert e.packet(2, 6, raw("1.1.1.1"), 1, raw("10.0.0.1"), 1, 2,
                    fwmark=5)[0] == "forward"
    assert e.nconns == 1


def test_conn_lfactor_sysctl_rebuilds_and_shows_in_status():
    net = make()
    rows = [("udp", str(ipaddress.IPv4Address(0x01000000 + i)), 2000,
             "10.0.0.1", 53, 0, 0.0) for i in range(100)]
    net.replay(ipvs_py.PacketBatch.from_rows(rows))
    assert net.conn_tab_size == 2048          # desired(100) = 128 << 4 (lfactor -4)
    net.sysctl["conn_lfactor"] = 0
    net.packet("udp", "9.9.9.9", 2000, "10.0.0.1", 53, 0)
    assert net.conn_tab_size == 256           # clamp(128, 2^8, 2^12)
    assert "Conn buckets:\t256 (8 bits, lfactor 0)" in net.status()
    assert net.conn_count == 101
    for r in rows:                            # still all findable
        assert net._conn.e.lookup_in(2, 17, raw(r[1]), 2000,
                                     raw("10.0.0.1"), 53) >= 0


def test_sctp_handshake_states_and_counters():
    net = ipvs_py.Netns(seed=2)
    net.restore("-A --sctp-service 10.0.0.1:9 -s rr\n"
                "-a --sctp-service 10.0.0.1:9 -r 10.0.1.1:9 -m\n")
    c, v, r = "1.1.1.1", "10.0.0.1", "10.0.1.1"
    assert net.packet("sctp", c, 5000, v, 9, "DATA").action == "pass"
    assert net.packet("sctp", c, 5000, v, 9, "INIT").action == "forward"
    assert "SCTP" in net.proc_ip_vs_conn() and "INIT1" in net.proc_ip_vs_conn()
    net.packet("sctp", r, 9, c, 5000, "INIT_ACK", direction="out")
    assert "C-SENT" in net.proc_ip_vs_conn()
    net.packet("sctp", c, 5000, v, 9, "COOKIE_ECHO")
    assert "C-REPLIED" in net.proc_ip_vs_conn()
    net.packet("sctp", r, 9, c, 5000, "COOKIE_ACK", direction="out")
    assert "ESTABLISHED     900" in net.proc_ip_vs_conn()
    d = net.get_service("sctp", v, 9).dests[0]
    assert (d.activeconns, d.inactconns) == (1, 0)
    net.packet("sctp", c, 5000, v, 9, "ABORT")
    assert "CLOSED" in net.proc_ip_vs_conn()
    assert (d.activeconns, d.inactconns) == (0, 1)
