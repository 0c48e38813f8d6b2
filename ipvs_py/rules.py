"""ipvsadm-restore rules: parse (like ipvsadm 1.31) and apply all-or-nothing.

One line is one ipvsadm command line without the program name, e.g.
``-A -t 10.0.0.1:80 -s rr`` or ``-a -t 10.0.0.1:80 -r 10.1.0.1:80 -m -w 2``.
Parsing follows ipvsadm.c: popt's option table (short, long, ``--x=v``,
clustered short flags, the optional argument of ``-p``), the per-command
option matrix ``commands_v_options``, the tunnel matrix, and the checks of
``process_options()`` (zero port needs persistence, ``-o`` only for UDP or
fwmark, real-server port forced to the service port for -g/-i, ...).  Each
line becomes (op, SvcReq, DestReq); the kernel's own checks then run in
:mod:`ipvs_py.kernel_checks`.

Differences on purpose (docs/control-plane.md): ``#`` comment lines and
blank lines are skipped (ipvsadm's comment detection never fires); host and
address names are not resolved, only numeric addresses are accepted
(``inet_aton`` forms included); service names (``http``) are looked up with
the local services database like getservbyname(); -L/-S/-R/daemon commands
are refused; and a bad line refuses the whole text instead of stopping
ipvsadm half way.
"""
import errno
import ipaddress
import re
import socket

from .errors import IPVSError, RuleError
from .kernel_checks import check
from .requests import DestReq, SvcReq
from .schedulers.sched import SchedFlagError, parse_sched_flags
from .service import (AF_INET, AF_INET6, F_ONEPACKET, F_PERSISTENT,
                      F_SCHED_MASK,
                      IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP)
from .dest import FWD_DROUTE, FWD_MASQ, FWD_TUNNEL

__all__ = ["parse_line", "parse", "restore"]

INT_MAX = (1 << 31) - 1
UINT_MAX = (1 << 32) - 1
MAX_TIMEOUT = 86400 * 31
IPVS_SVC_PERSISTENT_TIMEOUT = 6 * 60

# commands (ipvsadm.c CMD_*), 1-based like the C code
CMDS = ["add-service", "edit-service", "delete-service", "flush", "list",
        "add-server", "delete-server", "edit-server", "set", "start-daemon",
        "stop-daemon", "restore", "save", "zero"]
(C_ADD, C_EDIT, C_DEL, C_FLUSH, C_LIST, C_ADDDEST, C_DELDEST, C_EDITDEST,
 C_TIMEOUT, C_STARTD, C_STOPD, C_RESTORE, C_SAVE, C_ZERO) = range(1, 15)

OPTNAMES = ["numeric", "connection", "service-address", "scheduler",
            "persistent", "netmask", "real-server", "forwarding-method",
            "weight", "u-threshold", "l-threshold", "mcast-interface",
            "timeout", "daemon", "stats", "rate", "thresholds",
            "persistent-conn", "nosort", "syncid", "exact", "ops", "pe",
            "sched-flags", "mcast-group", "mcast-port", "mcast-ttl",
            "sync-maxlen", "tun-info", "tun-type", "tun-port", "tun-nocsum",
            "tun-csum", "tun-remcsum"]
O = {n: i for i, n in enumerate(OPTNAMES)}

# commands_v_options (ipvsadm.c), columns in OPTNAMES order:
# '+' compulsory, 'x' illegal, '1' exclusive, ' ' optional
_X = "x"
_MATRIX = {
    C_ADD: "xx+   " + _X * 15 + "   " + _X * 10,
    C_DEL: "xx+" + _X * 31,
    C_FLUSH: _X * 34,
    C_LIST: " 11" + _X * 9 + "11" + " " * 7 + _X * 7 + " " + _X * 5,
    C_ADDDEST: "xx+xxx+    " + _X * 18 + " " * 5,
    C_DELDEST: "xx+xxx+" + _X * 27,
    C_TIMEOUT: _X * 34,
    C_STARTD: _X * 11 + " " + _X * 7 + " " + _X * 4 + " " * 4 + _X * 6,
    C_STOPD: _X * 19 + " " + _X * 14,
    C_RESTORE: _X * 34,
    C_SAVE: " " + _X * 33,
    C_ZERO: "xx " + _X * 31,
}
_MATRIX[C_EDIT] = _MATRIX[C_ADD]
_MATRIX[C_EDITDEST] = _MATRIX[C_ADDDEST]
for _k, _v in _MATRIX.items():
    assert len(_v) == 34, (_k, len(_v))

