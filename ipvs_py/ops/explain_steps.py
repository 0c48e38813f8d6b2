"""Names the raw steps of the packet path's decision trace
(``include/ipvs_trace.h``) and writes the explain document and its text
lines; :func:`ipvs_py.ops.explain.explain` runs the packet."""
import ipaddress

from .._core.conntab import SCTP_STATES, TCP_STATES
from ..dest import DEST_F_OVERLOAD
from ..service import AF_INET6
from .target import PROTO_NAMES

#: the explain document's format number (EXPLAIN_SCHEMA "format")
FORMAT = 1

# include/ipvs_trace.h enum ipvs_trace_kind, in order from 1
KINDS = ("conn_hit", "conn_miss", "conn_reuse", "conn_nodest", "no_sched",
         "svc", "todrop", "tpl_hit", "tpl_miss", "tpl_invalid", "tpl_new",
         "sched", "sched_row", "sched_slot", "sched_result", "sched_cb",
         "port_zero", "conn_new", "verdict")
# include/ipvs_sched.h enum ipvs_sched_kind
SCHED_KINDS = (None, "rr", "wrr", "lc", "wlc", "sed", "nq", "fo", "ovf",
               "sh", "dh", "mh")
LOOKUPS = ("fwmark", "proto_addr_port", "ftp_data", "port_zero")
ACTIONS = ("pass", "forward", "drop", "error")
_NONE32 = 0xFFFFFFFF

# how each scheduler decides, in one line (the kernel's ip_vs_<name>.c)
BASIS = {
    "rr": "the next dest after the last one chosen with weight > 0 and "
          "not overloaded",
    "wrr": "the next dest after the last one chosen with weight >= the "
           "current weight cw (cw drops by di at the end of each pass)",
    "lc": "the least overhead (activeconns*256 + inactconns) among dests "
          "with weight > 0, not overloaded; the first on ties",
    "wlc": "the least overhead/weight (overhead = activeconns*256 + "
           "inactconns); the first on ties",
    "sed": "the least (activeconns + 1)/weight; the first on ties",
    "nq": "the first idle dest (activeconns 0), else the least "
          "(activeconns + 1)/weight",
    "fo": "the highest weight among dests not overloaded",
    "ovf": "the highest weight among dests whose activeconns <= weight",
    "sh": "the dest in the source-hash table slot of the client address "
          "(and port with sh-port); sh-fallback probes on if unusable",
    "dh": "the dest in the destination-hash table slot of the VIP",
    "mh": "the dest in the Maglev lookup slot of the client address (and "
          "port with mh-port); mh-fallback probes on if unusable",
    "twos": "two weighted random draws; the one with the lower "
            "overhead/weight wins",
    "lblc": "the dest cached for the destination address while usable and "
            "not overloaded, else the wlc choice (then cached)",
    "lblcr": "the least loaded member of the destination address's set "
             "while not overloaded, else the wlc choice (added to the set)",
}

def _endpoint(d):
    return None if d is None else {"address": str(d.addr), "port": d.port}


def _ep_text(ep):
    if ep is None:
        return "none"
    a = ep["address"]
    return f"[{a}]:{ep['port']}" if ":" in a else f"{a}:{ep['port']}"


def _state_name(proto, state):
    if proto == 6:
        return TCP_STATES[state] if state < len(TCP_STATES) else str(state)
    if proto == 132:
        return SCTP_STATES[state] if state < len(SCTP_STATES) else str(state)
    return "UDP"


def _svc_text(svc):
    if svc is None:
        return None
    if svc.fwmark:
        return f"FWM {svc.fwmark}" + (" IPv6" if svc.af == AF_INET6 else "")
    a = f"[{svc.addr}]" if svc.af == AF_INET6 else str(svc.addr)
    return f"{PROTO_NAMES.get(svc.protocol, svc.protocol)} {a}:{svc.port}"


