"""The scheduler differential plan, shared by the guest driver and the model.

Pure Python on purpose (the guest driver imports it without the compiled
core).  :func:`build` returns, deterministically, one scenario per scheduler
variant: ipvsadm rule steps (add a service with mixed weights including 0,
then edit weights, delete a dest, add one, re-add the deleted one from the
dest trash, change an upper threshold) and send steps (new UDP connections
from hundreds of client addresses/ports).  Every client (saddr, sport) is
used once in the whole plan, so each packet makes exactly one new
connection and ``/proc/net/ip_vs_conn`` tells which dest it got.
"""
import ipaddress
import random

# label, scheduler, -b flags, kind ("vip": one VIP:port; "fwm": a fwmark
# service over a /16 of destination addresses, marked by tc in the guest),
# protocol: "udp" connections stay inactive; "tcp" ones get SYN then ACK,
# which IPVS's state table (input ACK in SYN_RECV) makes ESTABLISHED, so
# they count as active -- what lc/wlc/sed/nq/ovf/lblc* weigh.
VARIANTS = [
    ("rr", "rr", None, "vip"), ("wrr", "wrr", None, "vip"),
    ("lc", "lc", None, "vip"), ("wlc", "wlc", None, "vip"),
    ("sed", "sed", None, "vip"), ("nq", "nq", None, "vip"),
    ("fo", "fo", None, "vip"), ("ovf", "ovf", None, "vip"),
    ("sh", "sh", None, "vip"), ("sh_fb_port", "sh", "sh-fallback,sh-port", "vip"),
    ("mh", "mh", None, "vip"), ("mh_fb_port", "mh", "flag-1,flag-2", "vip"),
    ("dh", "dh", None, "fwm"), ("lblc", "lblc", None, "fwm"),
    ("lblcr", "lblcr", None, "fwm"), ("wrr_fwm", "wrr", None, "fwm"),
    ("lc_tcp", "lc", None, "vip", "tcp"), ("wlc_tcp", "wlc", None, "vip", "tcp"),
    ("sed_tcp", "sed", None, "vip", "tcp"), ("nq_tcp", "nq", None, "vip", "tcp"),
    ("ovf_tcp", "ovf", None, "vip", "tcp"), ("rr_tcp", "rr", None, "vip", "tcp"),
    ("lblc_tcp", "lblc", None, "fwm", "tcp"),
    ("lblcr_tcp", "lblcr", None, "fwm", "tcp"),
    # IPv6: the hashes fold the four words of the address
    ("rr6", "rr", None, "vip", "udp", 10),
    ("sh6", "sh", "sh-fallback,sh-port", "vip", "udp", 10),
    ("mh6", "mh", "flag-1,flag-2", "vip", "udp", 10),
    ("mh6_plain", "mh", None, "vip", "udp", 10),
    ("dh6", "dh", None, "fwm", "udp", 10),
    ("lblc6_tcp", "lblc", None, "fwm", "tcp", 10),
]
# dests with an upper threshold (-x): they go OVERLOADed mid-way
THRESHOLD = {"rr": 25, "lc": 30, "wlc": 40, "sh_fb_port": 15,
             "mh_fb_port": 15, "wrr_fwm": 20, "lblc": 30, "wlc_tcp": 35,
             "rr_tcp": 20, "lblcr_tcp": 30}
VIP_NET = ipaddress.ip_network("10.0.0.0/24")
VIP6_BASE = int(ipaddress.IPv6Address("fd00::"))          # fd00::/64 VIPs
FWM6_BASE = int(ipaddress.IPv6Address("2001:db8:8000::"))  # + (i << 96): /40s
CLIENT6_BASE = int(ipaddress.IPv6Address("2001:db8:4000::"))  # /34 clients
DEST6_BASE = int(ipaddress.IPv6Address("fd00:1::"))       # fd00:1::/32 dests
FWM_BASE = 0x0A800000            # 10.128.0.0: scenario i uses 10.(128+i)/16
CLIENT_BASE = 0x0A400000         # 10.64.0.0/10 client addresses
DEST_BASE = 0xAC100000           # 172.16.0.0/12 real servers (dummy route)
SPORT_BASE = 1024


