"""_core/nldump.dump_each on the host's real generic netlink (the nlctrl
family, which every kernel has: IPVS itself runs only in the test VM)."""
import errno
import socket
import struct

import pytest

from ipvs_py._core import load
from ipvs_py.netlink import wire

nldump = load("nldump")
GENL_ID_CTRL, CTRL_CMD_GETFAMILY, CTRL_ATTR_FAMILY_NAME = 0x10, 3, 2


@pytest.fixture
def sock():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    s.bind((0, 0))
    yield s
    s.close()


def family_names(raw):
    names = []
    for mtype, _flags, _seq, payload in wire.decode_messages(raw):
        assert mtype == GENL_ID_CTRL
        pos = 4
        while pos + 4 <= len(payload):
            length, kind = struct.unpack_from("=HH", payload, pos)
            if kind == CTRL_ATTR_FAMILY_NAME:
                names.append(payload[pos + 4:pos + length].rstrip(b"\0").decode())
            pos += (length + 3) & ~3
    return names


def python_dump(sock, seq):
    """The same dump, read the plain way (large receive buffer)."""
    request = bytearray(wire.encode_request(GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                                            seq, dump=True))
    request[17] = 1                     # nlctrl's genl version (IPVS's is 1 too)
    sock.send(bytes(request))
    out = []
    while True:
        for mtype, _f, mseq, payload in wire.decode_messages(sock.recv(1 << 16)):
            if mtype == wire.NLMSG_DONE:
                return out
            out.append(payload)


def test_each_dump_returns_its_messages(sock):
    raws = nldump.dump_each(sock.fileno(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                            [b"", b"", b""], 7)
    payloads = [[p for *_, p in wire.decode_messages(r)] for r in raws]
    assert len(raws) == 3 and payloads[0] == payloads[1] == payloads[2]
    names = family_names(raws[0])
    assert "nlctrl" in names and len(names) == len(set(names))
    # sequence numbers 7, 8, 9: each dump's messages carry their own
    assert [{s for _t, _f, s, _p in wire.decode_messages(r)} for r in raws] == \
        [{7}, {8}, {9}]
    # what a plain Python read of the same dump gets
    assert payloads[0] == python_dump(sock, 99)


def test_sequence_numbers_skip_zero(sock):
    raws = nldump.dump_each(sock.fileno(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                            [b""] * 2, 0xFFFFFFFF)
    assert [{s for _t, _f, s, _p in wire.decode_messages(r)} for r in raws] == \
        [{0xFFFFFFFF}, {1}]


def test_a_dump_the_kernel_refuses_names_its_index(sock):
    # 0xEE: a command nlctrl does not have
    with pytest.raises(OSError) as exc:
        nldump.dump_each(sock.fileno(), GENL_ID_CTRL, 0xEE, [b""], 1)
    assert exc.value.errno == errno.EOPNOTSUPP and exc.value.dump_index == 0
    # a CTRL_ATTR_FAMILY_ID one byte long fails nlctrl's policy: the third
    # dump is refused, after the first two were read
    bad = wire._nla(1, b"\x01")
    with pytest.raises(OSError) as exc:
        nldump.dump_each(sock.fileno(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                         [b"", b"", bad], 1)
    assert exc.value.errno == errno.EINVAL and exc.value.dump_index == 2
    # the socket is still usable afterwards: nothing of the failed dump is
    # left queued to confuse the next one
    (raw,) = nldump.dump_each(sock.fileno(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                              [b""], 5)
    assert "nlctrl" in family_names(raw)


def test_a_part_larger_than_bufsize_is_an_error_not_a_cut(sock):
    # the kernel sizes a dump part after the largest read the socket saw:
    # read once with 32 KiB, then ask for parts of at most 1 KiB
    python_dump(sock, 3)
    with pytest.raises(OSError) as exc:
        nldump.dump_each(sock.fileno(), GENL_ID_CTRL, CTRL_CMD_GETFAMILY,
                         [b""], 5, bufsize=1024)
    assert exc.value.errno == errno.EMSGSIZE


@pytest.mark.parametrize("kw, match", [
    (dict(family=0), "family"), (dict(cmd=256), "out of range"),
    (dict(bufsize=100), "bufsize"), (dict(requests=[b"abc"]), "multiple of 4"),
    (dict(requests=["x"]), "bytes"),
])
def test_bad_arguments(sock, kw, match):
    args = dict(fd=sock.fileno(), family=GENL_ID_CTRL, cmd=CTRL_CMD_GETFAMILY,
                requests=[b""], seq=1)
    args.update(kw)
    with pytest.raises((ValueError, TypeError), match=match):
        nldump.dump_each(args["fd"], args["family"], args["cmd"],
                         args["requests"], args["seq"], bufsize=args.get("bufsize", 4096))


def test_a_closed_socket_fails_with_its_errno():
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 16)
    fd = s.fileno()
    s.close()
    with pytest.raises(OSError) as exc:
        nldump.dump_each(fd, GENL_ID_CTRL, CTRL_CMD_GETFAMILY, [b""], 1)
    assert exc.value.errno == errno.EBADF and exc.value.dump_index == 0