TUNNAMES = ("ipip", "gue", "gre")
_TUN_OPTS = (O["tun-port"], O["tun-nocsum"], O["tun-csum"], O["tun-remcsum"])
_TUN_MATRIX = ("xxxx", "+111", "x11x")

# popt table: long name -> (short, argtype, tag); argtype 0 none, 1 string,
# 2 optional string
_LONG = {
    "add-service": ("A", 0), "edit-service": ("E", 0),
    "delete-service": ("D", 0), "clear": ("C", 0), "list": ("L", 0),
    "zero": ("Z", 0), "add-server": ("a", 0), "edit-server": ("e", 0),
    "delete-server": ("d", 0), "set": ("set", 0), "help": ("h", 0),
    "version": ("v", 0), "restore": ("R", 0), "save": ("S", 0),
    "start-daemon": ("start-daemon", 1), "stop-daemon": ("stop-daemon", 1),
    "tcp-service": ("t", 1), "udp-service": ("u", 1),
    "sctp-service": ("sctp-service", 1), "fwmark-service": ("f", 1),
    "scheduler": ("s", 1), "persistent": ("p", 2), "netmask": ("M", 1),
    "real-server": ("r", 1), "masquerading": ("m", 0), "ipip": ("i", 0),
    "gatewaying": ("g", 0), "weight": ("w", 1), "u-threshold": ("x", 1),
    "l-threshold": ("y", 1), "numeric": ("n", 0), "connection": ("c", 0),
    "mcast-interface": ("mcast-interface", 1), "syncid": ("I", 1),
    "timeout": ("timeout", 0), "daemon": ("daemon", 0),
    "stats": ("stats", 0), "rate": ("rate", 0),
    "thresholds": ("thresholds", 0), "persistent-conn": ("persistent-conn", 0),
    "nosort": ("nosort", 0), "sort": ("sort", 0), "exact": ("X", 0),
    "ipv6": ("6", 0), "ops": ("o", 0), "pe": ("pe", 1),
    "sched-flags": ("b", 1), "mcast-group": ("mcast-group", 1),
    "mcast-port": ("mcast-port", 1), "mcast-ttl": ("mcast-ttl", 1),
    "sync-maxlen": ("sync-maxlen", 1), "tun-info": ("tun-info", 0),
    "tun-type": ("tun-type", 1), "tun-port": ("tun-port", 1),
    "tun-nocsum": ("tun-nocsum", 0), "tun-csum": ("tun-csum", 0),
    "tun-remcsum": ("tun-remcsum", 0),
}
_SHORT = {v[0]: v[1] for v in _LONG.values() if len(v[0]) == 1}
# 'L' and 'l' are both list; 'I' is syncid's tag but has no short form
_SHORT["l"] = 0
del _SHORT["I"]

_CMD_OF = {"A": C_ADD, "E": C_EDIT, "D": C_DEL, "a": C_ADDDEST,
           "e": C_EDITDEST, "d": C_DELDEST, "C": C_FLUSH, "L": C_LIST,
           "l": C_LIST, "Z": C_ZERO, "set": C_TIMEOUT, "R": C_RESTORE,
           "S": C_SAVE, "start-daemon": C_STARTD, "stop-daemon": C_STOPD}


class _Fail(Exception):
    """ipvsadm's fail(): the line is refused."""

    def __init__(self, message, err=None):
        super().__init__(message)
        self.err = err


_NUM = re.compile(r"[ \t\n\r\f\v]*[+-]?[0-9]+\Z")


def string_to_number(s, lo, hi):
    """ipvsadm string_to_number(): strtol base 10, whole string, range."""
    if not _NUM.match(s):
        return -1
    n = int(s)
    if n > (1 << 63) - 1 or n < -(1 << 63):
        return -1                                   # ERANGE
    return n if lo <= n <= hi else -1


