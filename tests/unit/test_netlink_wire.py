"""The fast IPVS codec (netlink/wire.py) against pyroute2's own encoder and
decoder: same bytes out, same values in."""
import errno
import socket
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
from pyroute2.netlink.generic import ipvs as _ipvs

from ipvs_py.netlink import KernelRejected, wire
from ipvs_py.netlink.config import ServiceConfig
from ipvs_py.netlink.socket import (IPVSConnection, _attrs, _dest_nla,
                                    _ipvsmsg, _svc_nla)
from tests.core.test_cfgdigest import kernel_service

FAMILY = 0x1D


def pyroute2_request(cmd, seq, attrs, dump=False):
    msg = _ipvsmsg()
    msg["cmd"] = cmd
    msg["version"] = _ipvs.GENL_VERSION
    msg["attrs"] = attrs
    msg["header"]["type"] = FAMILY
    msg["header"]["flags"] = NLM_F_REQUEST | (NLM_F_DUMP if dump else NLM_F_ACK)
    msg["header"]["sequence_number"] = seq
    msg["header"]["pid"] = 0
    msg.encode()
    return bytes(msg.data)


v4 = st.ip_addresses(v=4).map(str)
v6 = st.ip_addresses(v=6).map(str)
u16 = st.integers(0, 65535)
u32 = st.integers(0, 2**32 - 1)


@st.composite
def services(draw):
    af = draw(st.sampled_from([2, 10]))
    s = {"af": af, "sched_name": draw(st.sampled_from(["rr", "wlc", "mh"])),
         "flags": draw(st.integers(0, 0x3F)), "timeout": draw(u32)}
    if draw(st.booleans()):
        s["fwmark"] = draw(st.integers(1, 2**32 - 1))
    else:
        s.update(protocol=draw(st.sampled_from([6, 17, 132])),
                 addr=draw(v4 if af == 2 else v6), port=draw(u16))
    s["netmask"] = draw(st.integers(1, 128)) if af == 10 else \
        draw(st.sampled_from(["255.255.255.255", "255.255.0.0", "255.255.255.0"]))
    if draw(st.booleans()):
        s["pe_name"] = "sip"
    return s


@st.composite
def dests(draw):
    af = draw(st.sampled_from([2, 10]))
    return {"addr": draw(v4 if af == 2 else v6), "port": draw(u16),
            "fwd_method": draw(st.sampled_from([0, 2, 3])),
            "weight": draw(st.integers(0, 2**31 - 1)), "u_thresh": draw(u32),
            "l_thresh": draw(u32), "addr_family": af}


@settings(max_examples=200)
@given(svc=services(), seq=u32, key_only=st.booleans())
def test_service_requests_are_pyroute2_bytes(svc, seq, key_only):
    ours = wire.encode_request(FAMILY, _ipvs.IPVS_CMD_NEW_SERVICE, seq,
                               wire.encode_service(svc, key_only))
    theirs = pyroute2_request(_ipvs.IPVS_CMD_NEW_SERVICE, seq,
                              [("IPVS_CMD_ATTR_SERVICE", _svc_nla(svc, key_only))])
    assert ours == theirs


@settings(max_examples=200)
@given(svc=services(), dest=dests(), seq=u32)
def test_dest_requests_are_pyroute2_bytes(svc, dest, seq):
    ours = wire.encode_request(FAMILY, _ipvs.IPVS_CMD_NEW_DEST, seq,
                               wire.encode_service(svc, True) + wire.encode_dest(dest))
    theirs = pyroute2_request(_ipvs.IPVS_CMD_NEW_DEST, seq,
                              [("IPVS_CMD_ATTR_SERVICE", _svc_nla(svc, True)),
                               ("IPVS_CMD_ATTR_DEST", _dest_nla(dest))])
    assert ours == theirs


