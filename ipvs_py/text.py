"""Byte-exact texts: ipvsadm 1.31 listings and the kernel's /proc files.

Sources: ipvsadm.c (list_all, print_title, print_service_entry,
print_largenum, print_sched_flags, addrport_to_anyname), libipvs.c
(ipvs_cmp_services, ipvs_cmp_dests), net/netfilter/ipvs/ip_vs_ctl.c
(ip_vs_info_seq_show, ip_vs_stats_show, ip_vs_status_show).

Two details decide the order ipvsadm prints in, and both are reproduced:

* libipvs compares addresses as ``int r = ntohl(a) - ntohl(b)``: an unsigned
  difference read as a signed int, so addresses 2^31 or more apart compare
  the "wrong" way and the comparison is not even transitive (same for
  fwmarks);
* it sorts with glibc's ``qsort``, which (glibc 2.36, Debian 12) is a
  top-down merge sort (msort.c).  With a non-transitive comparison the
  result depends on the input, i.e. on the kernel's table walk order.
"""
import ipaddress

from .dest import FWD_NAMES, FWD_TUNNEL, TUN_GUE, TUN_GRE, TUN_IPIP, TUN_NAMES
from .schedulers.sched import sched_flags_text
from .service import (AF_INET6, F_ONEPACKET, F_PERSISTENT, F_SCHED_MASK,
                      PROTO_NAMES, IPPROTO_TCP, IPPROTO_UDP, IPPROTO_SCTP)

__all__ = ["save", "list_all", "proc_ip_vs", "proc_ip_vs_stats", "status",
           "sort_services", "sort_dests", "inet_ntop"]

IP_VS_VERSION = "1.2.1"          # NVERSION(IP_VS_VERSION_CODE 0x010201)
_TUN_FLAGS = ("-c", "+c", "r+c")
_TUN_FLAG_OPTS = ("--tun-nocsum", "--tun-csum", "--tun-remcsum")


# -- C integer helpers --------------------------------------------------
def _s32(v):
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v & 0x80000000 else v


def _cmp_words(a_bytes, b_bytes):
    """libipvs: r = ntohl(a[i]) - ntohl(b[i]) as int, word by word."""
    r = 0
    for i in range(0, len(a_bytes), 4):
        r = _s32(int.from_bytes(a_bytes[i:i + 4], "big")
                 - int.from_bytes(b_bytes[i:i + 4], "big"))
        if r:
            return r
    return r


def _cmp_services(s1, s2):
    """ipvs_cmp_services()"""
    r = _s32(s1.fwmark - s2.fwmark)
    if r:
        return r
    r = s1.af - s2.af
    if r:
        return r
    r = s1.protocol - s2.protocol
    if r:
        return r
    if s1.af == AF_INET6:
        r = _cmp_words(s1.addr_bytes, s2.addr_bytes)
    else:
        r = _s32(int.from_bytes(s1.addr_bytes, "big")
                 - int.from_bytes(s2.addr_bytes, "big"))
    if r:
        return r
    return s1.port - s2.port


def _cmp_dests(d1, d2):
    """ipvs_cmp_dests(): note it uses d1's family for both."""
    if d1.af == AF_INET6:
        r = _cmp_words(d1.addr_bytes, (d2.addr_bytes + bytes(16))[:16])
    else:
        r = _s32(int.from_bytes(d1.addr_bytes[:4], "big")
                 - int.from_bytes(d2.addr_bytes[:4], "big"))
    if r:
        return r
    return d1.port - d2.port


def _msort(items, cmp):
    """glibc msort_with_tmp(): n1 = n/2, merge taking from the left run
    while cmp(left, right) <= 0."""
    n = len(items)
    if n <= 1:
        return list(items)
    n1 = n // 2
    left = _msort(items[:n1], cmp)
    right = _msort(items[n1:], cmp)
    out = []
    i = j = 0
    while i < len(left) and j < len(right):
        if cmp(left[i], right[j]) <= 0:
            out.append(left[i])
            i += 1
        else:
            out.append(right[j])
            j += 1
    out.extend(left[i:])
    out.extend(right[j:])
    return out


def sort_services(svcs):
    """ipvs_sort_services(): svcs in the kernel's dump order."""
    return _msort(svcs, _cmp_services)


def sort_dests(dests):
    """ipvs_sort_dests(): dests in the kernel's list order."""
    return _msort(dests, _cmp_dests)


