"""End to end: client -> VIP through the balancer namespace, fast path only.

The sessions are installed from hand-built ConnRecords before the traffic
starts, through the SessionMirror hook (on_established);
test_feed_e2e.py installs them from the model instead.  The client binds
its ports so the records can name them.  All traffic stays inside the
three namespaces of nettopo.Topology.
"""
import os
import subprocess
import sys

import pytest

from ipvs_py.bpf import ConnRecord, attach_clsact, detach_clsact

from .nettopo import CLIENT, CLIENT6, SERVER, SERVER6, VIP, VIP6


HERE = os.path.dirname(__file__)
PEER = os.path.join(HERE, "echo_peer.py")
VPORT_T, VPORT_U, RPORT_T, RPORT_U = 80, 53, 8080, 8053
CPORT_T, CPORT_U = 41000, 41001
BULK_BYTES = 4 << 20   # echo_peer.BULK


ADDRS = {4: (CLIENT, VIP, SERVER), 6: (CLIENT6, VIP6, SERVER6)}


@pytest.mark.parametrize("fam", [4, 6], ids=["ipv4", "ipv6"])
def test_tcp_and_udp_through_fast_path(topo, fastpath, mirror, fam):
    CLIENT, VIP, SERVER = ADDRS[fam]
    for dev in ("l0", "l1"):   # client side: forward; server side: replies
        attach_clsact(fastpath.prog_fd, dev, netns=topo.lb)
    tcp = ConnRecord("tcp", CLIENT, CPORT_T, VIP, VPORT_T, SERVER, RPORT_T)
    udp = ConnRecord("udp", CLIENT, CPORT_U, VIP, VPORT_U, SERVER, RPORT_U,
                     state="UDP")
    assert mirror.on_established(tcp) and mirror.on_established(udp)

    lines = run_echo(topo, CLIENT, VIP, SERVER)
    # The real server saw the client's own address (masq), the client saw
    # replies from the VIP.
    reply, sent = lines["tcp"].split(" sent=")
    # Every byte of the bulk transfer arrived intact, then the ping.
    assert reply == f"echo:{sent}+tcp-ping|peer={CLIENT}:{CPORT_T}"
    assert lines["udp"] == (f"echo:udp-ping|peer={CLIENT}:{CPORT_U} "
                            f"from={VIP}:{VPORT_U}")

    fwd, rev = mirror.stats(tcp)
    assert fwd.packets >= 3 and rev.packets >= 2   # handshake + data each way
    assert fwd.bytes > BULK_BYTES
    assert fwd.tcp_flags & 0x02 and rev.tcp_flags & 0x12 == 0x12  # SYN, SYN|ACK
    fwd, rev = mirror.stats(udp)
    assert (fwd.packets, rev.packets) == (1, 1)
    st = fastpath.stats()
    assert st["in"] >= 4 and st["out"] >= 3 and st["err"] == 0


def run_echo(topo, client, vip, server):
    """One echo_peer exchange (TCP bulk + ping, UDP ping) from the client
    namespace to ``vip``; returns {"tcp": line, "udp": line}."""
    srv = topo.popen(topo.srv, [sys.executable, PEER, "server", server,
                                str(RPORT_T), str(RPORT_U)],
                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert srv.stdout.readline().strip() == "ready", srv.stderr.read()
        cli = topo.popen(topo.cli, [sys.executable, PEER, "client", vip,
                                    str(VPORT_T), str(VPORT_U), str(CPORT_T),
                                    str(CPORT_U)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
        out, err = cli.communicate(timeout=60)
        assert cli.returncode == 0, err
        srv.wait(timeout=60)
    finally:
        if srv.poll() is None:
            srv.kill()
            srv.wait()
    return dict(line.split(" ", 1) for line in out.splitlines())


def _tc_show(topo, *args):
    return subprocess.run(["ip", "netns", "exec", topo.lb, "tc", *args],
                          capture_output=True, text=True, check=True).stdout


def test_attach_is_what_tc_sees_and_detach_removes_it(topo, fastpath):
    attach_clsact(fastpath.prog_fd, "l0", netns=topo.lb)
    attach_clsact(fastpath.prog_fd, "l0", netns=topo.lb, direction="egress",
                  prio=2)   # clsact already there: reused, not an error
    ingress = _tc_show(topo, "filter", "show", "dev", "l0", "ingress")
    assert "ipvs_fastpath" in ingress and "direct-action" in ingress
    assert "ipvs_fastpath" in _tc_show(topo, "filter", "show", "dev", "l0",
                                       "egress")
    detach_clsact("l0", netns=topo.lb)
    assert "clsact" not in _tc_show(topo, "qdisc", "show", "dev", "l0")
    detach_clsact("l0", netns=topo.lb)   # idempotent
    with pytest.raises(LookupError):
        attach_clsact(fastpath.prog_fd, "nonexistent0", netns=topo.lb)