def test_dump_request_bytes():
    assert wire.encode_request(FAMILY, _ipvs.IPVS_CMD_GET_SERVICE, 7, dump=True) == \
        pyroute2_request(_ipvs.IPVS_CMD_GET_SERVICE, 7, [], dump=True)


def test_tun_port_goes_in_network_order():
    """The kernel reads IPVS_DEST_ATTR_TUN_PORT with nla_get_be16."""
    nest = wire.encode_dest({"addr": "10.0.0.1", "port": 80, "fwd_method": 2,
                             "weight": 1, "u_thresh": 0, "l_thresh": 0,
                             "addr_family": 2, "tun_type": 1, "tun_port": 6080,
                             "tun_flags": 0})
    assert (6080).to_bytes(2, "big") + b"\0\0" in nest


STATS = [("IPVS_STATS_ATTR_CONNS", 5), ("IPVS_STATS_ATTR_INPKTS", 7),
         ("IPVS_STATS_ATTR_OUTPKTS", 3), ("IPVS_STATS_ATTR_INBYTES", 1000),
         ("IPVS_STATS_ATTR_OUTBYTES", 2000), ("IPVS_STATS_ATTR_CPS", 1),
         ("IPVS_STATS_ATTR_INPPS", 2), ("IPVS_STATS_ATTR_OUTPPS", 3),
         ("IPVS_STATS_ATTR_INBPS", 4), ("IPVS_STATS_ATTR_OUTBPS", 5)]


def _reply(nest_name, attrs):
    msg = _ipvsmsg()
    msg["cmd"] = 1
    msg["version"] = 1
    msg["attrs"] = [(nest_name, {"attrs": attrs})]
    msg.encode()
    data = bytes(msg.data)
    parsed = _ipvsmsg(data)
    parsed.decode()
    return data[16:], parsed.get_attr(nest_name)


@settings(max_examples=100)
@given(svc=services(), with_stats=st.booleans())
def test_service_replies_decode_like_pyroute2(svc, with_stats):
    attrs = _svc_nla(svc)["attrs"] + [("IPVS_SVC_ATTR_STATS", {"attrs": STATS}),
                                      ("IPVS_SVC_ATTR_STATS64", {"attrs": STATS})]
    payload, nest = _reply("IPVS_CMD_ATTR_SERVICE", attrs)
    kind, ours = wire.decode_reply(payload, with_stats)
    assert kind == "service"
    theirs = _attrs(nest, with_stats)
    if svc["af"] == 10:
        theirs["netmask"] = svc["netmask"]      # _attrs converts from dotted
    assert ours == theirs


@settings(max_examples=100)
@given(dest=dests())
def test_dest_replies_decode_like_pyroute2(dest):
    attrs = _dest_nla(dest)["attrs"] + [
        ("IPVS_DEST_ATTR_ACTIVE_CONNS", 3), ("IPVS_DEST_ATTR_INACT_CONNS", 4),
        ("IPVS_DEST_ATTR_PERSIST_CONNS", 5), ("IPVS_DEST_ATTR_STATS", {"attrs": STATS})]
    payload, nest = _reply("IPVS_CMD_ATTR_DEST", attrs)
    kind, ours = wire.decode_reply(payload, True)
    assert kind == "dest"
    assert ours == _attrs(nest, True)
    assert (ours["activeconns"], ours["inactconns"], ours["persistconns"]) == (3, 4, 5)


def test_errors_and_done_are_split():
    ack = (36).to_bytes(4, "little") + (2).to_bytes(2, "little") + bytes(2) + \
        (9).to_bytes(4, "little") + bytes(4) + (-17).to_bytes(4, "little", signed=True) + bytes(16)
    done = (20).to_bytes(4, "little") + (3).to_bytes(2, "little") + (2).to_bytes(2, "little") + \
        (10).to_bytes(4, "little") + bytes(8)
    assert wire.decode_messages(ack + done) == [(2, 0, 9, 17), (3, 2, 10, done[16:20])]