# -- addresses ------------------------------------------------------------
def _ntop6(b):
    """glibc inet_ntop6(): longest run (>= 2) of zero words becomes "::"
    (first one on ties); ::a.b.c.d and ::ffff:a.b.c.d for the embedded
    IPv4 forms."""
    words = [int.from_bytes(b[i:i + 2], "big") for i in range(0, 16, 2)]
    best_base, best_len, cur_base, cur_len = -1, 0, -1, 0
    for i, w in enumerate(words):
        if w == 0:
            if cur_base == -1:
                cur_base, cur_len = i, 1
            else:
                cur_len += 1
        elif cur_base != -1:
            if best_base == -1 or cur_len > best_len:
                best_base, best_len = cur_base, cur_len
            cur_base = -1
    if cur_base != -1 and (best_base == -1 or cur_len > best_len):
        best_base, best_len = cur_base, cur_len
    if best_base != -1 and best_len < 2:
        best_base = -1
    out = []
    i = 0
    while i < 8:
        if best_base != -1 and best_base <= i < best_base + best_len:
            if i == best_base:
                out.append(":")
            i += 1
            continue
        if i:
            out.append(":")
        if (i == 6 and best_base == 0
                and (best_len == 6 or (best_len == 5 and words[5] == 0xFFFF))):
            out.append(".".join(str(x) for x in b[12:16]))
            i = 8
            break
        out.append("%x" % words[i])
        i += 1
    if best_base != -1 and best_base + best_len == 8:
        out.append(":")
    return "".join(out)


def inet_ntop(af, addr_bytes):
    if af == AF_INET6:
        return _ntop6(addr_bytes)
    return ".".join(str(x) for x in addr_bytes)


def _addrport(af, addr_bytes, port):
    """addrport_to_anyname() with FMT_NUMERIC."""
    if af == AF_INET6:
        return f"[{_ntop6(addr_bytes)}]:{port}"
    return f"{inet_ntop(af, addr_bytes)}:{port}"


def _pI6(b):
    """The kernel's %pI6: eight 4-digit lower-case hex words."""
    return ":".join(b[i:i + 2].hex() for i in range(0, 16, 2))


