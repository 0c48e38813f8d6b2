"""``python -m ipvs_py.bpf [demo|build]``: a tour of the fast path.

``demo`` loads the program, installs one masq session through the same
hook the model calls, pushes a client->VIP packet and the server's reply
through the program (BPF_PROG_TEST_RUN) and prints them before and after,
next to what the model's Cython path decides for the same packet when the
model's packet path is available.  ``build`` only compiles the object.
"""
import sys

from . import ConnRecord, FastPath, SessionMirror
from . import packet as pkt
from .build import compile_program

CLIENT, VIP, RS = "10.1.0.2", "10.9.9.9", "10.2.0.2"


def _show(label, frame):
    p = pkt.parse(frame)
    ok = "ok" if p.ip_csum_ok and p.l4_csum_ok else "BAD"
    print(f"  {label:8s} {p.saddr}:{p.sport} -> {p.daddr}:{p.dport}  "
          f"checksums {ok}")


def _model_path():
    import ipvs_py
    if not hasattr(ipvs_py, "Netns"):
        print("model path: not built yet (issue 6); the fast path carries "
              "only what the model installs")
        return
    net = ipvs_py.Netns()
    net.restore(f"-A -t {VIP}:80 -s rr\n-a -t {VIP}:80 -r {RS}:8080 -m\n")
    v = net.packet("tcp", CLIENT, 40000, VIP, 80, tcp_flags="S")
    print(f"model path (Cython): {v.action} to {v.dest}")


def demo():
    conn = ConnRecord("tcp", CLIENT, 40000, VIP, 80, RS, 8080)
    with FastPath(max_sessions=1024) as fp:
        print(f"loaded tc program: {fp.insn_count} instructions, maps "
              f"{', '.join(fp.maps)}")
        _model_path()
        mirror = SessionMirror(fp)
        mirror.on_established(conn)
        print(f"installed {conn.caddr}:{conn.cport} -> {conn.vaddr}:"
              f"{conn.vport} => {conn.daddr}:{conn.dport} (masq)")
        for label, frame in (
                ("client", pkt.frame(pkt.TCP, CLIENT, 40000, VIP, 80, b"GET /")),
                ("reply", pkt.frame(pkt.TCP, RS, 8080, CLIENT, 40000, b"200"))):
            _ret, out, _ns = fp.run(frame)
            print(f"{label} packet through the fast path:")
            _show("in", frame)
            _show("out", out)
        fwd, rev = mirror.stats(conn)
        print(f"session counters: forward {fwd.packets} pkts / {fwd.bytes} B, "
              f"reply {rev.packets} pkts / {rev.bytes} B")
        print(f"program counters: {fp.stats()}")


def main(argv):
    cmd = argv[0] if argv else "demo"
    if cmd == "build":
        print(compile_program())
    elif cmd == "demo":
        demo()
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
