"""The connection record the session mirror is fed with.

The model's connection objects (ipvs_py.conn, issue 6) will be adapted to
:class:`ConnRecord` at the point where the model calls the mirror's hooks;
the mirror never sees model objects, so the two can change independently.
"""
import ipaddress
import socket
from dataclasses import dataclass

PROTOS = {"tcp": socket.IPPROTO_TCP, "udp": socket.IPPROTO_UDP}
# Methods as ipvsadm names them; only masq rewrites addresses at the LB.
FWD_METHODS = ("masq", "local", "tunnel", "route", "bypass")


@dataclass(frozen=True, slots=True)
class ConnRecord:
    """One IPVS connection, as the fast path needs to know it.

    ``caddr:cport`` is the client, ``vaddr:vport`` the virtual service,
    ``daddr:dport`` the chosen real server.  Addresses are strings or
    ``ipaddress`` objects of the same family; ``proto`` is "tcp"/"udp"
    (or the IPPROTO number); ``fwd`` one of :data:`FWD_METHODS`; ``state``
    the IPVS state name ("ESTABLISHED", "SYN_RECV", ..., "UDP").
    ``af`` defaults to the family of ``caddr``.
    """
    proto: object
    caddr: object
    cport: int
    vaddr: object
    vport: int
    daddr: object
    dport: int
    fwd: str = "masq"
    state: str = "ESTABLISHED"
    af: int = 0

    def __post_init__(self):
        c, v, d = (ipaddress.ip_address(a) for a in
                   (self.caddr, self.vaddr, self.daddr))
        if not c.version == v.version == d.version:
            raise ValueError(f"mixed address families in {self}")
        af = socket.AF_INET if c.version == 4 else socket.AF_INET6
        if self.af and self.af != af:
            raise ValueError(f"af={self.af} but addresses are IPv{c.version}")
        object.__setattr__(self, "af", af)
        for name in ("caddr", "vaddr", "daddr"):
            object.__setattr__(self, name, ipaddress.ip_address(getattr(self, name)))
        if self.fwd not in FWD_METHODS:
            raise ValueError(f"unknown forwarding method {self.fwd!r}")
        for port in (self.cport, self.vport, self.dport):
            if not 0 <= port <= 0xffff:
                raise ValueError(f"port {port} out of range")

    @property
    def protonum(self):
        """IPPROTO number of ``proto``."""
        if isinstance(self.proto, int):
            return self.proto
        return PROTOS[self.proto]