_DOTTED = re.compile(r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
                     r"(?:\.(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9]))"
                     r"{3}\Z")


def inet_aton(s):
    """glibc inet_aton(): 1-4 parts, each decimal, 0-octal or 0x-hex; the
    last part fills the remaining bytes.  Returns the address int or None."""
    if _DOTTED.match(s):                    # the usual a.b.c.d, fast
        a, b, c, d = s.split(".")
        return (int(a) << 24) | (int(b) << 16) | (int(c) << 8) | int(d)
    if not s or s[0] in " \t" or s.endswith("."):
        return None
    parts = s.split(".")
    if len(parts) > 4:
        return None
    vals = []
    for p in parts:
        if not p:
            return None
        try:
            if p[:2] in ("0x", "0X"):
                v = int(p[2:], 16) if p[2:] else 0
            elif len(p) > 1 and p[0] == "0":
                v = int(p, 8)
            else:
                if not p.isdigit():
                    return None
                v = int(p)
        except ValueError:
            return None
        vals.append(v)
    limits = {1: (0xFFFFFFFF,), 2: (0xFF, 0xFFFFFF),
              3: (0xFF, 0xFF, 0xFFFF), 4: (0xFF, 0xFF, 0xFF, 0xFF)}
    lim = limits[len(vals)]
    if any(v > m for v, m in zip(vals, lim)):
        return None
    addr = 0
    for v in vals[:-1]:
        addr = (addr << 8) | v
    shift = 8 * (4 - len(vals) + 1)
    return (addr << shift) | vals[-1]


def _str_is_digit(s):
    return all(c.isdigit() and c.isascii() for c in s)


_PROTO_DB = {IPPROTO_TCP: "tcp", IPPROTO_UDP: "udp", IPPROTO_SCTP: "sctp"}


def service_to_port(name, proto):
    if proto not in _PROTO_DB:
        return -1
    try:
        return socket.getservbyname(name, _PROTO_DB[proto])
    except (OSError, TypeError):
        return -1


class _Ent:
    """struct ipvs_command_entry (svc and dest parts)."""

    def __init__(self):
        self.cmd = 0
        # svc
        self.af = 0
        self.protocol = 0
        self.addr = None
        self.port = 0
        self.fwmark = 0
        self.sched_name = ""
        self.flags = 0
        self.timeout = 0
        self.netmask = 0xFFFFFFFF        # ipvsadm's default /32
        self.pe_name = ""
        # dest
        self.d_af = 0
        self.d_addr = None
        self.d_port = 0
        self.fwd = FWD_DROUTE
        self.weight = 1
        self.u_thresh = 0
        self.l_thresh = 0
        self.tun_type = 0
        self.tun_port = 0
        self.tun_flags = 0


def parse_service(buf, protocol):
    """ipvsadm parse_service() -> (result bits, af, addr, port, netmask128)
    result: 1 address, 2 port; 0 on error."""
    if buf is None or _str_is_digit(buf):
        return 0, None, None, None
    portp = None
    if buf.startswith("["):
        buf = buf[1:]
        end = buf.find("]")
        if end < 0:
            return 0, None, None, None
        rest = buf[end + 1:]
        buf = buf[:end]
        if not rest.startswith(":"):
            return 0, None, None, None
        portp = rest[1:]
    af = addr = None
    a6 = None
    if buf.count(":") >= 2:                 # inet_pton(AF_INET6) needs two
        try:
            a6 = ipaddress.IPv6Address(buf)
        except ValueError:
            a6 = None
    if a6 is not None and "%" not in buf:
        af, addr = AF_INET6, a6
    else:
        i = buf.rfind(":")
        if i >= 0:
            portp = buf[i + 1:]
            buf = buf[:i]
        v = inet_aton(buf)
        if v is None:
            return 0, None, None, None
        af, addr = AF_INET, ipaddress.IPv4Address(v)
    result = 1
    port = None
    if portp is not None:
        result |= 2
        port = string_to_number(portp, 0, 65535)
        if port == -1:
            port = service_to_port(portp, protocol)
            if port == -1:
                return 0, None, None, None
    return result, af, addr, port


