"""ICMPv6 errors through Debian 6.1's IPVS in the VM vs the model
(ip_vs_in_icmp_v6: every type below 128 is an error, packet-too-big and
parameter-problem included).  As test_vm_icmp.py, over IPv6: the client
sends crafted errors about the replies of its UDP conns (NAT and DR) to
the VIP; a raw socket on the real servers records which arrive and how the
quoted header was rewritten; `ipvsadm -Ln --stats` gives the counters.
One boot.
"""
from __future__ import annotations

import json

import pytest

from ipvs_py import IcmpError
from tests.kernel.icmp_lab import (SCRIPT_TAIL, assert_conns_untouched,
                                   script_head, primed_model)

pytestmark = pytest.mark.kernel_vm
GUEST_TIMEOUT = 900

CLIENT, VIP = "2001:db8:2::2", "2001:db8:1::1"
NAT_RS, DR_RS = "2001:db8:3::1", "2001:db8:3::2"
RULES = (f"-A -u [{VIP}]:53 -s rr\n"
         f"-a -u [{VIP}]:53 -r [{NAT_RS}]:53 -m\n"
         f"-A -u [{VIP}]:5353 -s rr\n"
         f"-a -u [{VIP}]:5353 -r [{DR_RS}]:5353 -g\n")
NAT_PORTS, DR_PORTS = [46001, 46002], [47001]
# (id, type, code, vport, cport): the id is the quoted IPv6 flow label
ERRORS = [
    (1, 1, 4, 53, 46001),       # port unreachable, NAT conn
    (2, 2, 0, 53, 46002),       # packet too big, NAT conn
    (3, 3, 0, 53, 46001),       # time exceeded, NAT conn
    (4, 4, 0, 53, 46002),       # parameter problem: an error in v6
    (5, 1, 4, 5353, 47001),     # DR conn
    (6, 1, 4, 53, 46999),       # no such conn
    (7, 129, 0, 53, 46001),     # echo reply: informational
]

SENDER = r"""
import json, socket, struct, sys, time
errors = json.load(open(sys.argv[1]))
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
for ident, typ, code, isrc, isport, idst, idport, dst in errors:
    inner = (struct.pack("!IHBB", (6 << 28) | ident, 8 + 4, 17, 64)
             + socket.inet_pton(socket.AF_INET6, isrc)
             + socket.inet_pton(socket.AF_INET6, idst)
             + struct.pack("!HHHH", isport, idport, 12, 0))
    rest = struct.pack("!I", 1280 if typ == 2 else 0)
    # the kernel fills in the ICMPv6 checksum of a raw ICMPv6 socket
    s.sendto(struct.pack("!BBH", typ, code, 0) + rest + inner, (dst, 0))
    time.sleep(0.3)
"""

RECEIVER = r"""
import socket, sys, time
out = open(sys.argv[1], "w", buffering=1)
s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
s.settimeout(1.0)
end = time.time() + float(sys.argv[2])
print("ready", file=out)
while time.time() < end:
    try:
        data, addr = s.recvfrom(2048)
    except socket.timeout:
        continue
    if data[0] >= 128 or len(data) < 8 + 40:
        continue
    inner = data[8:]
    ident = int.from_bytes(inner[0:4], "big") & 0xFFFFF
    isrc = socket.inet_ntop(socket.AF_INET6, inner[8:24])
    idst = socket.inet_ntop(socket.AF_INET6, inner[24:40])
    ports = inner[40:44]
    print(ident, data[0], data[1], addr[0], isrc, idst,
          int.from_bytes(ports[0:2], "big"), int.from_bytes(ports[2:4], "big"),
          len(data), file=out)
"""

