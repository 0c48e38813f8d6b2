"""Exact texts of the control plane (ipvsadm 1.31 and the kernel's /proc).

Expected strings were written from ipvsadm.c / ip_vs_ctl.c formats and agree
with the real-kernel captures in tests/kernel/golden/ (checked below too).
"""
import pathlib

import pytest

import ipvs_py
from ipvs_py import text

GOLDEN = pathlib.Path(__file__).resolve().parent.parent / "kernel" / "golden"
MIXED = (GOLDEN.parent / "guest" / "mixed_rules.txt")

RULES = """\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.1.0.2 -g -x 100 -y 50
-A -u [2001:db8::1]:53 -s wrr -p 300 -M 64 -o
-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -m
-A -f 7 -s sh -b sh-port,sh-fallback
-a -f 7 -r 192.168.5.5 -i --tun-type gue --tun-port 6080 --tun-csum
-A --sctp-service 10.0.0.5:3868 -s lc --pe sip -p 60 -M 255.255.255.0
"""


@pytest.fixture(params=["7.1", "6.1"])
def net(request):
    n = ipvs_py.Netns(kernel=request.param, seed=7, svc_salt=0)
    n.restore(RULES)
    return n


def test_save(net):
    assert net.save() == """\
-A -t 10.0.0.1:80 -s rr
-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 2
-a -t 10.0.0.1:80 -r 10.1.0.2:80 -g -w 1
-A --sctp-service 10.0.0.5:3868 -s lc -p 60 -M 255.255.255.0 --pe sip
-A -u [2001:db8::1]:53 -s wrr -p 300 -M 64 -o
-a -u [2001:db8::1]:53 -r [2001:db8::10]:53 -m -w 1
-A -f 7 -s sh -b sh-fallback,sh-port
-a -f 7 -r 192.168.5.5:0 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
"""


def test_list_plain(net):
    size = 4096 if net.kernel == "6.1" else 256
    assert net.list_text() == f"""\
IP Virtual Server version 1.2.1 (size={size})
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  10.0.0.1:80 rr
  -> 10.1.0.1:80                  Masq    2      0          0         
  -> 10.1.0.2:80                  Route   1      0          0         
SCTP 10.0.0.5:3868 lc persistent 60 mask 255.255.255.0 pe sip
UDP  [2001:db8::1]:53 wrr persistent 300 mask 64 ops
  -> [2001:db8::10]:53            Masq    1      0          0         
FWM  7 sh (sh-fallback,sh-port)
  -> 192.168.5.5:0                Tunnel  1      0          0         
"""


def test_list_thresholds(net):
    lines = net.list_text(thresholds=True).splitlines()
    assert lines[1] == ("Prot LocalAddress:Port            Uthreshold "
                        "Lthreshold ActiveConn InActConn ")
    assert lines[2] == "  -> RemoteAddress:Port"
    assert ("  -> 10.1.0.2:80                  100        50         0"
            "          0         ") in lines


def test_list_stats_and_rate_numbers(net):
    svc = net.get_service("tcp", "10.0.0.1", 80)
    svc.stats.conns = 123456789          # >= 100 million: K suffix
    svc.stats.inbytes = 10 ** 12         # G
    d = net.dests(svc)[0]
    d.stats.cps = 5
    d.stats.inbps = 999999999
    out = net.list_text(stats=True).splitlines()
    name = "TCP  10.0.0.1:80".ljust(33)
    assert out[3] == name + "  123456K        0        0    1000G        0"
    out = net.list_text(stats=True, exact=True).splitlines()
    assert out[3] == name + (" 123456789        0        0 1000000000000"
                             "        0")
    out = net.list_text(rate=True).splitlines()
    assert out[4] == ("  -> " + "10.1.0.1:80".ljust(28)
                      + "        5        0        0  999999K        0")
    svc.stats.zero()
    assert net.list_text(stats=True).splitlines()[3].split()[-5:] == \
        ["0"] * 5


def test_proc_ip_vs_lines(net):
    lines = net.proc_ip_vs().splitlines()
    assert lines[1:3] == [
        "Prot LocalAddress:Port Scheduler Flags",
        "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn"]
    body = set(lines[3:])
    assert "TCP  0A000001:0050 rr  " in body
    assert "  -> 0A010001:0050      Masq    2      0          0         " \
        in body
    # IPv6: no "ops" field, timeout in ticks (HZ 250), raw be32 prefix
    assert ("UDP  [2001:0db8:0000:0000:0000:0000:0000:0001]:0035 wrr "
            "persistent 75000 40000000") in body
    assert "FWM  00000007 sh " in body
    assert "SCTP  0A000005:0F1C lc  persistent 15000 FFFFFF00" in body


