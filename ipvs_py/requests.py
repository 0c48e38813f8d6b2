"""What a configuration command asks for (ip_vs_service_user_kern,
ip_vs_dest_user_kern): the parsed form of one ipvsadm line or API call."""
from .service import svc_key

__all__ = ["SvcReq", "DestReq"]


class SvcReq:
    __slots__ = ("af", "protocol", "addr", "port", "fwmark", "sched_name",
                 "flags", "timeout", "netmask", "pe_name", "key")

    def __init__(self, af, protocol, addr, port, fwmark, sched_name="wlc",
                 flags=0, timeout=0, netmask=0xFFFFFFFF, pe_name=""):
        self.af, self.protocol, self.addr = af, protocol, addr
        self.port, self.fwmark = port, fwmark
        self.sched_name, self.flags, self.timeout = sched_name, flags, timeout
        self.netmask, self.pe_name = netmask, pe_name
        self.key = svc_key(af, protocol, addr.packed, port, fwmark)

    def __repr__(self):
        return "SvcReq(%s)" % ", ".join(f"{k}={getattr(self, k)!r}"
                                        for k in self.__slots__[:-1])


class DestReq:
    __slots__ = ("af", "addr", "port", "fwd_method", "weight", "u_thresh",
                 "l_thresh", "tun_type", "tun_port", "tun_flags", "key")

    def __init__(self, af, addr, port, fwd_method=3, weight=1, u_thresh=0,
                 l_thresh=0, tun_type=0, tun_port=0, tun_flags=0):
        self.af, self.addr, self.port = af, addr, port
        self.fwd_method, self.weight = fwd_method, weight
        self.u_thresh, self.l_thresh = u_thresh, l_thresh
        self.tun_type, self.tun_port, self.tun_flags = (tun_type, tun_port,
                                                        tun_flags)
        self.key = (af, addr.packed, port)

    def __repr__(self):
        return "DestReq(%s)" % ", ".join(f"{k}={getattr(self, k)!r}"
                                         for k in self.__slots__[:-1])
