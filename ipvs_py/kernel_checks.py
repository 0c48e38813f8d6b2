"""The kernel's EINVAL/EEXIST/ENOENT/ESRCH/ERANGE decisions for one command.

``check(op, sreq, dreq, view)`` mirrors ip_vs_genl_set_cmd() and the
functions it calls (ip_vs_add_service, ip_vs_edit_service, ip_vs_add_dest,
ip_vs_edit_dest, ip_vs_del_dest, ip_vs_new_dest) without changing anything,
so ``restore()`` can validate a whole file first (against a ``view`` that
overlays the file's earlier lines on the real state) and apply it only if
every line passes.  Messages are the ones ipvsadm prints (libipvs
``ipvs_strerror``).
"""
import errno
import ipaddress

from .errors import IPVSError
from .service import AF_INET, AF_INET6, SCHEDULERS, PERSISTENCE_ENGINES
from .dest import FWD_TUNNEL, TUN_GUE

__all__ = ["check", "unicast_ok"]

INT_MAX = (1 << 31) - 1

_EINVAL_MSG = ("Invalid operation.  Possibly wrong module version, "
               "address not unicast, ...")

_MSGS = {
    ("add_service", errno.EEXIST): "Service already exists",
    ("add_service", errno.ENOENT): "Scheduler or persistence engine not found",
    ("edit_service", errno.ESRCH): "No such service",
    ("edit_service", errno.ENOENT):
        "Scheduler or persistence engine not found",
    ("del_service", errno.ESRCH): "No such service",
    ("zero", errno.ESRCH): "No such service",
    ("add_dest", errno.ESRCH): "Service not defined",
    ("add_dest", errno.EEXIST): "Destination already exists",
    ("edit_dest", errno.ESRCH): "Service not defined",
    ("edit_dest", errno.ENOENT): "No such destination",
    ("del_dest", errno.ESRCH): "Service not defined",
    ("del_dest", errno.ENOENT): "No such destination",
}
_GENERIC = {
    errno.EINVAL: _EINVAL_MSG,
    errno.EAFNOSUPPORT: "Operation not supported with specified address "
                        "family",
    errno.ERANGE: "Numerical result out of range",
    errno.ENOENT: "No such file or directory",
    errno.ESRCH: "No such process",
    errno.EEXIST: "File exists",
}


def fail(op, err, why):
    """Raise the IPVSError ipvsadm would report, with the model's reason."""
    msg = _MSGS.get((op, err)) or _GENERIC.get(err, errno.errorcode[err])
    raise IPVSError(f"{msg} ({errno.errorcode[err]}: {why})", err)


_V4_ZERONET = ipaddress.ip_network("0.0.0.0/8")
_V4_MCAST = ipaddress.ip_network("224.0.0.0/4")
_V4_LBCAST = ipaddress.IPv4Address("255.255.255.255")
_V6_MCAST = ipaddress.ip_network("ff00::/8")
_V6_LL = ipaddress.ip_network("fe80::/10")
_V6_MAPPED = ipaddress.ip_network("::ffff:0:0/96")


def unicast_ok(af, addr):
    """ip_vs_new_dest()'s address check: inet_addr_type() must be LOCAL or
    UNICAST (IPv4); ipv6_addr_type() must be unicast and not link-local.
    The model has no interfaces or routes: zeronet, limited broadcast and
    multicast are refused for IPv4; ::, multicast, v4-mapped and link-local
    for IPv6 (a local link-local address would be accepted by the kernel)."""
    if af == AF_INET:
        return not (addr in _V4_ZERONET or addr in _V4_MCAST
                    or addr == _V4_LBCAST)
    return not (int(addr) == 0 or addr in _V6_MCAST or addr in _V6_LL
                or addr in _V6_MAPPED)


def check(op, sreq, dreq, view):
    """Raise IPVSError if the kernel would refuse ``op``; return None.

    ``view`` answers ``has_service(key)``, ``has_dest(key, dkey)``,
    ``sync_state`` and ``schedulers`` (the scheduler modules available).
    """
    if op in ("flush", "set_timeout") or (op == "zero" and sreq is None):
        return
    if sreq.af not in (AF_INET, AF_INET6):
        fail(op, errno.EAFNOSUPPORT, "address family")
    key = sreq.key
    exists = view.has_service(key)
    if op != "add_service" and not exists:
        fail(op, errno.ESRCH, "no such service")
    if op in ("add_dest", "edit_dest", "del_dest"):
        if dreq.af not in (AF_INET, AF_INET6):
            fail(op, errno.EAFNOSUPPORT, "address family")
        if dreq.af != sreq.af and op != "del_dest":
            if view.sync_state:
                fail(op, errno.EINVAL, "mixed address family with sync "
                     "daemon")
            if dreq.fwd_method != FWD_TUNNEL:
                fail(op, errno.EINVAL, "different address family is "
                     "allowed only for tunneling")
    if op == "add_service":
        if exists:
            fail(op, errno.EEXIST, "service exists")
        _check_svc_fields(op, sreq, view.schedulers)
    elif op == "edit_service":
        _check_svc_fields(op, sreq, view.schedulers)
    elif op in ("add_dest", "edit_dest"):
        if dreq.weight < 0:
            fail(op, errno.ERANGE, "server weight less than zero")
        if dreq.l_thresh > dreq.u_thresh:
            fail(op, errno.ERANGE, "lower threshold is higher than upper "
                 "threshold")
        if dreq.u_thresh > INT_MAX:
            fail(op, errno.EINVAL, "upper threshold above INT_MAX")
        if dreq.tun_type == TUN_GUE and dreq.tun_port == 0:
            fail(op, errno.EINVAL, "tunnel port is zero")
        has = view.has_dest(key, dreq.key)
        if op == "add_dest":
            if has:
                fail(op, errno.EEXIST, "dest already exists")
            # ip_vs_new_dest(); a dest revived from the trash passed this
            # check when it was created, so checking always is the same.
            if not unicast_ok(dreq.af, dreq.addr):
                fail(op, errno.EINVAL, f"address {dreq.addr} is not unicast")
        elif not has:
            fail(op, errno.ENOENT, "dest doesn't exist")
    elif op == "del_dest":
        if not view.has_dest(key, dreq.key):
            fail(op, errno.ENOENT, "destination not found")


def _check_svc_fields(op, sreq, schedulers=SCHEDULERS):
    if sreq.sched_name != "none" and sreq.sched_name not in schedulers:
        fail(op, errno.ENOENT,
             f"scheduler module ip_vs_{sreq.sched_name} not found")
    if sreq.pe_name and sreq.pe_name not in PERSISTENCE_ENGINES:
        fail(op, errno.ENOENT,
             f"persistence engine module ip_vs_pe_{sreq.pe_name} not found")
    if sreq.af == AF_INET6 and not 1 <= sreq.netmask <= 128:
        fail(op, errno.EINVAL, f"IPv6 prefix length {sreq.netmask} not in "
             "1..128")
