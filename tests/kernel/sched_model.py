"""The model side of the scheduler differential (tests/kernel/sched_plan.py).

:func:`replay` runs a scenario of the plan on the schedulers with small
stand-in Service/Dest objects; :func:`replay_netns` runs it through the
control plane's ``ipvs_py.Netns`` (when it exists) with
``ipvs_py.schedulers.sched_hook`` as its scheduler hook.  Both return the
choice for every connection and the dest list after every rule step, to be
compared with the kernel (live in the VM, or the golden copies in
tests/kernel/golden/sched_*.txt).
"""
import ipaddress

from ipvs_py import schedulers as S
from ipvs_py.schedulers.base import PacketInfo, bind_conn

from . import sched_plan


class ModelDest:
    __slots__ = ("addr", "port", "weight", "last_weight", "flags",
                 "available", "activeconns", "inactconns", "persistconns",
                 "u_thresh", "l_thresh")

    def __init__(self, addr, port):
        self.addr, self.port = addr, port
        self.weight = self.last_weight = self.flags = 0
        self.available = False
        self.activeconns = self.inactconns = self.persistconns = 0
        self.u_thresh = self.l_thresh = 0


class ModelService:
    def __init__(self, sc):
        self.af, self.protocol = sc.af, 6 if sc.proto == "tcp" else 17
        self.addr, self.port, self.fwmark = sc.vip, sc.vport, sc.fwmark
        self.sched_name = sc.sched
        self.flags = S.parse_sched_flags(sc.sched, sc.flags) if sc.flags else 0
        self.dests = []
        self.sched_data = None
        self.now = 0.0


def _arg(args, opt, default=None):
    return args[args.index(opt) + 1] if opt in args else default


def _dest_arg(args):
    """``-r`` of an ipvsadm command: (address text, port)."""
    a, _, p = _arg(args, "-r").rpartition(":")
    return a.strip("[]"), int(p)


def replay(sc):
    """Run the plan on the model: choices and per-step dest snapshots."""
    svc = ModelService(sc)
    sched = S.lookup_scheduler(sc.sched)
    S.bind_scheduler(svc, sched)
    known = {}                         # (addr, port) -> dest, trash included
    choices, snaps = {}, {}
    for si, (kind, body) in enumerate(sc.steps):
        if kind == "rules":
            for args in body:
                if args[0] == "-A":
                    continue
                a, p = _dest_arg(args)
                key = (int(ipaddress.ip_address(a)), p)
                w, x = int(_arg(args, "-w", 1)), int(_arg(args, "-x", 0))
                if args[0] == "-a":
                    d = known.setdefault(key, ModelDest(*key))
                    if x == 0 or x > d.u_thresh:     # __ip_vs_update_dest
                        d.flags &= ~S.IP_VS_DEST_F_OVERLOAD
                    d.u_thresh = x
                    d.weight = w
                    S.link_dest(svc, d, sched)
                elif args[0] == "-e":
                    S.update_dest(svc, known[key], sched, weight=w, u_thresh=x)
                elif args[0] == "-d":
                    S.unlink_dest(svc, known[key], sched)
            snaps[si] = [(d.addr, d.port, d.weight, d.activeconns, d.inactconns)
                         for d in svc.dests]
        else:
            for saddr, sport, daddr, dport in body:
                d = sched.schedule(svc, PacketInfo(saddr=saddr, sport=sport,
                                                   daddr=daddr, dport=dport,
                                                   protocol=svc.protocol,
                                                   now=0.0))
                if d is not None:            # UDP stays inactive; the ACK
                    bind_conn(d, active=sc.proto == "tcp")   # makes TCP active
                choices[(saddr, sport)] = None if d is None else (d.addr, d.port)
    return svc, choices, snaps


svc_key = sched_plan.svc_key



def replay_netns(sc, netns_factory):
    """The same plan through the control plane: ``netns_factory()`` returns
    a fresh ``ipvs_py.Netns`` whose scheduler hook runs our schedulers."""
    net = netns_factory()
    proto = "tcp" if sc.proto == "tcp" else "udp"
    flags = S.parse_sched_flags(sc.sched, sc.flags) if sc.flags else 0
    if sc.kind == "fwm":
        svc = net.add_service(fwmark=sc.fwmark, af=sc.af, sched_name=sc.sched,
                              sched_flags=flags)
    else:
        svc = net.add_service(proto, sched_plan.ntoa(sc.vip, sc.af), sc.vport,
                              sched_name=sc.sched, sched_flags=flags)
    sched = S.lookup_scheduler(sc.sched)
    choices, snaps = {}, {}
    for si, (kind, body) in enumerate(sc.steps):
        if kind == "rules":
            for args in body:
                if args[0] == "-A":
                    continue
                a, p = _dest_arg(args)
                kw = dict(weight=int(_arg(args, "-w", 1)),
                          u_thresh=int(_arg(args, "-x", 0)))
                if args[0] == "-a":
                    net.add_dest(svc, a, p, **kw)
                elif args[0] == "-e":
                    net.edit_dest(svc, a, p, **kw)
                else:
                    net.del_dest(svc, a, p)
            snaps[si] = [(int(d.addr), d.port, d.weight, d.activeconns,
                          d.inactconns) for d in svc.dests]
        else:
            for saddr, sport, daddr, dport in body:
                d = sched.schedule(svc, PacketInfo(
                    saddr=saddr, sport=sport, daddr=daddr, dport=dport,
                    protocol=6 if proto == "tcp" else 17, now=net.now))
                if d is not None:
                    bind_conn(d, active=sc.proto == "tcp")
                choices[(saddr, sport)] = None if d is None else \
                    (int(d.addr), d.port)
    return svc, choices, snaps