class KernelLikeSocket:
    """netlink_rcv_skb's answers: each message of a send runs in turn; an
    NLMSG_ERROR comes back for a failing one, and for a successful one only
    if it asked for an ACK; each answer is one datagram."""

    def __init__(self, failing):
        self.failing = failing            # cmd -> errno
        self.queue, self.sends, self.recvs, self.acks = [], 0, 0, 0

    def bind(self, addr):
        pass

    def send(self, data):
        self.sends += 1
        pos = 0
        while pos < len(data):
            length, _type, flags, seq, _pid = struct.unpack_from("=IHHII", data, pos)
            cmd = data[pos + 16]
            code = self.failing.get(cmd, 0)
            self.acks += not code and bool(flags & NLM_F_ACK)
            if code or flags & NLM_F_ACK:
                self.queue.append(struct.pack("=IHHIIi", 36, wire.NLMSG_ERROR, 0,
                                              seq, 0, -code) + data[pos:pos + 16])
            pos += (length + 3) & ~3
        return len(data)

    def recvmsg(self, size):
        self.recvs += 1
        data = self.queue.pop(0)
        return data[:size], [], socket.MSG_TRUNC if len(data) > size else 0, None


@pytest.mark.parametrize("n", [1, 5, 511, 512, 513, 3000])
def test_pipeline_reads_every_failure_and_acks_only_the_last_of_a_send(n):
    sock = KernelLikeSocket({7: errno.EEXIST, 9: errno.ENOENT})
    ch = wire.WireChannel(sock, FAMILY)
    cmds = [(5, 7, 9, 6)[i % 4] for i in range(n)]
    codes = ch.pipeline([(c, b"\0" * 120) for c in cmds])
    assert codes == [{7: errno.EEXIST, 9: errno.ENOENT}.get(c, 0) for c in cmds]
    # answers: one per failure, plus an ACK for at most the last request of
    # each send; all of them read, none left behind
    assert sock.queue == [] and sock.acks <= sock.sends
    assert sock.recvs == sum(c in (7, 9) for c in cmds) + sock.acks
    assert sock.sends <= -(-n // 200) + -(-n // wire.WireChannel.WINDOW)


def test_a_reply_longer_than_the_receive_size_fails_loudly():
    sock = KernelLikeSocket({})
    ch = wire.WireChannel(sock, FAMILY)
    real_recvmsg = sock.recvmsg
    sock.recvmsg = lambda size: real_recvmsg(16)      # every answer cut short
    with pytest.raises(OSError) as exc:
        ch.pipeline([(5, b"\0" * 8)])
    assert exc.value.errno == errno.EMSGSIZE


class _RefusingChannel:
    """A WireChannel stand-in whose ``fail_cmd`` dump is refused at index 0."""

    def __init__(self, fail_cmd, services=b""):
        self.fail_cmd, self.services = fail_cmd, services

    def dump_each(self, cmd, requests):
        if cmd == self.fail_cmd:
            exc = OSError(errno.EINVAL, "refused")
            exc.dump_index = 0
            raise exc
        return [self.services] if cmd == wire.CMD_GET_SERVICE else [b""] * len(requests)


@pytest.mark.parametrize("fail_cmd, what", [
    (wire.CMD_GET_SERVICE, "dumping services"),
    (wire.CMD_GET_DEST, "dumping destinations")])
def test_snapshot_names_the_dump_the_kernel_refused(fail_cmd, what):
    # one service in the dump, so there is a destination dump to refuse
    svc = ServiceConfig(2, 6, "10.0.0.1", 80, 0, "rr", 0, 0, 0xFFFFFFFF)
    conn = IPVSConnection.__new__(IPVSConnection)
    conn._wire = _RefusingChannel(fail_cmd, kernel_service(svc))
    with pytest.raises(KernelRejected) as exc:
        conn.snapshot()
    assert what in str(exc.value) and exc.value.errno == errno.EINVAL
