"""ICMP errors about IPIP tunnel packets through Debian 6.1's IPVS in the
VM vs the model (ip_vs_in_icmp's IPIP branch).  A UDP TUN service; the
client's datagrams make conns; then, from the real servers' side, crafted
errors about the director's tunnel packets (director -> RS, carrying the
client's request) are sent to the director.  The kernel relays some to
the client as ICMP errors of its own; a raw socket in the client netns
records which; `ipvsadm -Ln --stats` gives the counters.  One boot.
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

CLIENT, VIP, LB = "10.0.2.2", "10.0.0.1", "10.0.1.254"
TUN_RS, NAT_RS = "10.0.1.1", "10.0.1.2"
RULES = (f"-A -u {VIP}:53 -s rr\n"
         f"-a -u {VIP}:53 -r {TUN_RS}:53 -i\n"
         f"-A -u {VIP}:54 -s rr\n"
         f"-a -u {VIP}:54 -r {NAT_RS}:54 -m\n")
PORTS = [48001, 48002]
# (id, type, code, tunnel dst, cport, vport, DF): the id is the
# identification of the quoted request's IP header
ERRORS = [
    (1, 3, 4, TUN_RS, 48001, 53, True),     # frag needed, DF: relayed
    (2, 3, 4, TUN_RS, 48002, 53, False),    # frag needed, no DF: consumed
    (3, 11, 0, TUN_RS, 48002, 53, False),   # time exceeded: relayed
    (4, 3, 1, TUN_RS, 48999, 53, True),     # no such conn
    (5, 3, 4, NAT_RS, 48001, 54, True),     # not an IPIP dest
]

SENDER = r"""
import json, socket, sys, time
import dpkt
errors = json.load(open(sys.argv[1]))
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
for ident, typ, code, rs, client, cport, vip, vport, df, lb in errors:
    req = dpkt.ip.IP(src=socket.inet_aton(client), dst=socket.inet_aton(vip),
                     p=17, id=ident, ttl=64, df=1 if df else 0,
                     len=20 + 8 + 5)
    udp = bytes(dpkt.udp.UDP(sport=cport, dport=vport, data=b"ping\n"))[:8]
    tun = dpkt.ip.IP(src=socket.inet_aton(lb), dst=socket.inet_aton(rs), p=4,
                     id=1000 + ident, ttl=64, df=1,
                     len=20 + 20 + 8 + 5)
    body = bytes(tun)[:20] + bytes(req)[:20] + udp
    icmp = dpkt.icmp.ICMP(type=typ, code=code,
                          data=dpkt.icmp.ICMP.Unreach(mtu=1400, data=body))
    s.sendto(bytes(icmp), (lb, 0))
    time.sleep(0.3)
"""

GUEST_SCRIPT = script_head(RULES, {
    "sender.py": SENDER, "receiver.py": RECEIVER4,
    "spec.json": json.dumps([(i, t, c, rs, CLIENT, cp, VIP, vp, df, LB)
                             for i, t, c, rs, cp, vp, df in ERRORS])},
    modules=("ip_vs", "ip_vs_rr", "ipip")) + r"""
. "$REPO/tests/kernel/guest/nat_lab.sh"     # cl -- LB -- rs
# the real server takes the tunnel packets (no protocol-unreachables) and
# listens (no port-unreachables): the only ICMP is what the sender makes
{
ip -n rs link set tunl0 up
ip netns exec rs sysctl -qw net.ipv4.conf.all.rp_filter=0 net.ipv4.conf.tunl0.rp_filter=0
} >> net_setup.log 2>&1
ip netns exec rs socat -u UDP-RECV:53 /dev/null > rs_udp.log 2>&1 &
ip netns exec rs socat -u UDP-RECV:54 /dev/null > rs_udp2.log 2>&1 &
sleep 0.5
ip netns exec cl "$PY" receiver.py cl_icmp.txt 60 2> receiver.err &
for i in $(seq 100); do grep -q ready cl_icmp.txt 2>/dev/null && break; sleep 0.2; done
for p in """ + " ".join(map(str, PORTS)) + r"""; do
    printf 'ping\n' | ip netns exec cl socat -u - UDP-SENDTO:10.0.0.1:53,sourceport=$p 2>> udp.err
    sleep 0.2
done
printf 'ping\n' | ip netns exec cl socat -u - UDP-SENDTO:10.0.0.1:54,sourceport=48001 2>> udp.err
sleep 0.5
cat /proc/net/ip_vs_conn > conn_before.txt
ip netns exec rs "$PY" sender.py spec.json > sender.log 2>&1
echo $? > sender.rc
""" + SCRIPT_TAIL


def model():
    """The model fed the same packets: (net, {id: Verdict})."""
    net = primed_model(RULES, CLIENT, VIP,
                       [(p, 53) for p in PORTS] + [(48001, 54)])
    verdicts = {}
    for ident, typ, code, rs, cport, vport, df in ERRORS:
        err = IcmpError(typ, code, (4, LB, 0, rs, 0), df=df,
                        tunneled=("udp", CLIENT, cport, VIP, vport))
        verdicts[ident] = net.packet("icmp", rs, 0, LB, 0, icmp=err,
                                     length=20 + 8 + 20 + 20 + 8)
    return net, verdicts


def test_setup(guest):
    assert guest.text("rules.rc").strip() == "0"
    assert guest.text("sender.rc").strip() == "0", guest.text("sender.log")
    assert len(guest.text("conn_before.txt").splitlines()) == 4


def test_relayed_errors_match_the_model(guest):
    _, verdicts = model()
    got = received4(guest, "cl_icmp.txt")
    for ident, typ, code, rs, cport, vport, df in ERRORS:
        v = verdicts[ident]
        if v.action == "forward":
            assert ident in got, (ident, v)
            # the client sees its own request quoted, type and code kept
            t, c, _, _, qsrc, qdst, _, _ = got[ident]
            assert (t, c, qsrc, qdst) == (typ, code, CLIENT, VIP), got[ident]
        else:
            assert ident not in got, (ident, v, got.get(ident))
    assert [verdicts[i].action for i in range(1, 6)] == \
        ["forward", "drop", "forward", "pass", "pass"]


def test_counters_match_the_model(guest):
    net, _ = model()
    assert guest.text("stats.txt") == net.list_text(stats=True)


def test_conns_untouched(guest):
    assert_conns_untouched(guest)