# -- ipvsadm listings ---------------------------------------------------
def _largenum(i, exact):
    """print_largenum()"""
    if exact:
        s = str(i)
        return s.rjust(9 if len(s) <= 8 else len(s) + 1)
    if i < 100000000:
        return "%9d" % i
    if i < 1000000000:
        return "%8dK" % (i // 1000)
    if i < 100000000000:
        return "%8dM" % (i // 1000000)
    if i < 100000000000000:
        return "%8dG" % (i // 1000000000)
    return "%8dT" % (i // 1000000000000)


def _sched_flags(svc):
    """print_sched_flags()"""
    return sched_flags_text(svc.sched_name, svc.flags)


def _v4mask(netmask):
    return str(ipaddress.IPv4Address(netmask & 0xFFFFFFFF))


_OPT_PROTO = {IPPROTO_TCP: "-t", IPPROTO_UDP: "-u",
              IPPROTO_SCTP: "--sctp-service"}


def _svc_name(svc, rule):
    if svc.fwmark:
        fw = _s32(svc.fwmark)                       # printed with %d
        if rule:
            return f"-f {fw} -6" if svc.af == AF_INET6 else f"-f {fw}"
        return f"FWM  {fw} IPv6" if svc.af == AF_INET6 else f"FWM  {fw}"
    vname = _addrport(svc.af, svc.addr_bytes, svc.port)
    if rule:
        return f"{_OPT_PROTO.get(svc.protocol, '--xxx-service')} {vname}"
    name = "%-4s %s" % (PROTO_NAMES.get(svc.protocol, "?"), vname)
    return name if svc.af == AF_INET6 else name[:33]


def _title(fmt):
    if fmt == "stats":
        return ("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
                % ("Prot LocalAddress:Port", "Conns", "InPkts", "OutPkts",
                   "InBytes", "OutBytes"))
    if fmt == "rate":
        return ("%-33s %8s %8s %8s %8s %8s\n  -> RemoteAddress:Port\n"
                % ("Prot LocalAddress:Port", "CPS", "InPPS", "OutPPS",
                   "InBPS", "OutBPS"))
    if fmt == "thresholds":
        return ("%-33s %-10s %-10s %-10s %-10s\n  -> RemoteAddress:Port\n"
                % ("Prot LocalAddress:Port", "Uthreshold", "Lthreshold",
                   "ActiveConn", "InActConn"))
    if fmt == "persistent_conn":
        return ("%-33s %-9s %-11s %-10s %-10s\n  -> RemoteAddress:Port\n"
                % ("Prot LocalAddress:Port", "Weight", "PersistConn",
                   "ActiveConn", "InActConn"))
    if fmt == "rule":
        return ""
    return ("Prot LocalAddress:Port Scheduler Flags\n"
            "  -> RemoteAddress:Port           Forward Weight ActiveConn "
            "InActConn\n")


def _u32(v):
    return v & 0xFFFFFFFF


def _service_entry(svc, fmt, exact, out):
    """print_service_entry()"""
    name = _svc_name(svc, fmt == "rule")
    line = []
    if fmt == "rule":
        line.append(f"-A {name} -s {svc.sched_name}")
        if svc.flags & F_PERSISTENT:
            line.append(f" -p {_u32(svc.timeout)}")
            if svc.af != AF_INET6 and svc.netmask != 0xFFFFFFFF:
                line.append(f" -M {_v4mask(svc.netmask)}")
            if svc.af == AF_INET6 and svc.netmask != 128:
                line.append(f" -M {_s32(svc.netmask)}")
        if svc.pe_name:
            line.append(f" --pe {svc.pe_name}")
        if svc.flags & F_ONEPACKET:
            line.append(" -o")
        if svc.flags & F_SCHED_MASK:
            line.append(" -b " + _sched_flags(svc))
    elif fmt in ("stats", "rate"):
        st = svc.stats.shown()
        keys = (("conns", "inpkts", "outpkts", "inbytes", "outbytes")
                if fmt == "stats" else
                ("cps", "inpps", "outpps", "inbps", "outbps"))
        line.append("%-33s" % name)
        line.extend(_largenum(st[k], exact) for k in keys)
    else:
        line.append(f"{name} {svc.sched_name}")
        if svc.flags & F_SCHED_MASK:
            line.append(f" ({_sched_flags(svc)})")
        if svc.flags & F_PERSISTENT:
            line.append(f" persistent {_u32(svc.timeout)}")
            if svc.af != AF_INET6 and svc.netmask != 0xFFFFFFFF:
                line.append(f" mask {_v4mask(svc.netmask)}")
            if svc.af == AF_INET6 and svc.netmask != 128:
                line.append(f" mask {_s32(svc.netmask)}")
            if svc.pe_name:
                line.append(f" pe {svc.pe_name}")
        if svc.flags & F_ONEPACKET:
            line.append(" ops")
    line.append("\n")
    out.append("".join(line))

    for d in sort_dests(list(svc.dests)):
        dname = _addrport(d.af, d.addr_bytes, d.port)
        if d.af != AF_INET6:
            dname = dname[:28]
        if fmt == "rule":
            out.append(_dest_rule(name, dname, d))
        elif fmt == "stats":
            st = d.stats.shown()
            out.append("  -> %-28s" % dname + "".join(
                _largenum(st[k], exact) for k in
                ("conns", "inpkts", "outpkts", "inbytes", "outbytes")) + "\n")
        elif fmt == "rate":
            st = d.stats.shown()
            out.append("  -> %-28s %8d %8d %8d" % (dname, st["cps"],
                                                   st["inpps"], st["outpps"])
                       + _largenum(st["inbps"], exact)
                       + _largenum(st["outbps"], exact) + "\n")
        elif fmt == "thresholds":
            out.append("  -> %-28s %-10d %-10d %-10d %-10d\n" % (
                dname, _u32(d.u_thresh), _u32(d.l_thresh),
                _u32(d.activeconns), _u32(d.inactconns)))
        elif fmt == "persistent_conn":
            out.append("  -> %-28s %-9d %-11d %-10d %-10d\n" % (
                dname, _u32(d.weight), _u32(d.persistconns),
                _u32(d.activeconns), _u32(d.inactconns)))
        else:
            out.append("  -> %-28s %-7s %-6d %-10d %-10d\n" % (
                dname, FWD_NAMES[d.fwd_method], _s32(d.weight),
                _u32(d.activeconns), _u32(d.inactconns)))


def _fwd_switch(m):
    return {0: "-m", FWD_TUNNEL: "-i"}.get(m, "-g")


def _dest_rule(svc_name, dname, d):
    """print_tunnel_rule() / the plain -a line of ipvsadm -S."""
    sw = _fwd_switch(d.fwd_method)
    w = _s32(d.weight)
    if d.fwd_method != FWD_TUNNEL:
        return f"-a {svc_name} -r {dname} {sw} -w {w}\n"
    if d.tun_type == TUN_GRE:
        return (f"-a {svc_name} -r {dname} {sw} -w {w} --tun-type gre "
                f"{_TUN_FLAG_OPTS[d.tun_flags]}\n")
    if d.tun_type == TUN_GUE:
        return (f"-a {svc_name} -r {dname} {sw} -w {w} --tun-type gue "
                f"--tun-port {d.tun_port} {_TUN_FLAG_OPTS[d.tun_flags]}\n")
    if d.tun_type == TUN_IPIP:
        return f"-a {svc_name} -r {dname} {sw} -w {w} --tun-type ipip\n"
    return f"-a {svc_name} -r {dname} {sw} -w {w}\n"


def _dump_order(net):
    return list(net.svc_table.walk())


def list_all(net, stats=False, rate=False, thresholds=False,
             persistent_conn=False, exact=False, rule=False):
    """list_all(): ``ipvsadm -Ln`` and friends; ``rule`` is ``-S -n``."""
    fmt = ("rule" if rule else "stats" if stats else "rate" if rate
           else "thresholds" if thresholds
           else "persistent_conn" if persistent_conn else "plain")
    out = []
    if not rule:
        out.append(f"IP Virtual Server version {IP_VS_VERSION} "
                   f"(size={net.conn_tab_size})\n")
    out.append(_title(fmt))
    for svc in sort_services(_dump_order(net)):
        _service_entry(svc, fmt, exact, out)
    return "".join(out)


def save(net):
    """``ipvsadm -S -n``"""
    return list_all(net, rule=True)


# -- /proc ------------------------------------------------------------------
def proc_ip_vs(net):
    """ip_vs_info_seq_show() over the table walk."""
    out = [f"IP Virtual Server version {IP_VS_VERSION} "
           f"(size={net.conn_tab_size})\n",
           "Prot LocalAddress:Port Scheduler Flags\n",
           "  -> RemoteAddress:Port Forward Weight ActiveConn InActConn\n"]
    hz = net.hz
    for svc in _dump_order(net):
        sched = svc.sched_name
        ops = "ops " if svc.flags & F_ONEPACKET else ""
        if not svc.fwmark:
            proto = PROTO_NAMES.get(svc.protocol, "IP")
            if svc.af == AF_INET6:
                out.append("%s  [%s]:%04X %s " % (proto, _pI6(svc.addr_bytes),
                                                  svc.port, sched))
            else:
                out.append("%s  %08X:%04X %s %s " % (
                    proto, int.from_bytes(svc.addr_bytes, "big"), svc.port,
                    sched, ops))
        else:
            out.append("FWM  %08X %s %s" % (svc.fwmark, sched, ops))
        if svc.flags & F_PERSISTENT:
            # svc->timeout is in ticks; svc->netmask is the raw __be32
            if svc.af == AF_INET6:
                nm = int.from_bytes(svc.netmask.to_bytes(4, "little"), "big")
            else:
                nm = svc.netmask
            out.append("persistent %d %08X\n" % (
                _s32(svc.timeout * hz), nm & 0xFFFFFFFF))
        else:
            out.append("\n")
        for d in svc.dests:
            if d.af == AF_INET6:
                out.append("  -> [%s]:%04X      %-7s %-6d %-10d %-10d\n" % (
                    _pI6(d.addr_bytes), d.port, FWD_NAMES[d.fwd_method],
                    _s32(d.weight), _s32(d.activeconns),
                    max(_s32(d.activeconns + d.inactconns)
                        - _s32(d.activeconns), 0)))
            else:
                out.append("  -> %08X:%04X      %-7s %-6d %-10d %-10d\n" % (
                    int.from_bytes(d.addr_bytes, "big"), d.port,
                    FWD_NAMES[d.fwd_method], _s32(d.weight),
                    _s32(d.activeconns),
                    max(_s32(d.activeconns + d.inactconns)
                        - _s32(d.activeconns), 0)))
    return "".join(out)


def proc_ip_vs_stats(net):
    """ip_vs_stats_show()"""
    s = net.tot_stats.shown()
    return ("   Total Incoming Outgoing         Incoming         Outgoing\n"
            "   Conns  Packets  Packets            Bytes            Bytes\n"
            "%8X %8X %8X %16X %16X\n\n"
            " Conns/s   Pkts/s   Pkts/s          Bytes/s          Bytes/s\n"
            "%8X %8X %8X %16X %16X\n" % (
                s["conns"], s["inpkts"], s["outpkts"], s["inbytes"],
                s["outbytes"], s["cps"], s["inpps"], s["outpps"], s["inbps"],
                s["outbps"]))


def proc_ip_vs_conn(net):
    """ip_vs_conn_seq_show() header; the rows come with issue 6."""
    rows = getattr(net, "conn_rows", None)
    head = ("Pro FromIP   FPrt ToIP     TPrt DestIP   DPrt State       "
            "Expires PEName PEData\n")
    return head + ("".join(rows()) if rows else "")


def _hist_rows(label, counts, out):
    total = sum(counts)
    nonempty = total - counts[0]
    out.append("%s buckets empty:\t%d (%d%%)\n"
               % (label, counts[0], counts[0] * 100 // max(total, 1)))
    for i in range(1, 8):
        if counts[i]:
            out.append("%s buckets len-%d:\t%d (%d%%)\n"
                       % (label, i, counts[i],
                          counts[i] * 100 // max(nonempty, 1)))


def status(net):
    """ip_vs_status_show() (9a9ccef907a7)."""
    out = []
    nconn = net.conn_count
    csize = net.conn_tab_size
    if csize:
        lf = net.conn_tab_lfactor
        out.append("Conns:\t%d\n" % nconn)
        out.append("Conn buckets:\t%d (%d bits, lfactor %d)\n"
                   % (csize, csize.bit_length() - 1, lf))
    else:
        out.append("Conns:\t%d\n" % nconn)
        out.append("Conn buckets:\t0 (0 bits, lfactor 0)\n")
    if nconn:
        _hist_rows("Conn", net.conn_chain_lengths(), out)
    t = net.svc_table.t
    n = len(net.svc_table)
    out.append("Services:\t%d\n" % n)
    if t is None:
        out.append("Service buckets:\t0 (0 bits, lfactor 0)\n")
    else:
        out.append("Service buckets:\t%d (%d bits, lfactor %d)\n"
                   % (t.size, t.bits, t.lfactor))
    if n:
        _hist_rows("Service", net.svc_table.chain_lengths(), out)
    out.append("Stats thread slots:\t%d (max %d)\n"
               % (net.est_kt_count, net.est_max_threads))
    out.append("Stats chain max len:\t%d\n" % net.est_chain_max)
    # IPVS_EST_CHAIN_FACTOR (48 on 64-bit) * IPVS_EST_NTICKS (50)
    out.append("Stats thread ests:\t%d\n" % (net.est_chain_max * 48 * 50))
    return "".join(out)


def _conn_name(addr_text, port):
    """addrport_to_anyname() with FMT_NUMERIC: a.b.c.d:port, [v6]:port."""
    import ipaddress as _ip
    if ":" in addr_text:
        return "[%s]:%d" % (addr_text, port)
    return "%s:%d" % (_ip.IPv4Address(int(addr_text, 16)), port)


def list_conn(net, persistent_conn=False):
    """``ipvsadm -Lnc``: ipvsadm's print_conn() over /proc/net/ip_vs_conn."""
    out = ["IPVS connection entries\n"]
    if persistent_conn:
        out.append("pro expire %-11s %-18s %-18s %-18s %-16s %s\n"
                   % ("state", "source", "virtual", "destination",
                      "pe name", "pe_data"))
    else:
        out.append("pro expire %-11s %-18s %-18s %s\n"
                   % ("state", "source", "virtual", "destination"))
    for row in net.conn_rows():
        f = row.split()
        proto, ca, cp, va, vp, da, dp, state, exp = f[:9]
        expires = int(exp)
        out.append("%-3s %-6s %-11s %-18s %-18s %s\n" % (
            proto, "%02d:%02d" % (expires // 60, expires % 60), state,
            _conn_name(ca, int(cp, 16)), _conn_name(va, int(vp, 16)),
            _conn_name(da, int(dp, 16))))
    return "".join(out)
