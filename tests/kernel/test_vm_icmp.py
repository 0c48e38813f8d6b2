"""ICMP errors through Debian 6.1's IPVS in the VM vs the model
(include/ipvs_icmp.h): the client sends crafted ICMP errors about the
replies of its UDP conns (NAT and DR services) to the VIP; a raw socket
on the real servers records which arrive and how they were rewritten;
`ipvsadm -Ln --stats` gives the packet/byte counters.  The model, fed the
same packets, must forward exactly the errors the kernel forwarded, to the
same real server, and count the same.  One boot.
"""
from __future__ import annotations

import json

import pytest

from ipvs_py import IcmpError
from tests.kernel.icmp_lab import (RECEIVER4, SCRIPT_TAIL,
                                   assert_conns_untouched, received4,
                                   script_head, primed_model)

pytestmark = pytest.mark.kernel_vm
GUEST_TIMEOUT = 900

CLIENT, VIP = "10.0.2.2", "10.0.0.1"
NAT_RS, DR_RS = "10.0.1.1", "10.0.1.2"
RULES = (f"-A -u {VIP}:53 -s rr\n"
         f"-a -u {VIP}:53 -r {NAT_RS}:53 -m\n"
         f"-A -u {VIP}:5353 -s rr\n"
         f"-a -u {VIP}:5353 -r {DR_RS}:5353 -g\n")
NAT_PORTS, DR_PORTS = [46001, 46002], [47001]
PAYLOAD = b"ping\n"             # one UDP datagram per conn: 33 bytes
# (id, type, code, vport, cport, inner bytes): the id goes in the inner
# IP header's identification field so the capture can tell them apart
ERRORS = [
    (1, 3, 3, 53, 46001, 8),    # port unreachable, NAT conn
    (2, 11, 0, 53, 46002, 8),   # time exceeded, NAT conn
    (3, 4, 0, 53, 46001, 8),    # source quench, NAT conn
    (4, 3, 4, 5353, 47001, 8),  # frag needed, DR conn
    (5, 3, 3, 53, 46999, 8),    # no such conn
    (6, 12, 0, 53, 46001, 8),   # parameter problem: not an error IPVS takes
    (7, 0, 0, 53, 46001, 8),    # echo reply: not an error
    (8, 3, 3, 53, 46001, 0),    # inner ports cut off
]
# errors sent from the real servers' side to the client about requests as
# the director forwarded them (ip_vs_out_icmp): (id, type, code, cport,
# real server, port)
ERRORS_OUT = [
    (9, 3, 4, 46001, NAT_RS, 53),       # NAT conn: translated to the VIP
    (10, 11, 0, 47001, DR_RS, 5353),    # DR conn: left alone
    (11, 3, 3, 46999, NAT_RS, 53),      # no such conn
]


def _in_spec():
    """ERRORS as sender rows: (id, type, code, inner src, sport, inner dst,
    dport, inner bytes, outer dst)."""
    return [(i, t, c, VIP, vp, CLIENT, cp, tail, VIP)
            for i, t, c, vp, cp, tail in ERRORS]


def _out_spec():
    return [(i, t, c, CLIENT, cp, rs, rp, 8, CLIENT)
            for i, t, c, cp, rs, rp in ERRORS_OUT]

SENDER = r"""
import json, socket, sys, time
import dpkt
errors = json.load(open(sys.argv[1]))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for ident, typ, code, isrc, isport, idst, idport, tail, dst in errors:
    udp = bytes(dpkt.udp.UDP(sport=isport, dport=idport, data=b"x" * 4))[:tail]
    inner = dpkt.ip.IP(src=socket.inet_aton(isrc), dst=socket.inet_aton(idst),
                       p=17, id=ident, ttl=64, len=20 + 12)
    body = bytes(inner)[:20] + udp
    if typ in (3, 4, 11, 12):
        icmp = dpkt.icmp.ICMP(type=typ, code=code,
                              data=dpkt.icmp.ICMP.Unreach(data=body))
    else:
        icmp = dpkt.icmp.ICMP(type=typ, code=code,
                              data=dpkt.icmp.ICMP.Echo(id=ident, seq=1))
    s.sendto(bytes(icmp), (dst, 0))
    time.sleep(0.3)
"""

