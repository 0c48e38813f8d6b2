"""Plan and apply the fewest kernel changes that make one config another.

A plan is an ordered list of :class:`Step`.  Order rules (the kernel's own
constraints): a service is added before its destinations; destinations are
removed before their service; within a kept service, removals come before
edits and edits before additions.  Existing objects are edited in place
(IPVS_CMD_SET_*), never deleted and re-added, so live connections keep
their destination.  Services the desired config does not name are left
alone unless ``prune`` is asked for.

:func:`apply` runs a plan; if the kernel rejects a step, the steps already
done are undone in reverse order and :class:`SyncError` names the failing
step and the kernel's error, so the kernel is left as it was.
"""
import dataclasses

from .. import text
from ..dest import FWD_TUNNEL, TUN_GRE, TUN_GUE, TUN_IPIP
from ..service import F_ONEPACKET, F_PERSISTENT, F_SCHED_MASK, AF_INET6
from .config import normalise_model_svc
from .errors import KernelRejected, NetlinkError

_FWD_SWITCH = {0: "-m", FWD_TUNNEL: "-i"}
_TUN_FLAGS = {0: "--tun-nocsum", 1: "--tun-csum", 2: "--tun-remcsum"}


@dataclasses.dataclass(frozen=True)
class Step:
    """One kernel change; ``before`` is the object as it was (for undo)."""

    op: str                      # add/edit/del-service, add/edit/del-dest,
    svc: object                  # set-timeouts; ServiceConfig (None for
    dest: object = None          # set-timeouts); DestConfig for dest ops
    before: object = None        # the replaced ServiceConfig/DestConfig,
    timeouts: tuple = None       # or timeouts; (tcp, tcpfin, udp) to set

    def run(self, conn):
        """Send this change to the kernel of ``conn``."""
        if self.op == "set-timeouts":
            tcp, tcpfin, udp = self.timeouts
            conn.set_timeouts(tcp=tcp, tcpfin=tcpfin, udp=udp)
            return
        s = self.svc.to_netlink()
        if self.op == "add-service":
            conn.new_service(s)
        elif self.op == "edit-service":
            conn.set_service(s)
        elif self.op == "del-service":
            conn.del_service(s)
        elif self.op == "add-dest":
            conn.new_dest(s, self.dest.to_netlink())
        elif self.op == "edit-dest":
            conn.set_dest(s, self.dest.to_netlink())
        elif self.op == "del-dest":
            conn.del_dest(s, self.dest.to_netlink())
        else:
            raise ValueError(f"unknown step {self.op!r}")

    def undo(self):
        """The step that reverses this one."""
        if self.op == "set-timeouts":
            return Step("set-timeouts", None, timeouts=self.before,
                        before=self.timeouts)
        if self.op == "add-service":
            return Step("del-service", self.svc)
        if self.op == "del-service":
            return Step("add-service", self.svc)
        if self.op == "edit-service":
            return Step("edit-service", self.before, before=self.svc)
        if self.op == "add-dest":
            return Step("del-dest", self.svc, self.dest)
        if self.op == "del-dest":
            return Step("add-dest", self.svc, self.dest)
        return Step("edit-dest", self.svc, self.before, before=self.dest)

    def ipvsadm(self):
        """This step as the equivalent ipvsadm command line."""
        if self.op == "set-timeouts":
            return "ipvsadm --set %d %d %d" % self.timeouts
        name = text._svc_name(self.svc, True)      # noqa: SLF001 (one package)
        if self.op.endswith("service"):
            verb = {"add-service": "-A", "edit-service": "-E",
                    "del-service": "-D"}[self.op]
            if verb == "-D":
                return f"ipvsadm -D {name}"
            return f"ipvsadm {verb} {name}{_svc_opts(self.svc)}"
        verb = {"add-dest": "-a", "edit-dest": "-e", "del-dest": "-d"}[self.op]
        d = self.dest
        dname = text._addrport(d.af, d.addr_bytes, d.port)  # noqa: SLF001
        if verb == "-d":
            return f"ipvsadm -d {name} -r {dname}"
        return f"ipvsadm {verb} {name} -r {dname}{_dest_opts(d)}"

    def __str__(self):
        return self.ipvsadm()