def _sched_flags(sched, arg):
    """parse_sched_flags(), its message as a rules-file error."""
    try:
        return parse_sched_flags(sched, arg)
    except SchedFlagError as exc:
        raise _Fail(exc.strerror) from None


def _tokens(argv):
    """popt: yield (name, value, raw); name is the short letter or the tag;
    non-options are yielded as (None, arg, arg)."""
    i = 0
    n = len(argv)
    while i < n:
        tok = argv[i]
        i += 1
        if tok == "--":
            for rest in argv[i:]:
                yield None, rest, rest
            return
        if tok.startswith("--"):
            name, eq, val = tok[2:].partition("=")
            if name not in _LONG:
                raise _Fail(f"{tok}: unknown option")
            short, argtype = _LONG[name]
            if argtype == 0:
                if eq:
                    raise _Fail(f"{tok}: option does not take an argument")
                yield short, None, tok
            elif eq:
                yield short, val, tok
            elif argtype == 2:
                if i < n and not argv[i].startswith("-"):
                    val = argv[i]
                    i += 1
                    yield short, val, tok
                else:
                    yield short, None, tok
            else:
                if i >= n:
                    raise _Fail(f"{tok}: missing argument")
                yield short, argv[i], tok
                i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            j = 1
            while j < len(tok):
                c = tok[j]
                j += 1
                if c not in _SHORT:
                    raise _Fail(f"-{c}: unknown option")
                argtype = _SHORT[c]
                if argtype == 0:
                    yield c, None, tok
                    continue
                if j < len(tok):
                    val = tok[j:]
                    if val.startswith("="):
                        val = val[1:]
                    yield c, val, tok
                elif argtype == 2:
                    if i < n and not argv[i].startswith("-"):
                        yield c, argv[i], tok
                        i += 1
                    else:
                        yield c, None, tok
                else:
                    if i >= n:
                        raise _Fail(f"-{c}: missing argument")
                    yield c, argv[i], tok
                    i += 1
                break
            continue
        yield None, tok, tok


def _set_option(opts, name):
    bit = 1 << O[name]
    if opts[0] & bit:
        raise _Fail(f"multiple '{name}' options specified")
    opts[0] |= bit