def test_proc_stats_empty():
    assert ipvs_py.Netns().proc_ip_vs_stats() == (
        "   Total Incoming Outgoing         Incoming         Outgoing\n"
        "   Conns  Packets  Packets            Bytes            Bytes\n"
        "       0        0        0                0                0\n\n"
        " Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n"
        "       0        0        0                0                0\n")


def test_empty_listings_match_real_kernel():
    net = ipvs_py.Netns(kernel="6.1")
    assert net.list_text() == (GOLDEN / "ipvsadm_Ln_empty.txt").read_text()
    assert net.proc_ip_vs() == (GOLDEN / "proc_ip_vs_empty.txt").read_text()
    assert net.save() == ""


@pytest.mark.parametrize("golden,kw", [
    ("mixed_ipvsadm_Ln.txt", {}),
    ("mixed_ipvsadm_Ln_stats.txt", {"stats": True}),
    ("mixed_ipvsadm_Ln_rate.txt", {"rate": True}),
    ("mixed_ipvsadm_Ln_thresholds.txt", {"thresholds": True}),
    ("mixed_ipvsadm_Ln_persistent.txt", {"persistent_conn": True}),
])
def test_golden_listings(golden, kw):
    net = ipvs_py.Netns(kernel="6.1")
    net.restore(MIXED.read_text())
    assert net.list_text(**kw) == (GOLDEN / golden).read_text()


def test_golden_save_and_proc():
    net = ipvs_py.Netns(kernel="6.1", svc_salt=48)
    net.restore(MIXED.read_text())
    assert net.save() == (GOLDEN / "mixed_ipvsadm_S_n.txt").read_text()
    assert net.proc_ip_vs() == (GOLDEN / "mixed_proc_ip_vs.txt").read_text()


def test_status_text():
    net = ipvs_py.Netns(seed=3)
    assert net.status() == (
        "Conns:\t0\nConn buckets:\t0 (0 bits, lfactor 0)\n"
        "Services:\t0\nService buckets:\t0 (0 bits, lfactor 0)\n"
        "Stats thread slots:\t1 (max 0)\nStats chain max len:\t16\n"
        "Stats thread ests:\t38400\n")
    net.restore("-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n")
    s = net.status().splitlines()
    assert s[:4] == ["Conns:\t0", "Conn buckets:\t256 (8 bits, lfactor -4)",
                     "Services:\t2", "Service buckets:\t16 (4 bits, "
                     "lfactor -3)"]
    counts = net.svc_table.chain_lengths()
    assert s[4] == "Service buckets empty:\t%d (%d%%)" % (
        counts[0], counts[0] * 100 // 16)
    assert s[-3:] == ["Stats thread slots:\t1 (max 16)",
                      "Stats chain max len:\t16", "Stats thread ests:\t38400"]
    with pytest.raises(FileNotFoundError):
        ipvs_py.Netns(kernel="6.1").status()


def test_sort_wraps_like_libipvs():
    """ntohl(a) - ntohl(b) as int: 10.x sorts after 200.x, and the
    comparison is not transitive, so the merge order matters."""
    net = ipvs_py.Netns(kernel="6.1", svc_salt=0)
    net.restore("-A -t 10.0.0.1:80\n-A -t 200.0.0.1:80\n")
    order = [str(s.addr) for s in net.services()]
    assert order == ["200.0.0.1", "10.0.0.1"]


@pytest.mark.parametrize("b,s", [
    ("20010db8000000000000000000000001", "2001:db8::1"),
    ("00000000000000000000000000000001", "::1"),
    ("00000000000000000000000000000000", "::"),
    ("00000000000000000000ffff0a000001", "::ffff:10.0.0.1"),
    ("0000000000000000000000000a000001", "::10.0.0.1"),
    ("20010db8000000010000000000000000", "2001:db8:0:1::"),
    ("20010000000100000000000100000001", "2001:0:1::1:0:1"),
    ("fe800000000000000000000000000000", "fe80::"),
])
def test_inet_ntop6(b, s):
    assert text.inet_ntop(10, bytes.fromhex(b)) == s
