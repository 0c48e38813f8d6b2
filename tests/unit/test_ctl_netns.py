"""Netns behaviour: services, dests, dest_trash, counters, sysctls, sizing."""
import errno
import ipaddress

import pytest

import ipvs_py
from ipvs_py.svctable import desired_size, thresholds


def test_api_objects():
    net = ipvs_py.Netns(seed=1)
    svc = net.add_service("tcp", "10.0.0.1", 80, sched_name="rr",
                          persistent=300, netmask="255.255.255.0")
    assert isinstance(svc, ipvs_py.Service)
    assert (svc.af, svc.protocol, str(svc.addr), svc.port) == (2, 6,
                                                               "10.0.0.1", 80)
    assert (svc.sched_name, svc.timeout, svc.netmask) == ("rr", 300,
                                                          0xFFFFFF00)
    d = net.add_dest(svc, "10.1.0.1", 8080, fwd_method="masq", weight=3,
                     u_thresh=100)
    assert isinstance(d, ipvs_py.Dest)
    assert (d.fwd_method, d.weight, d.u_thresh, d.l_thresh_val) == (0, 3,
                                                                    100, 75)
    assert net.dests(svc) == [d]
    d2 = net.edit_dest(svc, "10.1.0.1", 8080, fwd_method="masq", weight=0)
    assert d2 is d and d.weight == 0 and d.last_weight == 3
    with pytest.raises(ipvs_py.IPVSError) as e:
        net.add_service("tcp", "10.0.0.1", 80)
    assert e.value.errno == errno.EEXIST
    with pytest.raises(ipvs_py.IPVSError) as e:
        net.del_dest(svc, "10.9.9.9", 1)
    assert e.value.errno_name == "ENOENT"


def test_dest_list_order_and_trash_revival():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80 -s rr\n"
                "-a -t 10.0.0.1:80 -r 10.1.0.1 -m\n"
                "-a -t 10.0.0.1:80 -r 10.1.0.2 -m\n")
    svc = net.get_service("tcp", "10.0.0.1", 80)
    d1 = net.dests(svc, sort=False)[1]
    assert [str(d.addr) for d in svc.dests] == ["10.1.0.2", "10.1.0.1"]
    d1.activeconns, d1.refcnt = 4, 4          # connections still use it
    net.restore("-d -t 10.0.0.1:80 -r 10.1.0.1:80")
    assert net.dest_trash == [d1] and not d1.available
    net.restore("-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 7")
    assert net.dest_trash == []
    assert svc.dests[0] is d1                 # revived, at the head
    assert d1.activeconns == 4 and d1.weight == 7 and d1.available


def test_trash_expiry_on_virtual_clock():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 10.1.0.1 -m\n"
                "-a -t 10.0.0.1:80 -r 10.1.0.2 -m\n")
    busy = net.get_service("tcp", "10.0.0.1", 80).dests[0]
    busy.refcnt = 1
    net.restore("-D -t 10.0.0.1:80")
    assert len(net.dest_trash) == 2
    net.advance(59)                # the timer fires at +60 s (PERIOD/2)
    assert len(net.dest_trash) == 2
    net.advance(1)                 # first pass: idle_start set
    assert len(net.dest_trash) == 2
    net.advance(120)               # +180: idle for a full period -> freed
    assert net.dest_trash == [busy]
    busy.refcnt = 0
    net.advance(60)
    assert len(net.dest_trash) == 1   # idle_start set now
    net.advance(120)
    assert net.dest_trash == []


def test_revival_from_deleted_service_zeroes_stats():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -f 3\n-a -f 3 -r 10.1.0.1 -g\n")
    d = net.get_service(fwmark=3).dests[0]
    d.stats.conns = 10
    net.restore("-D -f 3\n-A -f 3 -s rr\n-a -f 3 -r 10.1.0.1 -g\n")
    assert net.get_service(fwmark=3).dests[0] is d
    assert d.stats.shown()["conns"] == 0


def test_service_type_counters():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:21\n-A -t 10.0.0.1:0 -p\n-A -f 1\n"
                "-A -f 2 -6\n-A -u [::5]:53 --pe sip -p 10\n")
    c = net.counters
    assert c["num_services"] == [3, 2]
    assert c["fwm_services"] == [1, 1]
    assert c["nonfwm_services"] == [2, 1]
    assert c["ftpsvc_counter"] == [1, 0]
    assert c["nullsvc_counter"] == [1, 0]
    assert c["conn_out_counter"] == [0, 1]
    old = ipvs_py.Netns(kernel="6.1", seed=1)
    old.restore("-A -f 1\n")
    assert old.counters["nullsvc_counter"] == [1, 0]   # 6.1 quirk
    net.flush()
    assert all(v == [0, 0] for v in net.counters.values())