def ntoa(a, af=2):
    if af == 10:
        return str(ipaddress.IPv6Address(a))
    return str(ipaddress.IPv4Address(a))


def hostport(a, port, af=2):
    """ipvsadm's address:port syntax ([v6]:port for IPv6)."""
    return f"[{ntoa(a, af)}]:{port}" if af == 10 else f"{ntoa(a)}:{port}"


class Scenario:
    def __init__(self, i, label, sched, flags, kind, proto="udp", af=2):
        self.i, self.label, self.sched, self.flags, self.kind = \
            i, label, sched, flags, kind
        self.proto, self.af = proto, af
        self.vip = (VIP6_BASE + 1 + i) if af == 10 else int(VIP_NET[1]) + i
        self.vport = 8000 + i
        self.fwmark = 100 + i if kind == "fwm" else 0
        self.fwm_net = (FWM6_BASE + (i << 88)) if af == 10 \
            else FWM_BASE + (i << 16)
        self.fwm_prefix = 40 if af == 10 else 16
        self.steps = []          # ("rules", [[ipvsadm args...]]) / ("send", [...])

    @property
    def svc_args(self):
        if self.kind == "fwm":
            return ["-f", str(self.fwmark)] + (["-6"] if self.af == 10 else [])
        opt = "-t" if self.proto == "tcp" else "-u"
        return [opt, hostport(self.vip, self.vport, self.af)]

    def dest(self, j):
        if self.af == 10:
            return DEST6_BASE + (self.i << 80) + j, 80
        return DEST_BASE + (self.i << 8) + j, 80

    def dest_index(self, addr):
        return addr - self.dest(0)[0]


def build(seed=20261124, n1=150, n2=150, n3=100):
    rng = random.Random(seed)
    k = 0                          # global client counter: unique tuples
    out = []
    for i, variant in enumerate(VARIANTS):
        sc = Scenario(i, *variant)
        label, sched, flags, kind = variant[:4]
        srng = random.Random(f"{seed}-{label}")
        w0 = [srng.choice([1, 2, 3, 5]) for _ in range(5)]
        w0[2] = 0                                      # one quiesced dest
        add = ["-A", *sc.svc_args, "-s", sched]
        if flags:
            add += ["-b", flags]
        rules = [add]
        for j, w in enumerate(w0, 1):
            a, p = sc.dest(j)
            cmd = ["-a", *sc.svc_args, "-r", hostport(a, p, sc.af), "-m",
                   "-w", str(w)]
            if j == 1 and label in THRESHOLD:
                cmd += ["-x", str(THRESHOLD[label])]
            rules.append(cmd)
        sc.steps.append(("rules", rules))

        def packets(n):
            nonlocal k
            pk = []
            for _ in range(n):
                if sc.af == 10:
                    saddr = CLIENT6_BASE + rng.getrandbits(94)
                else:
                    saddr = CLIENT_BASE + rng.getrandbits(22)
                sport = SPORT_BASE + k
                k += 1
                if kind == "fwm":
                    daddr = sc.fwm_net + rng.getrandbits(128 - sc.fwm_prefix
                                                         if sc.af == 10 else 16)
                    dport = 9000
                else:
                    daddr, dport = sc.vip, sc.vport
                pk.append((saddr, sport, daddr, dport))
            return pk

        sc.steps.append(("send", packets(n1)))
        d = {j: sc.dest(j) for j in range(1, 7)}
        r = lambda j: hostport(d[j][0], d[j][1], sc.af)  # noqa: E731
        sc.steps.append(("rules", [
            ["-e", *sc.svc_args, "-r", r(2), "-m", "-w", str(srng.choice([2, 4, 7]))],
            ["-e", *sc.svc_args, "-r", r(5), "-m", "-w", "0"],
            ["-d", *sc.svc_args, "-r", r(4)],
            ["-a", *sc.svc_args, "-r", r(6), "-m", "-w", "2"],
        ]))
        sc.steps.append(("send", packets(n2)))
        sc.steps.append(("rules", [
            ["-a", *sc.svc_args, "-r", r(4), "-m", "-w", "1"],   # from the trash
            ["-e", *sc.svc_args, "-r", r(3), "-m", "-w", "3"],
            ["-e", *sc.svc_args, "-r", r(1), "-m", "-w", str(w0[0]), "-x", "0"],
        ]))
        sc.steps.append(("send", packets(n3)))
        out.append(sc)
    return out


