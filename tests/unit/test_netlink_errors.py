"""Netlink bridge errors that need no kernel IPVS (run on the host)."""
import os

import pytest

from ipvs_py.netlink import (IPVSConnection, IPVSUnavailable, KernelRejected,
                             NetnsNotFound)
from ipvs_py.netlink.socket import _netmask_from_wire, _netmask_to_wire, _netns_path


@pytest.mark.skipif(os.path.exists("/proc/net/ip_vs"),
                    reason="this host's kernel has IPVS loaded")
def test_no_ipvs_in_the_kernel_says_modprobe():
    with pytest.raises(IPVSUnavailable, match="modprobe ip_vs"):
        IPVSConnection()


def test_missing_netns_is_named():
    with pytest.raises(NetnsNotFound, match="'nope-ipvs-py'.*ip netns list"):
        IPVSConnection("nope-ipvs-py")
    with pytest.raises(NetnsNotFound, match="/proc/999999999/ns/net"):
        IPVSConnection(999999999)


@pytest.mark.parametrize("netns, path", [
    ("blue", "/var/run/netns/blue"), (1234, "/proc/1234/ns/net"),
    ("1234", "/proc/1234/ns/net"), ("/run/netns/x", "/run/netns/x")])
def test_netns_paths(netns, path):
    assert _netns_path(netns) == path


@pytest.mark.parametrize("bad", ["", "a/b", 1.5, None])
def test_bad_netns_values(bad):
    with pytest.raises(ValueError, match="bad netns"):
        _netns_path(bad)


def test_ipv6_netmask_travels_as_a_native_u32_prefix():
    assert _netmask_to_wire(10, 64) == "64.0.0.0"
    assert _netmask_from_wire(10, "64.0.0.0") == 64
    assert _netmask_to_wire(2, "255.255.255.0") == "255.255.255.0"
    with pytest.raises(ValueError, match="1..128"):
        _netmask_to_wire(10, 129)


def test_kernel_rejected_message_names_errno_and_hint():
    e = KernelRejected("adding destination 10.0.1.1:80 of TCP 10.0.0.1:80", 22)
    assert e.errno == 22
    assert "EINVAL" in str(e) and "is `lo` up?" in str(e)
    assert "EEXIST" in str(KernelRejected("adding service x", 17))