def _svc_opts(s):
    out = f" -s {s.sched_name}"
    if s.flags & F_PERSISTENT:
        out += f" -p {s.timeout}"
        if s.af != AF_INET6 and s.netmask != 0xFFFFFFFF:
            out += f" -M {text._v4mask(s.netmask)}"       # noqa: SLF001
        elif s.af == AF_INET6 and s.netmask != 128:
            out += f" -M {s.netmask}"
    if s.pe_name:
        out += f" --pe {s.pe_name}"
    if s.flags & F_ONEPACKET:
        out += " -o"
    if s.flags & F_SCHED_MASK:
        out += " -b " + text._sched_flags(s)             # noqa: SLF001
    return out


def _dest_opts(d):
    out = f" {_FWD_SWITCH.get(d.fwd_method, '-g')} -w {d.weight}"
    if d.u_thresh:
        out += f" -x {d.u_thresh}"
    if d.l_thresh:
        out += f" -y {d.l_thresh}"
    if d.fwd_method == FWD_TUNNEL:
        if d.tun_type == TUN_GUE:
            out += f" --tun-type gue --tun-port {d.tun_port} {_TUN_FLAGS[d.tun_flags]}"
        elif d.tun_type == TUN_GRE:
            out += f" --tun-type gre {_TUN_FLAGS[d.tun_flags]}"
        elif d.tun_type == TUN_IPIP:
            out += " --tun-type ipip"
    return out


def _apply_pipelined(conn, steps):
    # IPVS_CMD_SET_CONFIG has no encoder in the pipelined codec: the
    # timeouts step (first in a sync plan) goes on its own, ahead of the
    # pipeline, and is undone with the rest if anything fails
    config = [s for s in steps if s.op == "set-timeouts"]
    steps = [s for s in steps if s.op != "set-timeouts"]
    for i, step in enumerate(config):
        try:
            step.run(conn)
        except KernelRejected as exc:
            raise SyncError(step, exc, i, _undo(conn, config[:i]),
                            index=i) from exc
    reqs = []
    services = {}   # id(ServiceConfig) -> (dict, key nest): built once per
    for s in steps:  # service, not per dest (8,000 of a 2,000 x 4 sync's steps)
        svc, key = services.get(id(s.svc)) or (None, None)
        if svc is None:
            svc = s.svc.to_netlink()
            key = conn.service_key(svc)
            services[id(s.svc)] = (svc, key)
        dest = s.dest.to_netlink() if s.dest else None
        reqs.append(conn.request(s.op, svc, dest, svc_key=key))
    codes = conn.run_many(reqs)
    failed = [i for i, c in enumerate(codes) if c]
    if not failed:
        return len(config) + len(steps)
    first = failed[0]
    done = config + [s for s, c in zip(steps, codes) if not c]
    errors = _undo(conn, done)
    cause = KernelRejected(str(reqs[first][2]), codes[first])
    raise SyncError(steps[first], cause, len(done), errors,
                    index=len(config) + first)


def _undo(conn, done):
    """Undo ``done`` in reverse order; the (step, error) pairs that failed."""
    errors = []
    for prev in reversed(done):
        try:
            prev.undo().run(conn)
        except KernelRejected as undo_exc:
            errors.append((prev.undo(), undo_exc))
    return errors


class SyncError(NetlinkError):
    """A plan step failed; the kernel was rolled back (see ``rolled_back``)."""

    def __init__(self, step, cause, done, rollback_errors, index=None):
        self.step, self.cause = step, cause
        self.done = done
        self.index = done if index is None else index
        self.rollback_errors = rollback_errors
        self.rolled_back = not rollback_errors
        state = ("the kernel was left as it was"
                 if self.rolled_back else
                 "ROLLBACK INCOMPLETE: " + "; ".join(
                     f"{s} -> {e}" for s, e in rollback_errors))
        super().__init__(f"step {self.index + 1} failed: {step.ipvsadm()}: "
                         f"{cause}; {done} applied step(s) undone, {state}")