def _addr(field):
    """A /proc address: hex IPv4, or ``%pI6`` (eight groups, [] optional)."""
    field = field.strip("[]")
    if ":" in field:
        return int(ipaddress.IPv6Address(field))
    return int(field, 16)


def _addr_port(field):
    a, _, p = field.rpartition(":")
    return _addr(a), int(p, 16)


def parse_conns(text):
    """/proc/net/ip_vs_conn -> {(caddr, cport): (vaddr, vport, daddr, dport)}."""
    conns = {}
    for line in text.splitlines()[1:]:
        f = line.split()
        if len(f) < 7:
            continue
        conns[(_addr(f[1]), int(f[2], 16))] = (
            _addr(f[3]), int(f[4], 16), _addr(f[5]), int(f[6], 16))
    return conns


def parse_proc_ip_vs(text):
    """/proc/net/ip_vs -> {service key: [(daddr, dport, weight, active,
    inactive), ...] in kernel list order}.  Keys: ("UDP", vaddr, vport) or
    ("FWM", mark)."""
    svcs, cur = {}, None
    for line in text.splitlines()[3:]:
        f = line.split()
        if not f:
            continue
        if f[0] == "->":
            a, p = _addr_port(f[1])
            cur.append((a, p, int(f[3]), int(f[4]), int(f[5])))
        elif f[0] == "FWM":
            cur = svcs[("FWM", int(f[1], 16))] = []
        else:
            a, p = _addr_port(f[1])
            cur = svcs[(f[0], a, p)] = []
    return svcs


def svc_key(sc):
    """The key of ``sc``'s service in :func:`parse_proc_ip_vs`."""
    if sc.kind == "fwm":
        return ("FWM", sc.fwmark)
    return ("TCP" if sc.proto == "tcp" else "UDP", sc.vip, sc.vport)



def choices_text(plan, conns):
    """The kernel's choices as the golden text: one line per scenario,
    ``label: digits``, digit j = dest j of the scenario, 0 = no dest."""
    lines = []
    for sc in plan:
        digits = []
        for kind, body in sc.steps:
            if kind != "send":
                continue
            for saddr, sport, _, _ in body:
                c = conns.get((saddr, sport))
                if c is None:
                    digits.append("0")
                else:
                    j = sc.dest_index(c[2])
                    assert 1 <= j <= 9 and c[3] == 80, c
                    digits.append(str(j))
        lines.append(f"{sc.label}: {''.join(digits)}")
    return "\n".join(lines) + "\n"


def parse_choices_text(plan, text):
    """Inverse of :func:`choices_text`: {label: {(saddr, sport): (daddr,
    dport) or None}}."""
    rows = dict(line.split(": ") for line in text.splitlines() if line)
    out = {}
    for sc in plan:
        digits = iter(rows[sc.label])
        got = out[sc.label] = {}
        for kind, body in sc.steps:
            if kind != "send":
                continue
            for saddr, sport, _, _ in body:
                j = int(next(digits))
                got[(saddr, sport)] = None if j == 0 else sc.dest(j)
    return out