def test_find_service_fallbacks():
    import ipaddress
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -t 10.0.0.1:21\n-A -t 10.0.0.2:0 -p\n-A -f 9\n")
    a1 = ipaddress.ip_address("10.0.0.1")
    a2 = ipaddress.ip_address("10.0.0.2")
    assert net.find_service(2, 6, a1, 21).port == 21
    assert net.find_service(2, 6, a1, 20).port == 21      # FTP data
    assert net.find_service(2, 6, a1, 1023) is None
    assert net.find_service(2, 6, a2, 443).port == 0      # port zero
    assert net.find_service(2, 6, a1, 21, fwmark=9).fwmark == 9
    assert net.find_service(10, 6, ipaddress.ip_address("::1"), 80) is None


def test_sysctl_defaults_and_ranges():
    init = ipvs_py.Netns()
    other = ipvs_py.Netns(init_net=False)
    assert (init.sysctl["svc_lfactor"], init.sysctl["conn_lfactor"]) == (-3,
                                                                         -4)
    assert (other.sysctl["svc_lfactor"], other.sysctl["conn_lfactor"]) == (
        -2, -2)
    for bad in (-9, 9):
        with pytest.raises(ValueError, match=r"-8\.\.8"):
            init.sysctl["svc_lfactor"] = bad
    with pytest.raises(ValueError, match="0..3"):
        init.sysctl["drop_entry"] = 4
    with pytest.raises(ValueError, match="power of two"):
        init.sysctl["sync_ports"] = 3
    init.sysctl["sync_threshold"] = "10 100"
    assert init.sysctl.text("sync_threshold") == "10\t100\n"
    with pytest.raises(ValueError):
        init.sysctl["sync_threshold"] = (100, 10)
    with pytest.raises(KeyError):
        init.sysctl["no_such"] = 1
    old = ipvs_py.Netns(kernel="6.1")
    assert "svc_lfactor" not in old.sysctl and "est_nice" not in old.sysctl
    assert "conn_lfactor" in init.sysctl and len(init.sysctl) == 33


def test_constructor_checks():
    with pytest.raises(ValueError, match="8..27"):
        ipvs_py.Netns(conn_tab_bits=7)
    with pytest.raises(ValueError):
        ipvs_py.Netns(kernel="5.10")
    assert ipvs_py.Netns(conn_tab_bits=20, kernel="6.1").conn_tab_size == \
        1 << 20


def test_netns_independent():
    a, b = ipvs_py.Netns(), ipvs_py.Netns()
    a.restore("-A -t 10.0.0.1:80")
    b.sysctl["svc_lfactor"] = 2
    assert len(b.svc_table) == 0 and a.sysctl["svc_lfactor"] == -3
    b.restore("-A -t 10.0.0.1:80")
    assert a.svc_table.t.key0 != b.svc_table.t.key0 or True  # random keys
    assert a.svc_table.t is not b.svc_table.t


# -- service table sizing follows svc_lfactor --------------------------------
def test_threshold_formulas():
    assert thresholds(16, -3) == (2, 0)
    assert thresholds(32, -3) == (4, 0)
    assert thresholds(128, -3) == (16, 1)
    assert thresholds(1 << 20, -3) == ((1 << 31) - 1, 1 << 16)
    assert thresholds(16, 2) == (64, 0)
    assert desired_size(None, None, 0, -3) == 16
    assert desired_size(16, -3, 3, -3) == 32
    assert desired_size(128, -3, 12, -3) == 128
    assert desired_size(1024, -3, 3, -3) == 64        # shrink keeps 2x
    assert desired_size(16, -3, 5, 0) == 16           # new lfactor: clamp


def _expected_sizes(counts, lf=-3):
    """Replay the kernel policy: grow on count > u, shrink on count <= l."""
    size = None
    out = []
    for prev, n in zip([0] + counts, counts):
        if n == 0:
            size = None
        elif size is None:
            size = 16
        else:
            u, l = thresholds(size, lf)
            if (n > prev and n > u) or (n < prev and n <= l):
                size = desired_size(size, lf, n, lf)
        out.append(size or 0)
    return out


@pytest.mark.parametrize("lf,init", [(-3, True), (-2, False), (0, True),
                                     (2, True), (-8, True)])