class StepNamer:
    """Turns the engine's raw steps into the explain document."""

    def __init__(self, net, path, proto, packet, lookups, steps, lost,
                 py_trace):
        self.net, self.path, self.proto = net, path, proto
        self.hz = net.hz
        self.packet, self.lookups = packet, lookups
        self.steps = [(KINDS[s[0] - 1],) + tuple(s[1:]) for s in steps]
        self.lost, self.py_trace = lost, py_trace
        self.lines = []

    def dest(self, did):
        return None if did < 0 else _endpoint(self.path._dests[did])

    def secs(self, jiffies):
        return round(jiffies / self.hz, 3)

    def say(self, tag, msg):
        self.lines.append(f"{tag:<10}{msg}".rstrip())

    def document(self):
        pk = self.packet
        self.say("packet", f"{pk['protocol'].upper()} "
                 f"{_ep_text(pk['client'])} -> {_ep_text(pk['vip'])}"
                 f"{' fwmark %d' % pk['fwmark'] if pk['fwmark'] else ''} "
                 f"flags {pk['flags'] or '-'} at t={pk['time']:g}s")
        conn = {"found": False, "id": None, "dest": None, "state": None,
                "expires_in": None, "outcome": "none"}
        svc_doc = {"ran": False, "lookups": [], "matched": None,
                   "service": None}
        persist = None
        sched = None
        verdict = None
        by_kind = {}
        for s in self.steps:
            by_kind.setdefault(s[0], []).append(s)
        for s in self.steps:
            k = s[0]
            if k == "conn_hit":
                _, cid, did, state, flags, left, ctl, _z = s
                tpl = " (controlled by template %d)" % ctl \
                    if ctl != _NONE32 else ""
                conn.update(found=True, id=cid, dest=self.dest(did),
                            state=_state_name(self.proto, state),
                            expires_in=self.secs(left), outcome="used")
                self.say("conn", f"existing connection {cid} to "
                         f"{_ep_text(conn['dest'])}, {conn['state']}, "
                         f"expires in {conn['expires_in']:g} s{tpl}")
            elif k == "conn_miss":
                self.say("conn", "no connection for this client address "
                         "and port" + (" (the cport-0 retry for NO_CPORT "
                                       "conns ran too)" if s[1] else ""))
            elif k == "conn_reuse":
                conn["outcome"] = "rescheduled"
                why = ("expire_nodest_conn is on and its dest has weight 0"
                       if s[2] == 1 else "the old connection is closing "
                       "(conn_reuse_mode: is_new_conn_expected)")
                self.say("reuse", f"a new connection on the port of "
                         f"connection {s[1]}: scheduled afresh because {why}"
                         + ("; the old one expires now" if s[3] else
                            "; the old one stays (it controls conns)"))
            elif k == "conn_nodest":
                if s[3]:
                    conn["outcome"] = "expired_nodest"
                    self.say("nodest", f"connection {s[1]}'s dest "
                             f"{_ep_text(self.dest(s[2]))} was removed; "
                             f"expire_nodest_conn=1 expires it and the "
                             f"packet is scheduled afresh")
                else:
                    conn["outcome"] = "dropped_nodest"
                    self.say("nodest", f"connection {s[1]}'s dest "
                             f"{_ep_text(self.dest(s[2]))} was removed; "
                             f"with expire_nodest_conn=0 the packet is "
                             f"dropped until the connection times out")
            elif k == "no_sched":
                self.say("sched", "this packet may not create a connection "
                         + ("(TCP without SYN, or with RST; sloppy_tcp=0)"
                            if s[1] == 1 else "(SCTP other than INIT)"))
            elif k == "svc":
                svc_doc = self.service(s)
            elif k == "todrop":
                self.say("defense", "drop_packet defense dropped it "
                         "(ip_vs_todrop)")
            elif k in ("tpl_hit", "tpl_miss", "tpl_invalid", "tpl_new"):
                persist = self.template(s, persist)
            elif k == "sched":
                sched = self.c_sched(s, by_kind)
            elif k == "sched_cb":
                sched = self.py_sched(s)
            elif k == "port_zero":
                self.say("sched", "a port-zero match on a non-persistent "
                         "service: the kernel refuses (port zero is only "
                         "supported in persistent services)")
            elif k == "conn_new":
                self.say("conn", f"new connection {s[1]} to "
                         f"{_ep_text(self.dest(s[2]))}" +
                         (f" under template {s[6]}" if s[6] != _NONE32
                          else ""))
            elif k == "verdict":
                verdict = self.verdict(s, conn, svc_doc)
        return {"format": FORMAT, "packet": self.packet,
                "service_lookup": svc_doc, "connection": conn,
                "persistence": persist, "scheduler": sched,
                "verdict": verdict, "steps": self.lines,
                "trace_lost": self.lost}

    def service(self, s):
        _, kind, si = s[:3]
        svc = self.path._svcs[si] if si >= 0 else None
        looked = [{"lookup": name, "ran": ran, "counter": counter,
                   "value": value} for name, ran, counter, value
                  in self.lookups]
        parts = []
        for x in looked:
            parts.append(f"{x['lookup']} " + ("ran" if x["ran"] else
                         f"skipped ({x['counter']}={x['value']})"))
        matched = LOOKUPS[kind] if kind >= 0 else None
        name = _svc_text(svc)
        self.say("service", "; ".join(parts) if parts else "lookups: none")
        if svc is None:
            self.say("", "no virtual service matches: the packet is not "
                     "IPVS's (it passes)")
        else:
            extra = (f", persistent {svc.timeout} s" if svc.flags & 1
                     else "")
            self.say("", f"matched by {matched}: {name} (scheduler "
                     f"{svc.sched_name}{extra})")
        return {"ran": True, "lookups": looked, "matched": matched,
                "service": name}

    def template(self, s, persist):
        k = s[0]
        doc = persist or {"template": None, "dest": None,
                          "expires_in": None, "controls": None,
                          "timeout": None, "outcome": "none"}
        if k == "tpl_hit":
            doc.update(template=s[1], dest=self.dest(s[2]),
                       expires_in=self.secs(s[5]), controls=s[6],
                       outcome="used")
            self.say("persist", f"template {s[1]} for this client -> "
                     f"{_ep_text(doc['dest'])}, expires in "
                     f"{doc['expires_in']:g} s, controls {s[6]} "
                     f"connection(s)")
        elif k == "tpl_miss":
            self.say("persist", "no persistence template for this client "
                     "(network): the scheduler decides")
        elif k == "tpl_invalid":
            doc["outcome"] = ("invalid_dest" if s[3] == 1
                              else "invalid_quiescent")
            why = ("its dest is gone" if s[3] == 1 else
                   "expire_quiescent_template=1 and its dest has weight 0")
            self.say("", f"template {s[1]} is not used: {why}; it is "
                     f"made unfindable and the scheduler decides")
        elif k == "tpl_new":
            doc.update(template=s[1], dest=self.dest(s[2]),
                       timeout=self.secs(s[5]), outcome="created"
                       if doc["outcome"] == "none" else doc["outcome"])
            self.say("persist", f"new template {s[1]} -> "
                     f"{_ep_text(doc['dest'])} for {doc['timeout']:g} s")
        return doc

    def c_sched(self, s, by_kind):
        _, kind, nrows, pos, cw, mw, di, svc_flags = s
        name = SCHED_KINDS[kind]
        rows = by_kind.get("sched_row", [])
        res = by_kind.get("sched_result", [(None, -1, -1, pos, cw)])[0]
        slot = by_kind.get("sched_slot")
        row_dest = {r[1]: r[2] for r in rows}
        chosen_row = res[1]
        dests = [self.row(name, did, w, fl, act, inact, uth,
                          r == chosen_row)
                 for (_, r, did, w, fl, act, inact, uth) in rows]
        before, after = self.positions(name, pos, cw, mw, di, res, row_dest)
        notes = []
        slot_doc = None
        if slot:
            _, idx, srow, fold, hport = slot[0][:5]
            size = 4093 if name == "mh" else 256
            slot_doc = {"index": idx, "table_size": size,
                        "dest": self.dest(row_dest.get(srow, -1))
                        if srow >= 0 else None}
            key = (f"fold {fold & _NONE32:#010x}" if ":" in
                   self.packet["client"]["address"]
                   else str(ipaddress.IPv4Address(fold & _NONE32)))
            notes.append(f"hashed {key}" + (f" port {hport}" if hport
                                            else "") +
                         f" -> slot {idx} of {size} -> "
                         f"{_ep_text(slot_doc['dest'])}")
            if srow >= 0 and srow != chosen_row:
                notes.append("that dest is unusable (weight 0 or "
                             "overloaded): " + ("the fallback probe chose "
                             "another" if chosen_row >= 0 else
                             "no fallback, no dest"))
        chosen = self.dest(res[2]) if chosen_row >= 0 else None
        self.sched_lines(name, "c", before, after, dests, notes, chosen)
        return {"name": name, "engine": "c", "basis": BASIS[name],
                "state_before": before, "state_after": after,
                "dests": dests, "slot": slot_doc, "notes": notes,
                "chosen": chosen}

    def positions(self, name, pos, cw, mw, di, res, row_dest):
        def at(row):
            return "list head" if row < 0 else _ep_text(
                self.dest(row_dest.get(row, -1)))
        if name == "rr":
            return {"last": at(pos)}, {"last": at(res[3])}
        if name == "wrr":
            return ({"last": at(pos), "cw": cw, "mw": mw, "di": di},
                    {"last": at(res[3]), "cw": res[4], "mw": mw, "di": di})
        return {}, {}

    def row(self, name, did, weight, flags, active, inact, uth, chosen):
        active = active - (1 << 32) if active >= 1 << 31 else active
        inact = inact - (1 << 32) if inact >= 1 << 31 else inact
        overhead = (active << 8) + inact
        score = None
        if weight > 0:
            if name in ("wlc", "twos", "lblc", "lblcr"):
                score = round(overhead / weight, 4)
            elif name in ("sed", "nq"):
                score = round((active + 1) / weight, 4)
        if name == "lc":
            score = overhead
        return {"dest": self.dest(did), "weight": weight,
                "activeconns": active, "inactconns": inact,
                "overhead": overhead,
                "overloaded": bool(flags & DEST_F_OVERLOAD),
                "u_threshold": uth, "score": score, "chosen": chosen}

    def sched_lines(self, name, engine, before, after, dests, notes, chosen):
        head = f"{name}: {BASIS[name]}"
        self.say("scheduler", head)
        if before:
            self.say("", "before: " + ", ".join(f"{k} {v}" for k, v
                                                in before.items()))
        if dests:
            self.say("", f"  {'dest':<22}{'weight':>7}{'active':>8}"
                     f"{'inact':>7}{'overhead':>9}{'score':>9}  flags")
            for d in dests:
                sc = "-" if d["score"] is None else f"{d['score']:g}"
                fl = "OVERLOAD" if d["overloaded"] else ""
                if d["u_threshold"]:
                    fl += f" u_thresh {d['u_threshold']}"
                self.say("", f"{'*' if d['chosen'] else ' '} "
                         f"{_ep_text(d['dest']):<22}{d['weight']:>7}"
                         f"{d['activeconns']:>8}{d['inactconns']:>7}"
                         f"{d['overhead']:>9}{sc:>9}  {fl.strip()}")
        for n in notes:
            self.say("", n)
        self.say("", f"chose {_ep_text(chosen)}" if chosen else
                 "no dest available (every dest weight 0 or overloaded)")
        if after and after != before:
            self.say("", "after: " + ", ".join(f"{k} {v}" for k, v
                                               in after.items()))

    def py_sched(self, s):
        _, si, did = s[:3]
        svc = self.path._svcs[si]
        name = svc.sched_name
        rows = next((t["rows"] for t in self.py_trace
                     if t["step"] == "rows"), [])
        dests = [self.row(name, rid, w, fl, a, i, u, rid == did)
                 for rid, w, fl, a, i, u in rows]
        notes = []
        for t in self.py_trace:
            if t["step"] == "twos":
                (c1, w1, oh1), (c2, w2, oh2) = t["choices"]
                notes.append(f"draws {t['draws'][0]} and {t['draws'][1]} "
                             f"of {t['total']}: {_ep_text(_endpoint(c1))} "
                             f"(overhead {oh1}, weight {w1}) vs "
                             f"{_ep_text(_endpoint(c2))} (overhead {oh2}, "
                             f"weight {w2}); choice {t['picked']} wins")
            elif t["step"] == "lblc_entry":
                if t["dest"] is None:
                    notes.append(f"no cache entry for {t['key']}")
                else:
                    notes.append(
                        f"cache entry {t['key']} -> "
                        f"{_ep_text(_endpoint(t['dest']))}: " +
                        ("used" if t["usable"] and not t["overloaded"] else
                         "overloaded" if t["overloaded"] else
                         "unusable (weight 0 or removed)"))
            elif t["step"] == "lblcr_set":
                if not t["members"]:
                    notes.append(f"no dest set for {t['key']}")
                else:
                    names = ", ".join(_ep_text(_endpoint(m))
                                      for m in t["members"])
                    notes.append(f"dest set of {t['key']}: {names}; least "
                                 f"loaded {_ep_text(_endpoint(t['least']))}"
                                 + (" is overloaded" if t["overloaded"]
                                    else ""))
            elif t["step"] == "least_loaded":
                notes.append("wlc fallback: " +
                             _ep_text(_endpoint(t["dest"])))
        chosen = self.dest(did)
        self.sched_lines(name, "python", {}, {}, dests, notes, chosen)
        return {"name": name, "engine": "python", "basis": BASIS.get(
                    name, "the scheduler's own rule"),
                "state_before": {}, "state_after": {}, "dests": dests,
                "slot": None, "notes": notes, "chosen": chosen}

    def verdict(self, s, conn, svc_doc):
        _, action, did, cid, state, timeout, ctl, live = s
        act = ACTIONS[action]
        dest = self.dest(did)
        st = _state_name(self.proto, state) if cid >= 0 and live else None
        if act == "forward":
            reason = ("existing connection" if conn["outcome"] == "used"
                      else "new connection")
        elif act == "drop":
            reason = ("its connection's dest was removed"
                      if conn["outcome"] == "dropped_nodest"
                      else "no usable dest (ICMP unreachable) or defense")
        else:
            reason = ("no service matches" if svc_doc["ran"] and
                      svc_doc["service"] is None else
                      "not for IPVS or may not start a connection")
        tail = ""
        if act == "forward" and cid >= 0:
            tail = (f" (conn {cid}, {st}, expires in "
                    f"{self.secs(timeout):g} s)" if live else
                    f" (conn {cid}, one-packet: freed at once)")
        self.say("verdict", f"{act}" + (f" to {_ep_text(dest)}" if dest
                                        else "") + f": {reason}{tail}")
        return {"action": act, "dest": dest,
                "conn": cid if cid >= 0 else None, "state": st,
                "timeout": self.secs(timeout) if cid >= 0 and live
                else None, "reason": reason}