GUEST_SCRIPT = script_head(RULES, {
    "sender.py": SENDER, "receiver.py": RECEIVER,
    "spec.json": json.dumps([(i, t, c, VIP, vp, CLIENT, cp, VIP)
                             for i, t, c, vp, cp in ERRORS])}) + r"""
{
set -x
sysctl -qw net.ipv6.conf.all.forwarding=1
ip link add dummy0 type dummy && ip link set dummy0 up
ip addr add 2001:db8:1::1/128 dev dummy0 nodad
ip netns add cl && ip netns add rs
ip link add lb-cl type veth peer name cl0 && ip link set cl0 netns cl
ip link add lb-rs type veth peer name rs0 && ip link set rs0 netns rs
ip addr add 2001:db8:2::1/64 dev lb-cl nodad && ip link set lb-cl up
ip addr add 2001:db8:3::254/64 dev lb-rs nodad && ip link set lb-rs up
ip -n cl addr add 2001:db8:2::2/64 dev cl0 nodad && ip -n cl link set cl0 up
ip -n cl link set lo up && ip -n cl -6 route add default via 2001:db8:2::1
ip -n rs addr add 2001:db8:3::1/64 dev rs0 nodad
ip -n rs addr add 2001:db8:3::2/64 dev rs0 nodad
ip -n rs link set rs0 up && ip -n rs link set lo up
ip -n rs -6 route add default via 2001:db8:3::254
ip -n rs addr add 2001:db8:1::1/128 dev lo nodad
set +x
} > net_setup.log 2>&1
sleep 2
ip netns exec rs socat -u UDP6-RECV:53 /dev/null > rs_udp.log 2>&1 &
ip netns exec rs socat -u UDP6-RECV:5353 /dev/null > rs_udp2.log 2>&1 &
ip netns exec rs "$PY" receiver.py rs_icmp.txt 60 2> receiver.err &
for i in $(seq 100); do grep -q ready rs_icmp.txt 2>/dev/null && break; sleep 0.2; done
for p in """ + " ".join(map(str, NAT_PORTS)) + r"""; do
    printf 'ping\n' | ip netns exec cl socat -u - UDP6-SENDTO:[2001:db8:1::1]:53,sourceport=$p 2>> udp.err
    sleep 0.2
done
for p in """ + " ".join(map(str, DR_PORTS)) + r"""; do
    printf 'ping\n' | ip netns exec cl socat -u - UDP6-SENDTO:[2001:db8:1::1]:5353,sourceport=$p 2>> udp.err
    sleep 0.2
done
cat /proc/net/ip_vs_conn > conn_before.txt
ip netns exec cl "$PY" sender.py spec.json > sender.log 2>&1
echo $? > sender.rc
""" + SCRIPT_TAIL


def model():
    """The model fed the same packets: (net, {id: Verdict})."""
    net = primed_model(RULES, CLIENT, VIP,
                       [(p, 53) for p in NAT_PORTS] + [(p, 5353) for p in DR_PORTS], ip_header=40)
    verdicts = {}
    for ident, typ, code, vport, cport in ERRORS:
        err = IcmpError(typ, code, ("udp", VIP, vport, CLIENT, cport))
        verdicts[ident] = net.packet("icmpv6", CLIENT, 0, VIP, 0,
                                     length=40 + 8 + 40 + 8, icmp=err)
    return net, verdicts


def _arrivals(guest):
    out = {}
    for line in guest.lines("rs_icmp.txt")[1:]:
        ident, typ, code, src, isrc, idst, isp, idp, n = line.split()
        out[int(ident)] = (int(typ), isrc, int(isp))
    return out


def test_setup(guest):
    assert guest.text("rules.rc").strip() == "0"
    assert guest.text("sender.rc").strip() == "0", guest.text("sender.log")
    assert len(guest.text("conn_before.txt").splitlines()) == 4, \
        guest.text("net_setup.log")


def test_forwarded_errors_match_the_model(guest):
    _, verdicts = model()
    got = _arrivals(guest)
    for ident, typ, code, vport, cport in ERRORS:
        v = verdicts[ident]
        if v.action == "forward":
            assert ident in got, (ident, v)
            seen_type, isrc, isport = got[ident]
            assert seen_type == typ
            if vport == 53:     # NAT: the quoted source is the real server
                assert (isrc, isport) == (NAT_RS, 53), got[ident]
            else:
                assert (isrc, isport) == (VIP, vport), got[ident]
        else:
            assert ident not in got, (ident, v, got.get(ident))
    assert sorted(i for i, v in verdicts.items() if v.action == "forward") \
        == [1, 2, 3, 4, 5]


def test_counters_match_the_model(guest):
    net, _ = model()
    assert guest.text("stats.txt") == net.list_text(stats=True)


def test_conns_untouched(guest):
    assert_conns_untouched(guest)
