"""A stand-in for IPVSConnection backed by an ``ipvs_py.Netns``.

It answers with the dicts IPVSConnection returns (netlink attribute
suffixes, IPv4 netmask as a dotted string, stats nests) and applies
writes through the model's own checks, so the operator tools run
end to end without a kernel.  ``log`` records the writes.
"""
import errno
import ipaddress

from ipvs_py.errors import IPVSError
from ipvs_py.netlink import KernelRejected
from ipvs_py.netlink.config import dest_from_kernel, service_from_kernel
from ipvs_py.service import AF_INET6
from ipvs_py.text import IP_VS_VERSION



class ModelKernel:
    def __init__(self, net):
        self.net = net
        self.log = []
        self.before_read = None       # callable run before each dests()

    def close(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    # reading
    def _svc_dict(self, svc, stats):
        d = {"af": svc.af, "sched_name": svc.sched_name,
             "flags": svc.flags | 0x2, "flags_mask": 0xFFFFFFFF,
             "timeout": svc.timeout,
             "netmask": (svc.netmask if svc.af == AF_INET6 else
                         str(ipaddress.IPv4Address(svc.netmask)))}
        if svc.fwmark:
            d["fwmark"] = svc.fwmark
        else:
            d.update(protocol=svc.protocol, addr=str(svc.addr), port=svc.port)
        if svc.pe_name:
            d["pe_name"] = svc.pe_name
        if stats:
            d["stats64"] = svc.stats.shown()
        return d

    def services(self, stats=True):
        return [self._svc_dict(s, stats) for s in self.net.services(sort=False)]

    def _find(self, s):
        sc = service_from_kernel(s)
        svc = self.net._find_key(sc.key)
        if svc is None:
            raise KernelRejected("service", errno.ESRCH)
        return svc

    def dests(self, s, stats=True):
        if self.before_read:
            self.before_read()
        out = []
        for d in self._find(s).dests:
            x = {"addr": str(d.addr), "port": d.port,
                 "fwd_method": d.fwd_method, "weight": d.weight,
                 "u_thresh": d.u_thresh, "l_thresh": d.l_thresh,
                 "activeconns": d.activeconns, "inactconns": d.inactconns,
                 "persistconns": d.persistconns, "addr_family": d.af,
                 "tun_type": d.tun_type, "tun_port": d.tun_port,
                 "tun_flags": d.tun_flags}
            if stats:
                x["stats64"] = d.stats.shown()
            out.append(x)
        return out

    def timeouts(self):
        t = self.net.timeouts
        return {"tcp": t["tcp"], "tcpfin": t["tcp_fin"], "udp": t["udp"]}

    def info(self):
        return {"version": IP_VS_VERSION, "version_code": 0x010201,
                "conn_tab_size": self.net.conn_tab_size}

    def daemons(self):
        return []

    # writing
    def _dest_kw(self, d, svc_af):
        dc = dest_from_kernel(d, svc_af)
        return dc, dict(fwd_method=dc.fwd_method, weight=dc.weight,
                        u_thresh=dc.u_thresh, l_thresh=dc.l_thresh)

    def set_dest(self, s, d):
        svc = self._find(s)
        dc, kw = self._dest_kw(d, svc.af)
        self.log.append(("set_dest", dc.addr, dc.port, dc.weight))
        try:
            self.net.edit_dest(svc, dc.addr, dc.port, **kw)
        except IPVSError as exc:
            raise KernelRejected("editing destination", exc.errno) from None

    def del_dest(self, s, d):
        svc = self._find(s)
        dc, _ = self._dest_kw(d, svc.af)
        self.log.append(("del_dest", dc.addr, dc.port))
        try:
            self.net.del_dest(svc, dc.addr, dc.port)
        except IPVSError as exc:
            raise KernelRejected("deleting destination", exc.errno) from None

    def set_timeouts(self, tcp=0, tcpfin=0, udp=0):
        self.log.append(("set_timeouts", tcp, tcpfin, udp))
        self.net.set_timeouts(tcp=tcp, tcpfin=tcpfin, udp=udp)

    def new_service(self, s):
        raise NotImplementedError("not needed by these tests")