def _sorted(keys):
    return sorted(keys, key=repr)


def plan(current, desired, *, prune=False, graceful=False, drained=None):
    """The ordered steps that turn ``current`` into ``desired`` (Configs).

    ``prune``: also delete services ``desired`` does not name.
    ``graceful``: a destination to remove is first set to weight 0 and only
    deleted once ``drained(svc_key, dest_key)`` says it has no connections
    (sync again later to finish the job).
    """
    cur = {k: (normalise_model_svc(s), d) for k, (s, d) in current.items()}
    want = {k: (normalise_model_svc(s), d) for k, (s, d) in desired.items()}
    steps = []

    def remove_dest(svc, dest):
        if graceful and drained is not None and \
                not drained(svc.key, dest.key):
            if dest.weight != 0:
                steps.append(Step("edit-dest", svc,
                                  dataclasses.replace(dest, weight=0),
                                  before=dest))
            return
        steps.append(Step("del-dest", svc, dest))

    for key in _sorted(want):
        wsvc, wdests = want[key]
        if key not in cur:
            steps.append(Step("add-service", wsvc))
            steps.extend(Step("add-dest", wsvc, wdests[dk])
                         for dk in _sorted(wdests))
            continue
        csvc, cdests = cur[key]
        if csvc != wsvc:
            steps.append(Step("edit-service", wsvc, before=csvc))
        for dk in _sorted(set(cdests) - set(wdests)):
            remove_dest(wsvc, cdests[dk])
        for dk in _sorted(set(cdests) & set(wdests)):
            if cdests[dk] != wdests[dk]:
                steps.append(Step("edit-dest", wsvc, wdests[dk],
                                  before=cdests[dk]))
        for dk in _sorted(set(wdests) - set(cdests)):
            steps.append(Step("add-dest", wsvc, wdests[dk]))
    if prune:
        for key in _sorted(set(cur) - set(want)):
            csvc, cdests = cur[key]
            for dk in _sorted(cdests):
                steps.append(Step("del-dest", csvc, cdests[dk]))
            steps.append(Step("del-service", csvc))
    return steps


#: ipvsadm --set order; the model's keys for them
TIMEOUT_KEYS = ("tcp", "tcp_fin", "udp")


def plan_timeouts(current, declared):
    """The step (a list of zero or one) that gives the kernel the declared
    timeouts.  ``current``: the kernel's {"tcp", "tcp_fin", "udp"};
    ``declared``: the non-zero subset a rules file or set_timeouts() named.
    Undeclared timeouts travel as 0, which the kernel reads as "unchanged",
    so a rules file without ``--set`` never resets tuned timeouts; the undo
    carries the old values of exactly the timeouts changed."""
    want = tuple(declared.get(k, 0) if declared.get(k, 0) != current[k] else 0
                 for k in TIMEOUT_KEYS)
    if not any(want):
        return []
    before = tuple(current[k] if w else 0
                   for k, w in zip(TIMEOUT_KEYS, want))
    return [Step("set-timeouts", None, timeouts=want, before=before)]


def apply(conn, steps):
    """Run ``steps`` in order; on a kernel error undo what was done and
    raise :class:`SyncError`.  Returns the number of steps applied.

    A connection with ``run_many`` (IPVSConnection) gets the steps
    pipelined: the kernel answers each request on its own, so after a
    failure every step it did apply, before or after the failing one, is
    undone (in reverse order) and the first failure is reported.
    """
    if hasattr(conn, "run_many"):
        return _apply_pipelined(conn, steps)
    done = []
    for step in steps:
        try:
            step.run(conn)
        except KernelRejected as exc:
            raise SyncError(step, exc, len(done), _undo(conn, done)) from exc
        done.append(step)
    return len(done)
