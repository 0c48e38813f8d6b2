"""A real server (struct ip_vs_dest).

Field names follow IPVS_DEST_ATTR_*: ``addr, port, fwd_method, weight,
u_thresh, l_thresh, tun_type, tun_port, tun_flags, activeconns,
inactconns, persistconns, af``.  The packet path (issue 6) updates the
connection counters and ``refcnt`` (connections that still point here,
which keeps a deleted destination in the dest_trash).
"""
import weakref

from .stats import Stats

__all__ = ["Dest", "FWD_MASQ", "FWD_LOCALNODE", "FWD_TUNNEL", "FWD_DROUTE",
           "TUN_IPIP", "TUN_GUE", "TUN_GRE", "FWD_NAMES", "DEST_F_AVAILABLE",
           "DEST_F_OVERLOAD"]

# IP_VS_CONN_F_* forwarding methods
FWD_MASQ, FWD_LOCALNODE, FWD_TUNNEL, FWD_DROUTE = 0, 1, 2, 3
FWD_NAMES = {FWD_MASQ: "Masq", FWD_LOCALNODE: "Local", FWD_TUNNEL: "Tunnel",
             FWD_DROUTE: "Route"}
# IP_VS_CONN_F_TUNNEL_TYPE_*
TUN_IPIP, TUN_GUE, TUN_GRE = 0, 1, 2
TUN_NAMES = ("ipip", "gue", "gre")
# IP_VS_TUNNEL_ENCAP_FLAG_*
TUN_F_NOCSUM, TUN_F_CSUM, TUN_F_REMCSUM = 0, 1, 2

DEST_F_AVAILABLE = 0x0001     # IP_VS_DEST_F_AVAILABLE (dest->cflags)
DEST_F_OVERLOAD = 0x0002      # IP_VS_DEST_F_OVERLOAD (dest->flags)


class Dest:
    """One destination of a service (or of the dest_trash)."""

    __slots__ = ("af", "addr", "addr_bytes", "port", "fwd_method", "weight",
                 "last_weight", "u_thresh", "l_thresh", "l_thresh_val",
                 "tun_type", "tun_port", "tun_flags", "activeconns",
                 "inactconns", "persistconns", "flags", "available",
                 "_svc_ref", "protocol", "vaddr_bytes", "vport", "vfwmark",
                 "stats", "idle_start", "refcnt", "__weakref__")

    def __init__(self, svc, af, addr, port):
        self.af = af
        self.addr = addr
        self.addr_bytes = addr.packed
        self.port = port
        self.fwd_method = FWD_MASQ
        self.weight = 0
        self.last_weight = 0
        self.u_thresh = 0
        self.l_thresh = 0
        self.l_thresh_val = 0
        self.tun_type = TUN_IPIP
        self.tun_port = 0
        self.tun_flags = 0
        self.activeconns = 0
        self.inactconns = 0
        self.persistconns = 0
        self.flags = 0
        self.available = False
        self.svc = svc
        # the service identity, kept for dest_trash matching
        self.protocol = svc.protocol
        self.vaddr_bytes = svc.addr_bytes
        self.vport = svc.port
        self.vfwmark = svc.fwmark
        self.stats = Stats()
        self.idle_start = 0        # jiffies, dest_trash expiry
        self.refcnt = 0            # connections bound to this dest

    @property
    def svc(self):
        """The service this dest belongs (or last belonged) to, None once
        freed.  Held weakly: the service holds its dests, and a dest that
        kept its service alive made a reference cycle per dest (see
        ipvs_py._weak).  A dest in the dest_trash whose service was
        deleted reads None here, where the kernel's dest->svc still pins
        the old service; the only reader of that pointer,
        __ip_vs_update_dest() reviving the dest into a new service, sees
        "not this service" either way."""
        ref = self._svc_ref
        return None if ref is None else ref()

    @svc.setter
    def svc(self, svc):
        self._svc_ref = None if svc is None else weakref.ref(svc)

    @property
    def totalconns(self):
        return self.activeconns + self.inactconns

    @property
    def overloaded(self):
        return bool(self.flags & DEST_F_OVERLOAD)

    def update_overload(self, mode=0):
        """__ip_vs_dest_update_overload(): set the flag when conns reach
        u_thresh, clear it below l_thresh (or 75% of u_thresh)."""
        u = self.u_thresh
        if u:
            l = self.l_thresh_val
            conns = self.totalconns
            if conns >= (l if mode > 0 else u):
                self.flags |= DEST_F_OVERLOAD
                return
            if conns >= (u if mode < 0 else l):
                return
        self.flags &= ~DEST_F_OVERLOAD

    def as_dict(self):
        """The destination as IPVS_DEST_ATTR_* suffixes -> values."""
        return {"addr": str(self.addr), "port": self.port,
                "fwd_method": self.fwd_method, "weight": self.weight,
                "tun_type": self.tun_type, "tun_port": self.tun_port,
                "tun_flags": self.tun_flags, "u_thresh": self.u_thresh,
                "l_thresh": self.l_thresh, "activeconns": self.activeconns,
                "inactconns": self.inactconns,
                "persistconns": self.persistconns, "addr_family": self.af,
                "stats": self.stats.shown()}

    def __repr__(self):
        a = f"[{self.addr}]" if self.af == 10 else str(self.addr)
        return (f"<Dest {a}:{self.port} {FWD_NAMES[self.fwd_method]} "
                f"w={self.weight}>")
