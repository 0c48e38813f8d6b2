"""Shared parts of the ICMP kernel-VM tests (test_vm_icmp*.py): the guest
script's head (rules, helper files), a raw-socket receiver that logs the
ICMP errors a netns gets, and the check that errors left the conns alone.

Not a test module: the tests import it.
"""
from __future__ import annotations

RECEIVER4 = r"""
import socket, sys, time
out = open(sys.argv[1], "w", buffering=1)
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(1.0)
end = time.time() + float(sys.argv[2])
print("ready", file=out)
while time.time() < end:
    try:
        data = s.recv(2048)
    except socket.timeout:
        continue
    ihl = (data[0] & 15) * 4
    typ, code = data[ihl], data[ihl + 1]
    if typ not in (3, 4, 11, 12):
        continue
    q = data[ihl + 8:]                 # the quoted IP header and ports
    ports = q[20:24]
    print(int.from_bytes(q[4:6], "big"), typ, code,
          socket.inet_ntoa(data[12:16]), socket.inet_ntoa(data[16:20]),
          socket.inet_ntoa(q[12:16]), socket.inet_ntoa(q[16:20]),
          int.from_bytes(ports[0:2], "big") if len(ports) == 4 else -1,
          int.from_bytes(ports[2:4], "big") if len(ports) == 4 else -1,
          len(data), file=out)
"""


#: The end of a guest script: let the errors arrive, then the counters
#: and conns after them.
SCRIPT_TAIL = """sleep 3
ipvsadm -Ln --stats > stats.txt
cat /proc/net/ip_vs_conn > conn_after.txt
echo "== done" >&2
"""


def script_head(rules, files, modules=("ip_vs", "ip_vs_rr")):
    """The start of a guest script: load ``modules``, restore ``rules``
    (status in rules.rc), write ``files`` ({name: text}) into $OUT."""
    parts = ["set -u", 'cd "$OUT"', "; ".join(f"modprobe {m}"
                                              for m in modules),
             f"cat > rules.txt <<'RULES'\n{rules}RULES",
             "ipvsadm -R < rules.txt; echo $? > rules.rc"]
    for name, text in files.items():
        parts.append(f"cat > {name} <<'FILEEOF'\n{text.strip()}\nFILEEOF")
    return "\n".join(parts) + "\n"


def received4(guest, name):
    """{quoted IP id: (type, code, src, dst, quoted src, quoted dst,
    quoted sport, quoted dport)} from a RECEIVER4 log."""
    out = {}
    for line in guest.lines(name)[1:]:
        ident, *rest, _n = line.split()
        t, c, src, dst, qsrc, qdst, qsp, qdp = rest
        out[int(ident)] = (int(t), int(c), src, dst, qsrc, qdst, int(qsp),
                           int(qdp))
    return out


def conn_rows(guest, name):
    """/proc/net/ip_vs_conn rows without the expiry, sorted."""
    return sorted(ln.split()[:8] for ln in guest.text(name).splitlines()[1:])


def assert_conns_untouched(guest):
    """The errors left every conn as it was (conn_before/conn_after)."""
    assert conn_rows(guest, "conn_before.txt") == \
        conn_rows(guest, "conn_after.txt")


def primed_model(rules, client, vip, flows, ip_header=20):
    """The model the ICMP VM tests compare with: a 6.1 Netns fed ``rules``
    and the 5-byte UDP pings that open the conns the errors then refer to.
    ``flows``: (client port, VIP port) pairs, in the order the guest sends
    them; ``ip_header``: 20 (IPv4) or 40 (IPv6) bytes."""
    import ipvs_py
    net = ipvs_py.Netns(kernel="6.1", seed=1)
    net.restore(rules)
    for cport, vport in flows:
        net.packet("udp", client, cport, vip, vport, 0,
                   length=ip_header + 8 + 5)
    return net

