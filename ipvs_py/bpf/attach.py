"""Attach the fast path at a device's clsact qdisc (via pyroute2).

Equivalent to::

    tc qdisc add dev IF clsact
    tc filter add dev IF ingress bpf direct-action fd PROG_FD

``tc`` itself cannot take a program fd from another process, only an
object file or a bpffs pin, so the netlink messages are sent from this
process with pyroute2.  For a namespace, pyroute2 opens the netlink socket
inside it and hands it back to us, so the fd in the message is still ours.
"""
import errno as _errno

# TC_H_CLSACT parents (include/uapi/linux/pkt_sched.h)
PARENTS = {"ingress": 0xFFFFFFF2, "egress": 0xFFFFFFF3}


def _pyroute2():
    try:
        import pyroute2
    except ImportError as e:   # optional dependency: say which one
        raise ImportError("attaching the fast path needs pyroute2 "
                          "(pip install 'ipvs_py[bpf]')") from e
    return pyroute2


def _iproute(netns):
    IPRoute = _pyroute2().IPRoute
    return IPRoute(netns=netns) if netns else IPRoute()


def _ifindex(ipr, ifname):
    idx = ipr.link_lookup(ifname=ifname)
    if not idx:
        raise LookupError(f"no device {ifname!r}")
    return idx[0]


def attach_clsact(prog_fd, ifname, netns=None, direction="ingress",
                  name="ipvs_fastpath", prio=1):
    """Attach ``prog_fd`` (a sched_cls program) in direct-action mode at
    ``direction`` of ``ifname``, in network namespace ``netns`` (a name
    under /run/netns) or ours.  Creates the clsact qdisc if missing."""
    NetlinkError = _pyroute2().NetlinkError
    with _iproute(netns) as ipr:
        idx = _ifindex(ipr, ifname)
        try:
            ipr.tc("add", "clsact", idx)
        except NetlinkError as e:
            if e.code != _errno.EEXIST:
                raise
        ipr.tc("add-filter", "bpf", idx, ":1", fd=prog_fd, name=name,
               parent=PARENTS[direction], prio=prio, classid=1,
               direct_action=True)


def detach_clsact(ifname, netns=None):
    """Remove the clsact qdisc of ``ifname`` and every filter on it."""
    NetlinkError = _pyroute2().NetlinkError
    with _iproute(netns) as ipr:
        idx = _ifindex(ipr, ifname)
        try:
            ipr.tc("del", "clsact", idx)
        except NetlinkError as e:
            if e.code not in (_errno.ENOENT, _errno.EINVAL):
                raise
