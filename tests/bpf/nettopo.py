"""A client / load balancer / real server topology in network namespaces.

    [cli] c0 10.100.1.2 ---- l0 10.100.1.1 [lb] l1 10.100.2.1 ---- s0 10.100.2.2 [srv]
             fd00:100:1::2      fd00:100:1::1     fd00:100:2::1      fd00:100:2::2

IPv6 uses unique local addresses (fd00::/8), the IPv6 counterpart of the
10/8 range, and only inside these namespaces.

The VIP is on no interface: the client reaches it through its default
route via the balancer, where the tc program rewrites it to the real
server before routing.  Every namespace and veth is created inside the
namespaces (never in the caller's), with names unique to this process, and
deleting the namespaces removes all of it.
"""
import os
import subprocess

CLIENT, LB_C, LB_S, SERVER = "10.100.1.2", "10.100.1.1", "10.100.2.1", "10.100.2.2"
VIP = "10.100.9.9"
CLIENT6, LB_C6, LB_S6, SERVER6 = ("fd00:100:1::2", "fd00:100:1::1",
                                  "fd00:100:2::1", "fd00:100:2::2")
VIP6 = "fd00:100:9::9"


def ip(*args):
    """Run ``ip`` and raise with its stderr on failure."""
    res = subprocess.run(["ip", *args], capture_output=True, text=True)
    if res.returncode:
        raise RuntimeError(f"ip {' '.join(args)}: {res.stderr.strip()}")
    return res.stdout


class Topology:
    """Creates the three namespaces; ``close()`` deletes them."""

    def __init__(self):
        tag = f"ipvsbpf{os.getpid()}"
        self.cli, self.lb, self.srv = (f"{tag}-{n}" for n in ("cli", "lb", "srv"))
        self.created = []
        try:
            self._build()
        except BaseException:
            self.close()
            raise

    def _build(self):
        for ns in (self.cli, self.lb, self.srv):
            ip("netns", "add", ns)
            self.created.append(ns)
            ip("-n", ns, "link", "set", "lo", "up")
        ip("-n", self.lb, "link", "add", "l0", "type", "veth", "peer", "name",
           "c0", "netns", self.cli)
        ip("-n", self.lb, "link", "add", "l1", "type", "veth", "peer", "name",
           "s0", "netns", self.srv)
        for ns, dev, addr in ((self.cli, "c0", CLIENT), (self.lb, "l0", LB_C),
                              (self.lb, "l1", LB_S), (self.srv, "s0", SERVER)):
            ip("-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            ip("-n", ns, "link", "set", dev, "up")
        for ns, dev, addr in ((self.cli, "c0", CLIENT6), (self.lb, "l0", LB_C6),
                              (self.lb, "l1", LB_S6), (self.srv, "s0", SERVER6)):
            # nodad: usable at once instead of after duplicate detection.
            ip("-n", ns, "addr", "add", f"{addr}/64", "dev", dev, "nodad")
        ip("-n", self.cli, "route", "add", "default", "via", LB_C)
        ip("-n", self.srv, "route", "add", "default", "via", LB_S)
        ip("-n", self.cli, "-6", "route", "add", "default", "via", LB_C6)
        ip("-n", self.srv, "-6", "route", "add", "default", "via", LB_S6)
        self.sysctl(self.lb, "net.ipv4.ip_forward", "1")
        self.sysctl(self.lb, "net.ipv6.conf.all.forwarding", "1")

    def sysctl(self, ns, name, value):
        subprocess.run(["ip", "netns", "exec", ns, "sysctl", "-qw",
                        f"{name}={value}"], check=True)

    def popen(self, ns, argv, **kw):
        """Start ``argv`` inside namespace ``ns``."""
        return subprocess.Popen(["ip", "netns", "exec", ns, *argv], **kw)

    def close(self):
        for ns in reversed(self.created):
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        self.created = []
