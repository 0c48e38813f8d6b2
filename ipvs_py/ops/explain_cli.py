"""``ipvs-py explain``: the configuration from a rules file or a live
kernel, optional traffic before, then one explained packet.

With ``--netns`` the services, destinations and their ActiveConn/InActConn
come from the kernel over netlink (:func:`ipvs_py.netlink.read_kernel`), so
lc/wlc/sed/nq and thresholds see the kernel's counts, and the sysctls the
packet path reads from /proc/sys/net/ipv4/vs; the kernel's own
connection entries for the client (from /proc/net/ip_vs_conn) are listed
too.  What netlink cannot give -- rr/wrr positions, lblc caches, the
connection table itself -- starts fresh in the model, and the output says
so.
"""
import ipaddress
import json
import sys

from ..errors import RuleError
from .explain import ExplainError
from .target import parse_endpoint


def add_arguments(parser):
    """The explain subcommand's arguments."""
    src = parser.add_mutually_exclusive_group(required=True)
    src.add_argument("--rules", metavar="FILE",
                     help="ipvsadm-save/restore rules (- for stdin)")
    src.add_argument("--netns", metavar="NAME",
                     help="read the live kernel configuration of this "
                          "namespace (netlink)")
    parser.add_argument("proto", metavar="PROTO",
                        help="tcp, udp or sctp")
    parser.add_argument("client", metavar="CLIENT:PORT")
    parser.add_argument("vip", metavar="VIP:PORT")
    parser.add_argument("--fwmark", type=int, default=0, metavar="N",
                        help="the packet's firewall mark (default: 0)")
    parser.add_argument("--flags", default="S",
                        help="TCP flag letters, or an SCTP chunk name "
                             "(default: S, a new connection)")
    parser.add_argument("--pcap", metavar="FILE",
                        help="replay this capture first, so its "
                             "connections and templates exist")
    parser.add_argument("--json", action="store_true",
                        help="JSON (schema: docs/operators.md)")


def _endpoint(text, what):
    _, addr, port = parse_endpoint(text, what)
    if not 1 <= port <= 65535:
        raise ExplainError(f"bad {what} {text!r}: port must be 1..65535")
    return addr, port


def _kernel_net(netns):
    """The kernel's configuration as a Netns whose engine starts with the
    kernel's connection counters."""
    from ..netlink import read_kernel
    from .nsfiles import read_packet_sysctls
    net = read_kernel(netns)
    for name, value in read_packet_sysctls(netns):
        net.sysctl[name] = value
    counts = [(d, d.activeconns, d.inactconns)
              for svc in net.services() for d in svc.dests]
    path = net._path()
    path.sync_config()
    for d, active, inactive in counts:
        path.e.set_dest_conns(path._dest_id(d), active, inactive)
    path.sync_back()
    return net


def _kernel_entries(netns, client_addr):
    """The kernel's conn entries and templates of this client address."""
    from .nsfiles import read_in_netns
    from .snapshot import parse_ip_vs_conn
    text = read_in_netns(netns, ["/proc/net/ip_vs_conn"])[
        "/proc/net/ip_vs_conn"] or ""
    want = ipaddress.ip_address(client_addr)
    return [c for c in parse_ip_vs_conn(text)
            if ipaddress.ip_address(c["client"]["address"]) == want]


def _kernel_verdict(doc, proto, cport, vaddr, vport):
    """A line when the kernel already holds this flow's entry (or a
    template of the client for the VIP): that entry, not the model's fresh
    decision, is where the kernel sends the packet."""
    vip = (ipaddress.ip_address(vaddr), vport)
    out = []
    for c in doc["kernel_entries"]:
        if (c["protocol"].lower() != proto.lower() or
                (ipaddress.ip_address(c["virtual"]["address"]),
                 c["virtual"]["port"]) != vip):
            continue
        dest = f"{c['destination']['address']}:{c['destination']['port']}"
        if not c["template"] and c["client"]["port"] == cport:
            out.append(f"kernel    the kernel already has this flow's "
                       f"connection: it forwards to {dest} (the model's "
                       f"answer above is what a new connection would get)")
        elif c["template"]:
            out.append(f"kernel    the kernel has a persistence template "
                       f"of this client: new connections go to {dest}")
    return out


def run(args):
    """Entry point of ``ipvs-py explain``; returns the exit status."""
    caddr, cport = _endpoint(args.client, "client")
    vaddr, vport = _endpoint(args.vip, "VIP")
    if args.netns is not None:
        net = _kernel_net(args.netns)
    else:
        from ..netlink import kernel_profile
        from ..netns import Netns
        name = "<stdin>" if args.rules == "-" else args.rules
        text = sys.stdin.read() if args.rules == "-" else \
            open(args.rules).read()
        net = Netns(kernel=kernel_profile())
        try:
            net.restore(text)
        except RuleError as exc:
            raise ExplainError(f"{name}:{exc.line}: {exc.message}") from None
    if args.pcap:
        from ..workload.pcap import read_pcap
        batch, _ = read_pcap(args.pcap)
        net.replay(batch)
    ex = net.explain(args.proto, caddr, cport, vaddr, vport, args.flags,
                     args.fwmark)
    doc = ex.as_dict()
    if args.netns is not None:
        doc["kernel_entries"] = _kernel_entries(args.netns, caddr)
        doc["steps"].append(
            "note      from the live kernel: services, dests and their "
            "ActiveConn/InActConn; rr/wrr positions, lblc/lblcr caches and "
            "the connection table start fresh in the model")
        for c in doc["kernel_entries"]:
            kind = "template" if c["template"] else c["state"]
            doc["steps"].append(
                f"kernel    {c['protocol']} {c['client']['address']}:"
                f"{c['client']['port']} -> {c['destination']['address']}:"
                f"{c['destination']['port']} {kind}, expires in "
                f"{c['expires']} s")
        doc["steps"] += _kernel_verdict(doc, args.proto, cport, vaddr, vport)
    if args.json:
        json.dump(doc, sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        sys.stdout.write("\n".join(doc["steps"]) + "\n")
    return 0
