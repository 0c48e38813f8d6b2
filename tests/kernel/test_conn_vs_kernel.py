"""Conn table differential: TCP and UDP NAT flows, UDP and half-open TCP DR
flows, through Debian 6.1's IPVS
in the VM, and the model (kernel="6.1") fed the same packets; the
/proc/net/ip_vs_conn rows (expires aside), states and dest counters
(ipvsadm -Ln) must agree.  One boot.

TCP flows follow the socat pattern of test_guest_ipvs.py (greeting, then
the client's EOF closes: TIME_WAIT; or held open: ESTABLISHED).  UDP flows
are one datagram each to a real server that does not answer.
"""
from __future__ import annotations

import pytest

import ipvs_py

pytestmark = pytest.mark.kernel_vm
GUEST_TIMEOUT = 900

CLOSED = [41001, 41002, 41003, 41004, 41005]
HELD = [42001, 42002, 42003]
UDP = [43001, 43002, 43003, 43004, 43005, 43006]
DR_UDP = [44001, 44002, 44003, 44004]
DR_SYN = [45001]        # the RS's SYN-ACK is not routed back: half-open
RULES = ("-A -t 10.0.0.1:80 -s rr\n"
         "-a -t 10.0.0.1:80 -r 10.0.1.1:80 -m\n"
         "-a -t 10.0.0.1:80 -r 10.0.1.2:80 -m\n"
         "-A -u 10.0.0.1:53 -s rr\n"
         "-a -u 10.0.0.1:53 -r 10.0.1.1:53 -m\n"
         "-a -u 10.0.0.1:53 -r 10.0.1.2:53 -m\n"
         "-A -u 10.0.0.1:5353 -s rr\n"
         "-a -u 10.0.0.1:5353 -r 10.0.1.1:5353 -g\n"
         "-a -u 10.0.0.1:5353 -r 10.0.1.2:5353 -g\n"
         "-A -t 10.0.0.1:8080 -s rr\n"
         "-a -t 10.0.0.1:8080 -r 10.0.1.1:8080 -g\n"
         "-a -t 10.0.0.1:8080 -r 10.0.1.2:8080 -g\n")

GUEST_SCRIPT = r"""
set -u
cd "$OUT"
modprobe ip_vs; modprobe ip_vs_rr
cat > rules.txt <<'RULES'
""" + RULES + r"""RULES
ipvsadm -R < rules.txt; echo $? > rules.rc
. "$REPO/tests/kernel/guest/nat_lab.sh"     # cl -- LB -- rs
ip netns exec rs socat TCP-LISTEN:80,fork,reuseaddr SYSTEM:'echo hello-from-rs; sleep 100' > rs_tcp.log 2>&1 &
ip netns exec rs socat -u UDP-RECV:53 /dev/null > rs_udp.log 2>&1 &
for i in $(seq 50); do
    ip netns exec rs ss -ltn 2> /dev/null | grep -q ':80 ' && break; sleep 0.1
done
for p in """ + " ".join(map(str, CLOSED)) + r"""; do
    ip netns exec cl timeout 20 socat -T 10 - TCP:10.0.0.1:80,sourceport=$p \
        < /dev/null >> closed.txt 2>> closed.err
done
for p in """ + " ".join(map(str, HELD)) + r"""; do
    # held open far longer than the capture needs: a slow TCG guest must
    # not see them close (one such boot showed TIME_WAIT rows here)
    (sleep 90) | ip netns exec cl timeout 120 socat -T 100 - TCP:10.0.0.1:80,sourceport=$p \
        >> held.txt 2>> held.err &
    for i in $(seq 50); do
        grep -q " $(printf %04X $p) .* ESTABLISHED" /proc/net/ip_vs_conn && break; sleep 0.1
    done
done
for p in """ + " ".join(map(str, UDP)) + r"""; do
    echo ping | ip netns exec cl socat -u - UDP-SENDTO:10.0.0.1:53,sourceport=$p 2>> udp.err
    sleep 0.2
done
for p in """ + " ".join(map(str, DR_UDP)) + r"""; do
    echo ping | ip netns exec cl socat -u - UDP-SENDTO:10.0.0.1:5353,sourceport=$p 2>> dr_udp.err
    sleep 0.2
done
for p in """ + " ".join(map(str, DR_SYN)) + r"""; do
    ip netns exec cl timeout 4 socat -T 3 - TCP:10.0.0.1:8080,sourceport=$p \
        < /dev/null > /dev/null 2>> dr_syn.err &
    sleep 0.5
done
sleep 2
cat /proc/net/ip_vs_conn > conn.txt
ipvsadm -Ln > ln.txt
echo "== done" >&2
"""


def model():
    net = ipvs_py.Netns(kernel="6.1", seed=1)
    net.restore(RULES)
    c, v = "10.0.2.2", "10.0.0.1"
    for cport in CLOSED + HELD:
        r = net.packet("tcp", c, cport, v, 80, "S").dest[0]
        net.packet("tcp", r, 80, c, cport, "SA", direction="out")
        net.packet("tcp", c, cport, v, 80, "A")
        net.packet("tcp", r, 80, c, cport, "PA", direction="out")
        net.packet("tcp", c, cport, v, 80, "A")
        if cport in CLOSED:
            net.packet("tcp", c, cport, v, 80, "FA")
            net.packet("tcp", r, 80, c, cport, "FA", direction="out")
            net.packet("tcp", c, cport, v, 80, "A")
    for cport in UDP:
        net.packet("udp", c, cport, v, 53, 0)
    for cport in DR_UDP:
        net.packet("udp", c, cport, v, 5353, 0)
    for cport in DR_SYN:
        net.packet("tcp", c, cport, v, 8080, "S")
    return net


def _rows(text):
    return sorted(tuple(ln.split()[:8]) for ln in text.splitlines()[1:])


def test_rules_loaded(guest):
    assert guest.text("rules.rc").strip() == "0"
    assert guest.text("closed.txt").count("hello-from-rs") == len(CLOSED), \
        guest.text("closed.err")


def test_conn_rows_match_model(guest):
    assert _rows(guest.text("conn.txt")) == _rows(model().proc_ip_vs_conn())


def test_dest_counters_match_model(guest):
    assert guest.text("ln.txt") == model().list_text()