GUEST_SCRIPT = script_head(RULES, {
    "sender.py": SENDER, "receiver.py": RECEIVER4,
    "spec_in.json": json.dumps(_in_spec()),
    "spec_out.json": json.dumps(_out_spec())}) + r"""
. "$REPO/tests/kernel/guest/nat_lab.sh"     # cl -- LB -- rs
ip netns exec rs socat -u UDP-RECV:53 /dev/null > rs_udp.log 2>&1 &
ip netns exec rs socat -u UDP-RECV:5353 /dev/null > rs_udp2.log 2>&1 &
ip netns exec rs "$PY" receiver.py rs_icmp.txt 60 2> receiver.err &
ip netns exec cl "$PY" receiver.py cl_icmp.txt 60 2> receiver_cl.err &
for i in $(seq 100); do
    grep -q ready rs_icmp.txt 2>/dev/null && grep -q ready cl_icmp.txt 2>/dev/null && break
    sleep 0.2
done
for p in """ + " ".join(map(str, NAT_PORTS)) + r"""; do
    printf 'ping\n' | ip netns exec cl socat -u - UDP-SENDTO:10.0.0.1:53,sourceport=$p 2>> udp.err
    sleep 0.2
done
for p in """ + " ".join(map(str, DR_PORTS)) + r"""; do
    printf 'ping\n' | ip netns exec cl socat -u - UDP-SENDTO:10.0.0.1:5353,sourceport=$p 2>> udp.err
    sleep 0.2
done
cat /proc/net/ip_vs_conn > conn_before.txt
ipvsadm -Ln --stats > stats_before.txt
ip netns exec cl "$PY" sender.py spec_in.json > sender.log 2>&1
echo $? > sender.rc
ip netns exec rs "$PY" sender.py spec_out.json > sender_out.log 2>&1
echo $? > sender_out.rc
""" + SCRIPT_TAIL


def model():
    """The model fed the same packets: (net, {id: Verdict})."""
    net = primed_model(RULES, CLIENT, VIP,
                       [(p, 53) for p in NAT_PORTS] + [(p, 5353) for p in DR_PORTS])
    verdicts = {}
    for ident, typ, code, vport, cport, tail in ERRORS:
        err = IcmpError(typ, code, ("udp", VIP, vport, CLIENT, cport),
                        truncated=None if tail else "inner_ports")
        verdicts[ident] = net.packet("icmp", CLIENT, 0, VIP, 0,
                                     length=20 + 8 + 20 + tail, icmp=err)
    for ident, typ, code, cport, rs, rport in ERRORS_OUT:
        err = IcmpError(typ, code, ("udp", CLIENT, cport, rs, rport))
        verdicts[ident] = net.packet("icmp", NAT_RS, 0, CLIENT, 0,
                                     direction="out", length=56, icmp=err)
    return net, verdicts


def test_setup(guest):
    assert guest.text("rules.rc").strip() == "0"
    assert guest.text("sender.rc").strip() == "0", guest.text("sender.log")
    assert guest.text("sender_out.rc").strip() == "0", \
        guest.text("sender_out.log")
    assert len(guest.text("conn_before.txt").splitlines()) == 4


def test_forwarded_errors_match_the_model(guest):
    _, verdicts = model()
    got = received4(guest, "rs_icmp.txt")
    for ident, typ, code, vport, cport, tail in ERRORS:
        v = verdicts[ident]
        if v.action == "forward":
            assert ident in got, (ident, v)
            _, _, src, dst, isrc, idst, isport, idport = got[ident]
            rs = v.dest[0]
            if vport == 53:     # NAT: outer dst and inner source rewritten
                assert (dst, isrc, isport) == (rs, rs, 53), got[ident]
            else:               # DR: sent as it is
                assert (dst, isrc, isport) == (VIP, VIP, vport), got[ident]
        else:
            assert ident not in got, (ident, v, got.get(ident))
    # the model forwards 1..4 only
    assert sorted(e[0] for e in ERRORS
                  if verdicts[e[0]].action == "forward") == [1, 2, 3, 4]


def test_reply_side_errors_match_the_model(guest):
    """ip_vs_out_icmp(): the NAT conn's error reaches the client from the
    VIP about VIP:53; the others pass the director unchanged."""
    _, verdicts = model()
    got = received4(guest, "cl_icmp.txt")
    assert sorted(got) == [9, 10, 11]       # every one reaches the client
    for ident, typ, code, cport, rs, rport in ERRORS_OUT:
        v = verdicts[ident]
        _, _, src, dst, isrc, idst, isport, idport = got[ident]
        assert (dst, isrc, isport) == (CLIENT, CLIENT, cport)
        if v.action == "forward":           # translated
            assert (src, idst, idport) == (VIP, VIP, 53), got[ident]
        else:
            assert v.action == "pass"
            assert (src, idst, idport) == (NAT_RS, rs, rport), got[ident]
    assert [verdicts[i].action for i in (9, 10, 11)] == \
        ["forward", "pass", "pass"]


def test_counters_match_the_model(guest):
    net, _ = model()
    assert guest.text("stats.txt") == net.list_text(stats=True)


def test_conns_untouched(guest):
    assert_conns_untouched(guest)