def _parse_options(argv):
    ce = _Ent()
    opts = [0]
    sched_flags_arg = None
    leftovers = []
    toks = _tokens(argv)
    first = None
    for name, val, raw in toks:
        if name is None:
            leftovers.append(val)
            continue
        first = (name, val)
        break
    if first is None or first[0] not in _CMD_OF and first[0] not in (
            "h", "v"):
        raise _Fail("the first option must be a command (-A -E -D -C -a "
                    "-e -d -Z ...)")
    name, val = first
    if name in ("h", "v"):
        raise _Fail(f"-{name} is not a rule")
    ce.cmd = _CMD_OF[name]
    if ce.cmd in (C_STARTD, C_STOPD) and val not in ("master", "backup"):
        raise _Fail("illegal start-daemon parameter specified"
                    if ce.cmd == C_STARTD else
                    "illegal start_daemon specified")
    for name, val, raw in toks:
        if name is None:
            leftovers.append(val)
            continue
        if name in _CMD_OF or name in ("h", "v"):
            # ipvsadm's option loop has no case for a second command
            raise _Fail(f"invalid option `{raw}'")
        if name in ("t", "u", "sctp-service"):
            _set_option(opts, "service-address")
            ce.protocol = {"t": IPPROTO_TCP, "u": IPPROTO_UDP}.get(
                name, IPPROTO_SCTP)
            res, af, addr, port = parse_service(val, ce.protocol)
            if not res & 1:
                raise _Fail("illegal virtual server address[:port] specified")
            ce.af, ce.addr = af, addr
            if af == AF_INET6:
                ce.netmask = 128
            if res & 2:
                ce.port = port
        elif name == "f":
            _set_option(opts, "service-address")
            ce.af = AF_INET
            ce.protocol = IPPROTO_TCP
            fw = string_to_number(val, 1, UINT_MAX) if val.strip() else -1
            if fw == -1:
                raise _Fail(f"invalid fwmark value `{val}' specified")
            ce.fwmark = fw
        elif name == "s":
            _set_option(opts, "scheduler")
            ce.sched_name = val[:15]
        elif name == "p":
            _set_option(opts, "persistent")
            ce.flags |= F_PERSISTENT
            if val is None:
                ce.timeout = IPVS_SVC_PERSISTENT_TIMEOUT
            else:
                t = string_to_number(val, 1, MAX_TIMEOUT)
                if t == -1:
                    raise _Fail(f"invalid timeout value `{val}' specified")
                ce.timeout = t
        elif name == "M":
            _set_option(opts, "netmask")
            if ce.af != AF_INET6:
                v = inet_aton(val)
                if v is None:
                    raise _Fail("illegal virtual server persistent mask "
                                "specified")
                ce.netmask = v
            else:
                m = re.match(r"\s*[+-]?\d+", val)
                ce.netmask = int(m.group()) if m else 0
                if not 1 <= ce.netmask <= 128:
                    raise _Fail("illegal ipv6 netmask specified")
        elif name == "r":
            _set_option(opts, "real-server")
            res, af, addr, port = parse_service(val, ce.protocol)
            if not res & 1:
                raise _Fail("illegal real server address[:port] specified")
            ce.d_af, ce.d_addr = af, addr
            # t_dest starts as a copy of the service: no port -> vport
            ce.d_port = port if res & 2 else ce.port
        elif name in ("i", "g", "m"):
            _set_option(opts, "forwarding-method")
            ce.fwd = {"i": FWD_TUNNEL, "g": FWD_DROUTE, "m": FWD_MASQ}[name]
        elif name == "w":
            _set_option(opts, "weight")
            # ipvsadm.c 1.31 says 0..65535, but Debian's binary (the one
            # the VM test runs) calls string_to_number(optarg, 0, INT_MAX)
            ce.weight = string_to_number(val, 0, INT_MAX)
            if ce.weight == -1:
                raise _Fail("illegal weight specified")
        elif name == "x":
            _set_option(opts, "u-threshold")
            ce.u_thresh = string_to_number(val, 0, INT_MAX)
            if ce.u_thresh == -1:
                raise _Fail("illegal u_threshold specified")
        elif name == "y":
            _set_option(opts, "l-threshold")
            ce.l_thresh = string_to_number(val, 0, INT_MAX)
            if ce.l_thresh == -1:
                raise _Fail("illegal l_threshold specified")
        elif name == "c":
            _set_option(opts, "connection")
        elif name == "n":
            _set_option(opts, "numeric")
        elif name == "mcast-interface":
            _set_option(opts, "mcast-interface")
        elif name == "I":
            _set_option(opts, "syncid")
        elif name in ("timeout", "daemon", "stats", "rate", "thresholds",
                      "persistent-conn", "nosort"):
            _set_option(opts, name)
        elif name == "sort":
            pass
        elif name == "X":
            _set_option(opts, "exact")
        elif name == "6":
            if ce.fwmark:
                ce.af = AF_INET6
                ce.netmask = 128
            else:
                raise _Fail("-6 used before -f")
        elif name == "o":
            _set_option(opts, "ops")
            ce.flags |= F_ONEPACKET
        elif name == "pe":
            _set_option(opts, "pe")
            ce.pe_name = val[:16]
        elif name == "b":
            _set_option(opts, "sched-flags")
            sched_flags_arg = val
        elif name in ("mcast-group", "mcast-port", "mcast-ttl",
                      "sync-maxlen", "tun-info"):
            _set_option(opts, name)
        elif name == "tun-type":
            _set_option(opts, "tun-type")
            if val not in TUNNAMES:
                raise _Fail("illegal tunnel type specified")
            ce.tun_type = TUNNAMES.index(val)
        elif name == "tun-port":
            _set_option(opts, "tun-port")
            ce.tun_port = string_to_number(val, 1, 65535)
            if ce.tun_port == -1:
                raise _Fail("illegal tunnel port specified")
        elif name in ("tun-nocsum", "tun-csum", "tun-remcsum"):
            _set_option(opts, name)
            ce.tun_flags |= {"tun-nocsum": 0, "tun-csum": 1,
                             "tun-remcsum": 2}[name]
        else:
            raise _Fail(f"invalid option `{raw}'")
    if ce.cmd == C_TIMEOUT:
        if len(leftovers) < 3:
            raise _Fail("--set option requires 3 timeout values")
        vals = []
        for v in leftovers[:3]:
            t = string_to_number(v, 0, MAX_TIMEOUT)
            if t == -1:
                raise _Fail(f"invalid timeout value `{v}' specified")
            vals.append(t)
        ce.timeouts = vals
        leftovers = leftovers[3:]
    if leftovers:
        raise _Fail(f"unexpected argument {leftovers[0]}")
    if sched_flags_arg is not None:
        ce.flags &= ~F_SCHED_MASK
        ce.flags |= _sched_flags(ce.sched_name, sched_flags_arg)
    return ce, opts[0]


