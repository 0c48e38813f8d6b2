"""Guest side of tests/kernel/test_sched_vs_kernel.py (runs as root).

usage: sched_driver.py LB_PID OUTDIR

Executes tests/kernel/sched_plan.py against real IPVS in the network
namespace "lb" (LB_PID is a process living in it, so its /proc/PID/net
files show that namespace): rule steps run ``ip netns exec lb ipvsadm``,
send steps write crafted IPv4/UDP packets with the plan's client addresses
through a raw socket in the root namespace, routed over a veth into "lb".
TCP connections get a SYN and an ACK (no server needed: an input
ACK in SYN_RECV makes IPVS's connection ESTABLISHED).  The sender is pinned
to CPU 0 so packets are processed in order; after each
send step the driver waits for the connection count to settle.
"""
import json
import os
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import sched_plan  # noqa: E402


def main():
    lb_pid, out = int(sys.argv[1]), sys.argv[2]
    os.sched_setaffinity(0, {0})
    conn_file = f"/proc/{lb_pid}/net/ip_vs_conn"
    ipvs_file = f"/proc/{lb_pid}/net/ip_vs"
    sock = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    # IPPROTO_RAW on AF_INET6 implies IPV6_HDRINCL: we write the header
    sock6 = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_RAW)
    log = []

    def count():
        with open(conn_file) as f:
            return sum(1 for _ in f) - 1

    def settle():
        prev, same = -1, 0
        t0 = time.monotonic()
        while same < 3 and time.monotonic() - t0 < 20:
            n = count()
            same = same + 1 if n == prev else 0
            prev = n
            time.sleep(0.03)
        return prev

    def csum(data):
        if len(data) % 2:
            data += b"\0"
        s = sum(struct.unpack(f"!{len(data) // 2}H", data))
        while s >> 16:
            s = (s & 0xFFFF) + (s >> 16)
        return ~s & 0xFFFF

    def send(saddr, sport, daddr, dport, proto="udp", af=2):
        alen = 16 if af == 10 else 4
        src, dst = saddr.to_bytes(alen, "big"), daddr.to_bytes(alen, "big")
        pnum = 6 if proto == "tcp" else 17
        if proto == "udp":
            segs = [struct.pack("!HHHH", sport, dport, 8, 0)]
        else:                      # SYN, then ACK: IPVS goes SYN_RECV -> ESTABLISHED
            segs = [struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4,
                                flags, 65535, 0, 0)
                    for flags, seq, ack in ((0x02, 1000, 0), (0x10, 1001, 5000))]
        for seg in segs:
            if af == 10 or proto == "tcp":          # checksum (UDP/IPv4 may skip)
                if af == 10:
                    pseudo = src + dst + struct.pack("!IxxxB", len(seg), pnum)
                else:
                    pseudo = src + dst + struct.pack("!BBH", 0, pnum, len(seg))
                c = csum(pseudo + seg) or 0xFFFF
                at = 16 if proto == "tcp" else 6
                seg = seg[:at] + struct.pack("!H", c) + seg[at + 2:]
            if af == 10:
                hdr = struct.pack("!IHBB16s16s", 6 << 28, len(seg), pnum, 64,
                                  src, dst)
                sock6.sendto(hdr + seg, (sched_plan.ntoa(daddr, 10), 0))
            else:
                hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(seg), 0, 0,
                                  64, pnum, 0, src, dst)
                sock.sendto(hdr + seg, (sched_plan.ntoa(daddr), 0))

    plan = sched_plan.build()
    t_start = time.monotonic()
    for sc in plan:
        for si, (kind, body) in enumerate(sc.steps):
            if kind == "rules":
                # one ipvsadm -R per step: process starts are what costs here
                text = "".join(" ".join(a) + "\n" for a in body)
                r = subprocess.run(["ip", "netns", "exec", "lb", "ipvsadm", "-R"],
                                   input=text, capture_output=True, text=True)
                log.append({"scenario": sc.label, "step": si, "rules": text,
                            "rc": r.returncode, "err": r.stderr.strip()})
                with open(ipvs_file) as f, \
                        open(os.path.join(out, f"ipvs_{sc.label}_{si}.txt"), "w") as g:
                    g.write(f.read())
            else:
                for p in body:
                    send(*p, proto=sc.proto, af=sc.af)
                n = settle()
                log.append({"scenario": sc.label, "step": si, "sent": len(body),
                            "conns": n})
    for name, src in (("conn.txt", conn_file), ("ip_vs.txt", ipvs_file)):
        with open(src) as f, open(os.path.join(out, name), "w") as g:
            g.write(f.read())
    with open(os.path.join(out, "driver_log.json"), "w") as f:
        json.dump({"log": log, "seconds": time.monotonic() - t_start}, f, indent=1)
    bad = [e for e in log if e.get("rc")]
    print(f"driver: {len(plan)} scenarios, {len(bad)} failed ipvsadm calls, "
          f"{time.monotonic() - t_start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
