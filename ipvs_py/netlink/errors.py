"""Errors of the netlink bridge: each names what a user can do about it."""
import errno as _errno


class NetlinkError(Exception):
    """Base class of the bridge's errors."""


class PermissionDenied(NetlinkError):
    """The caller lacks CAP_NET_ADMIN in the target namespace."""

    def __init__(self, what):
        super().__init__(f"{what}: permission denied (IPVS changes need "
                         f"root or CAP_NET_ADMIN)")


class IPVSUnavailable(NetlinkError):
    """The kernel has no IPVS generic-netlink family (module not loaded)."""

    def __init__(self, netns=None):
        where = f" in netns {netns}" if netns else ""
        super().__init__(f"kernel IPVS is not available{where}: load it with "
                         f"`modprobe ip_vs` (or build the kernel with "
                         f"CONFIG_IP_VS)")


class NetnsNotFound(NetlinkError):
    """The named network namespace (or pid) does not exist."""

    def __init__(self, netns, path):
        super().__init__(f"network namespace {netns!r} not found ({path} "
                         f"does not exist; see `ip netns list`)")


class KernelRejected(NetlinkError):
    """The kernel refused one request; ``errno`` is its error number."""

    def __init__(self, what, code):
        self.errno = code
        self.what = what
        name = _errno.errorcode.get(code, str(code))
        hint = _describe(code)
        if code == _errno.EINVAL and "destination" in what:
            # ip_vs_new_dest: inet_addr_type() must say local or unicast;
            # in a namespace whose lo is down nothing is (seen in the VM).
            hint += ("; a destination must be a unicast address in the "
                     "namespace (no route there? is `lo` up?)")
        super().__init__(f"kernel rejected {what}: {name} ({hint})")


def _describe(code):
    return {
        _errno.EEXIST: "it already exists",
        _errno.ENOENT: "no such service or destination",
        _errno.ESRCH: "no such service",
        _errno.EINVAL: "invalid value",
        _errno.EBUSY: "busy",
        _errno.ENOMEM: "out of memory",
    }.get(code, _errno.errorcode.get(code, "error"))