def _generic_opt_check(cmd, options):
    _matrix_check(_MATRIX[cmd], range(34), options,
                  f"'{CMDS[cmd - 1]}' command")


def _tunnel_opt_check(tun_type, options):
    _matrix_check(_TUN_MATRIX[tun_type], _TUN_OPTS, options,
                  f"'{TUNNAMES[tun_type]}' tunnel type")


def _matrix_check(row, option_bits, options, where):
    """ipvsadm's option matrices: ``row[j]`` says what option
    ``option_bits[j]`` must be ('+' required, 'x' illegal, '1' at most one
    of the '1' options) for ``where`` (a command or a tunnel type)."""
    last = None
    for j, k in enumerate(option_bits):
        if not options & (1 << k):
            if row[j] == "+":
                raise _Fail(f"You need to supply the '{OPTNAMES[k]}' option "
                            f"for the {where}")
        else:
            if row[j] == "x":
                raise _Fail(f"Illegal '{OPTNAMES[k]}' option with the {where}")
            if row[j] == "1":
                if last is None:
                    last = k
                    continue
                raise _Fail(f"The option '{OPTNAMES[k]}' conflicts with the "
                            f"'{OPTNAMES[last]}' option in the {where}")


_TUN_BITS = sum(1 << O[n] for n in ("tun-type", "tun-port", "tun-nocsum",
                                    "tun-csum", "tun-remcsum"))


def _zero(af):
    return ipaddress.IPv6Address(0) if af == AF_INET6 else \
        ipaddress.IPv4Address(0)


def parse_line(line):
    """One rule line -> (op, SvcReq|None, DestReq|None|dict), or None for a
    blank/comment line.  Raises IPVSError (errno None) for what ipvsadm
    itself refuses."""
    argv = [t for t in line.split() if t != "ipvsadm"]
    if not argv or argv[0].startswith("#"):
        return None
    try:
        return _parse_argv(argv)
    except _Fail as exc:
        raise IPVSError(str(exc), exc.err) from None