def test_sizing_as_services_come_and_go(lf, init):
    net = ipvs_py.Netns(seed=5, init_net=init)
    if lf != net.sysctl["svc_lfactor"]:
        net.sysctl["svc_lfactor"] = lf
    counts, sizes = [], []
    for i in range(300):
        net.add_service("tcp", f"10.0.{i // 250}.{i % 250 + 1}", 80)
        counts.append(len(net.svc_table))
        sizes.append(net.svc_table.size)
    for i in range(300):
        net.del_service("tcp", f"10.0.{i // 250}.{i % 250 + 1}", 80)
        counts.append(len(net.svc_table))
        sizes.append(net.svc_table.size)
    assert sizes == _expected_sizes(counts, lf)
    assert sizes[-1] == 0
    if lf == -3:
        assert max(sizes) == 4096
    assert net.svc_table.t is None


def test_sizing_follows_svc_lfactor_writes():
    net = ipvs_py.Netns(seed=5)
    for i in range(100):
        net.add_service("udp", f"10.1.0.{i + 1}", 53)
    assert net.svc_table.size == 1024 and net.svc_table.t.lfactor == -3
    net.sysctl["svc_lfactor"] = 1       # kicks the resizer: new L rebuilds
    assert (net.svc_table.size, net.svc_table.t.lfactor) == (64, 1)
    net.sysctl["svc_lfactor"] = -8
    assert net.svc_table.size == 1 << 15
    s = net.status()
    assert "Service buckets:\t32768 (15 bits, lfactor -8)" in s
    # every service is still found after the rebuilds
    for i in range(100):
        assert net.get_service("udp", f"10.1.0.{i + 1}", 53) is not None


def test_rebuild_flips_table_id_and_rehashes():
    net = ipvs_py.Netns(seed=9)
    net.add_service("tcp", "10.0.0.1", 80)
    t0 = net.svc_table.t
    assert t0.table_id == 0
    for i in range(2, 4):
        net.add_service("tcp", f"10.0.0.{i}", 80)
    t1 = net.svc_table.t
    assert t1 is not t0 and t1.table_id == 0x80000000 and t1.size == 32
    for svc in net.services():
        assert svc.hash_key & 0x80000000
        assert svc in t1.buckets[svc.hash_key & t1.mask]


def test_conn_tab_lifetime_and_lfactor():
    """7.1: the first service allocates conn_tab (2^8, conn_lfactor then);
    deleting every service keeps it; a conn_lfactor write is picked up by
    the 2 s conn_resize_work."""
    net = ipvs_py.Netns(seed=1)
    assert net.conn_tab_size == 0
    assert net.list_text().startswith(
        "IP Virtual Server version 1.2.1 (size=0)\n")
    net.restore("-A -t 10.0.0.1:80")
    assert net.conn_tab_size == 256
    net.restore("-D -t 10.0.0.1:80")
    assert net.conn_tab_size == 256
    net.sysctl["conn_lfactor"] = 3
    assert "Conn buckets:\t256 (8 bits, lfactor -4)" in net.status()
    net.advance(2)
    assert "Conn buckets:\t256 (8 bits, lfactor 3)" in net.status()


def test_as_dict_netlink_names():
    net = ipvs_py.Netns(seed=1)
    net.restore("-A -u 10.0.0.1:53 -s sh -b sh-port -p 30 --pe sip\n"
                "-a -u 10.0.0.1:53 -r 10.1.0.1:53 -m -w 4 -x 9 -y 3\n")
    svc = net.services()[0]
    d = svc.as_dict()
    assert d["protocol"] == 17 and d["addr"] == "10.0.0.1" and d["port"] == 53
    assert d["flags"] == 0x1 | 0x2 | 0x10 and d["pe_name"] == "sip"
    assert d["timeout"] == 30 and d["netmask"] == 0xFFFFFFFF
    dd = svc.dests[0].as_dict()
    assert (dd["weight"], dd["u_thresh"], dd["l_thresh"],
            dd["fwd_method"], dd["addr_family"]) == (4, 9, 3, 0, 2)


def test_find_service_takes_address_strings():
    net = ipvs_py.Netns()
    net.restore("-A -t 192.0.2.1:80 -s rr\n-A -t [2001:db8::1]:80 -s rr\n")
    v4 = net.find_service(2, 6, ipaddress.ip_address("192.0.2.1"), 80)
    assert v4 is not None
    assert net.find_service(2, 6, "192.0.2.1", 80) is v4
    assert net.find_service(10, 6, "2001:db8::1", 80).af == 10
    assert net.find_service(2, 6, "192.0.2.9", 80) is None
    with pytest.raises(ValueError, match="bad IP address 'nope'"):
        net.find_service(2, 6, "nope", 80)
    with pytest.raises(ValueError, match="not an address of family 2"):
        net.find_service(2, 6, "2001:db8::1", 80)
