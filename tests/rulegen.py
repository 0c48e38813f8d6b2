"""Random ipvsadm rule sets for the differential and property tests.

``rule_set(rng, n)`` proposes ipvsadm-restore lines (services of every
kind, destinations of every forwarding method and tunnel type, edits,
deletes and re-adds that exercise the dest_trash) and keeps those that a
model netns accepts, so every returned line is valid in order.  Addresses
are drawn from ranges 2^31 apart so that ipvsadm's wrapping comparisons
matter, fwmarks likewise.
"""
import ipaddress
import random

import ipvs_py

SCHEDS = ("rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq",
          "fo", "ovf", "mh", "twos")
V4_NETS = ("10.0.", "10.1.", "172.16.", "192.168.", "200.1.", "100.64.",
           "1.2.", "130.0.")
V6_NETS = ("2001:db8::", "2001:db8:1::", "fd00::", "2a00:1::", "fe00:1::")


def _v4(rng):
    return f"{rng.choice(V4_NETS)}{rng.randrange(0, 4)}.{rng.randrange(1, 255)}"


def _v6(rng):
    return f"{rng.choice(V6_NETS)}{rng.randrange(1, 0xffff):x}"


def _svc_ident(rng, known, big_fwmarks=True):
    if known and rng.random() < 0.7:
        return rng.choice(known)
    kind = rng.random()
    if kind < 0.15:
        fws = [rng.randrange(1, 100), rng.randrange(1, 2**31)]
        if big_fwmarks:
            # ipvsadm prints these with %d, negative: no round trip
            fws.append(rng.randrange(2**31, 2**32))
        fw = rng.choice(fws)
        return f"-f {fw}" + (" -6" if rng.random() < 0.3 else "")
    proto = rng.choice(["-t", "-t", "-u", "--sctp-service"])
    port = rng.choice([80, 443, 53, 8080, 21, 0, rng.randrange(1, 65536)])
    if rng.random() < 0.3:
        return f"{proto} [{_v6(rng)}]:{port}"
    return f"{proto} {_v4(rng)}:{port}"


def _svc_opts(rng, ident):
    sched = rng.choice(SCHEDS)
    opts = [f"-s {sched}"]
    if rng.random() < 0.4 or ident.endswith(":0"):
        opts.append("-p" if rng.random() < 0.3 else
                    f"-p {rng.randrange(1, 86400)}")
        if rng.random() < 0.4:
            if "[" in ident or ident.endswith("-6"):
                opts.append(f"-M {rng.randrange(1, 129)}")
            else:
                opts.append("-M " + str(ipaddress.IPv4Address(
                    (0xFFFFFFFF << rng.randrange(0, 33)) & 0xFFFFFFFF)))
        if rng.random() < 0.2:
            opts.append("--pe sip")
    if rng.random() < 0.2 and (ident.startswith("-u") or
                               ident.startswith("-f")):
        opts.append("-o")
    if rng.random() < 0.3:
        if sched in ("sh", "mh"):
            opts.append("-b " + rng.choice([f"{sched}-port", f"{sched}-fallback",
                                            f"{sched}-fallback,{sched}-port"]))
        else:
            opts.append("-b " + ",".join(rng.sample(
                ["flag-1", "flag-2", "flag-3"], rng.randrange(1, 4))))
    rng.shuffle(opts)
    return " ".join(opts)


def _dest_opts(rng, ident):
    v6svc = "[" in ident or ident.endswith("-6")
    fwd = rng.choice(["-m", "-g", "-i", "-m"])
    v6 = v6svc if fwd != "-i" or rng.random() < 0.7 else not v6svc
    addr = f"[{_v6(rng)}]" if v6 else _v4(rng)
    port = rng.choice(["", f":{rng.randrange(0, 65536)}", ":80"])
    opts = [f"-r {addr}{port}", fwd]
    if rng.random() < 0.7:
        opts.append(f"-w {rng.randrange(0, 65536)}")
    if rng.random() < 0.3:
        u = rng.randrange(0, 100000)
        opts.append(f"-x {u}")
        if rng.random() < 0.5:
            opts.append(f"-y {rng.randrange(0, u + 1)}")
    if fwd == "-i" and rng.random() < 0.6:
        tt = rng.choice(["ipip", "gue", "gre"])
        opts.append(f"--tun-type {tt}")
        if tt == "gue":
            opts.append(f"--tun-port {rng.randrange(1, 65536)}")
            opts.append(rng.choice(["", "--tun-nocsum", "--tun-csum",
                                    "--tun-remcsum"]))
        elif tt == "gre":
            opts.append(rng.choice(["", "--tun-nocsum", "--tun-csum"]))
    return " ".join(o for o in opts if o)


def propose(rng, net, big_fwmarks=True):
    """One candidate line (possibly invalid) given the model's state."""
    svcs = net.services(sort=False)
    known = []
    for s in svcs:
        if s.fwmark:
            known.append(f"-f {s.fwmark}" + (" -6" if s.af == 10 else ""))
        else:
            p = {6: "-t", 17: "-u", 132: "--sctp-service"}[s.protocol]
            a = f"[{s.addr}]" if s.af == 10 else str(s.addr)
            known.append(f"{p} {a}:{s.port}")
    r = rng.random()
    if r < 0.25 or not svcs:
        ident = _svc_ident(rng, [], big_fwmarks)
        return f"-A {ident} {_svc_opts(rng, ident)}"
    ident = rng.choice(known)
    if r < 0.3:
        return f"-E {ident} {_svc_opts(rng, ident)}"
    if r < 0.34:
        return f"-D {ident}"
    svc = svcs[known.index(ident)]
    if r < 0.8 or not svc.dests:
        return f"-a {ident} {_dest_opts(rng, ident)}"
    d = rng.choice(svc.dests)
    da = f"[{d.addr}]:{d.port}" if d.af == 10 else f"{d.addr}:{d.port}"
    if r < 0.88:
        opts = _dest_opts(rng, ident).split(" ", 2)
        rest = opts[2] if len(opts) > 2 else ""
        fwd = {0: "-m", 2: "-i", 3: "-g"}[d.fwd_method]
        return f"-e {ident} -r {da} {fwd} {rest}".strip()
    return f"-d {ident} -r {da}"


def rule_set(rng, n, kernel="6.1", big_fwmarks=True):
    """``n`` lines that a fresh netns accepts one after the other."""
    net = ipvs_py.Netns(kernel=kernel, seed=rng.randrange(1 << 30))
    lines = []
    tries = 0
    while len(lines) < n and tries < n * 20:
        tries += 1
        line = propose(rng, net, big_fwmarks)
        try:
            net.restore(line)
        except ipvs_py.RuleError:
            continue
        lines.append(line)
    return lines


if __name__ == "__main__":
    print("\n".join(rule_set(random.Random(1), 40)))