def _parse_argv(argv):
    ce, options = _parse_options(argv)
    _generic_opt_check(ce.cmd, options)
    if ce.cmd in (C_ADD, C_EDIT):
        if not ce.fwmark and not ce.port and not ce.flags & F_PERSISTENT:
            raise _Fail("Zero port specified for non-persistent service")
        if (ce.flags & F_ONEPACKET and not ce.fwmark
                and ce.protocol != IPPROTO_UDP):
            raise _Fail("One-Packet Scheduling is only for UDP virtual "
                        "services")
        if not ce.sched_name:
            ce.sched_name = "wlc"
    if ce.cmd in (C_ADDDEST, C_EDITDEST):
        if not ce.fwmark and ce.fwd in (FWD_TUNNEL, FWD_DROUTE):
            ce.d_port = ce.port
        if ce.d_af != ce.af and ce.fwd != FWD_TUNNEL:
            raise _Fail("Different address family is allowed only for "
                        "tunneling servers")
        if options & _TUN_BITS and ce.fwd != FWD_TUNNEL:
            raise _Fail("Tunnel options conflict with forward method")
        _tunnel_opt_check(ce.tun_type, options)
    cmd = ce.cmd
    if cmd in (C_LIST, C_SAVE, C_RESTORE, C_STARTD, C_STOPD):
        raise _Fail(f"'{CMDS[cmd - 1]}' is not a configuration rule; "
                    "the model refuses it in restore()")
    if cmd == C_FLUSH:
        return ("flush", None, None)
    if cmd == C_TIMEOUT:
        return ("set_timeout", dict(zip(("tcp", "tcp_fin", "udp"),
                                        ce.timeouts)), None)
    sreq = None
    if options & (1 << O["service-address"]):
        addr = ce.addr if not ce.fwmark else _zero(ce.af)
        sreq = SvcReq(ce.af, ce.protocol, addr, ce.port, ce.fwmark,
                      ce.sched_name, ce.flags, ce.timeout, ce.netmask,
                      ce.pe_name)
    if cmd == C_ZERO:
        return ("zero", sreq, None)
    op = {C_ADD: "add_service", C_EDIT: "edit_service",
          C_DEL: "del_service", C_ADDDEST: "add_dest",
          C_EDITDEST: "edit_dest", C_DELDEST: "del_dest"}[cmd]
    dreq = None
    if cmd in (C_ADDDEST, C_EDITDEST, C_DELDEST):
        dreq = DestReq(ce.d_af, ce.d_addr, ce.d_port, ce.fwd, ce.weight,
                       ce.u_thresh, ce.l_thresh, ce.tun_type, ce.tun_port,
                       ce.tun_flags)
    return (op, sreq, dreq)


def parse(text):
    """Parse every line; returns [(lineno, line, cmd)] or raises RuleError."""
    out = []
    for lineno, line in enumerate(text.splitlines(), 1):
        try:
            cmd = parse_line(line)
        except IPVSError as exc:
            raise RuleError(lineno, exc.message, line, exc.errno) from None
        if cmd is not None:
            out.append((lineno, line, cmd))
    return out


class _Overlay:
    """The netns as it will be after the lines checked so far: services
    added/deleted and destination sets, over the untouched real state."""

    def __init__(self, net):
        self.net = net
        self.svcs = {}          # key -> None (gone) or set of dest keys
        self.flushed = False
        self.sync_state = net.sync_state
        self.schedulers = net.schedulers

    def _real(self, key):
        if self.flushed:
            return None
        return self.net._find_key(key)

    def has_service(self, key):
        if key in self.svcs:
            return self.svcs[key] is not None
        return self._real(key) is not None

    def dests(self, key):
        if key not in self.svcs:
            svc = self._real(key)
            self.svcs[key] = (None if svc is None else
                              {(d.af, d.addr_bytes, d.port)
                               for d in svc.dests})
        return self.svcs[key]

    def has_dest(self, key, dkey):
        ds = self.dests(key)
        return ds is not None and dkey in ds

    def apply(self, op, sreq, dreq):
        if op == "flush":
            self.flushed = True
            self.svcs = {}
        elif op == "add_service":
            self.svcs[sreq.key] = set()
        elif op == "del_service":
            self.svcs[sreq.key] = None
        elif op == "add_dest":
            self.dests(sreq.key).add(dreq.key)
        elif op == "del_dest":
            self.dests(sreq.key).discard(dreq.key)


def restore(net, text):
    """Check every line (parse + kernel checks on an overlay), then apply
    all of them; on the first bad line raise RuleError and change nothing."""
    cmds = parse(text)
    view = _Overlay(net)
    for lineno, line, (op, sreq, dreq) in cmds:
        try:
            check(op, sreq, dreq, view)
        except IPVSError as exc:
            raise RuleError(lineno, exc.message, line, exc.errno) from None
        view.apply(op, sreq, dreq)
    net.config_gen += 1     # the packet path re-reads the configuration
    for lineno, line, (op, sreq, dreq) in cmds:
        net._apply(op, sreq, dreq)
        net.svc_table.run_pending()
    return len(cmds)
