"""Hypothesis: explain() makes the decision packet() makes, for every
scheduler, on generated configurations and packet sequences -- including
dest edits, deletions and the sysctls that change which conn or template
is used -- and its JSON always validates against EXPLAIN_SCHEMA.

TCP, UDP and fwmark services.  Two namespaces built alike (same seed,
same rules) take the same steps; one is asked to explain every client
packet, the other just gets packet().  Verdicts must agree packet by packet, and the conn tables
must be equal at the end (explain changes state exactly as packet()).
Separate module: wheel-build runs skip hypothesis."""
import pytest

hyp = pytest.importorskip("hypothesis")
jsonschema = pytest.importorskip("jsonschema")
from hypothesis import given, settings, strategies as st  # noqa: E402

import ipvs_py  # noqa: E402
from ipvs_py.ops.explain import EXPLAIN_SCHEMA  # noqa: E402
from ipvs_py.service import SCHEDULERS  # noqa: E402

VALIDATOR = jsonschema.Draft202012Validator(EXPLAIN_SCHEMA)

dest_rules = st.lists(st.tuples(st.integers(0, 4),        # weight
                                st.sampled_from([0, 0, 2])),  # u_thresh
                      min_size=1, max_size=4)
events = st.lists(st.one_of(
    st.tuples(st.just("pkt"), st.integers(0, 5), st.integers(1000, 1002),
              st.sampled_from(["S", "S", "A", "FA", "R"]),
              st.sampled_from([0, 0, 1, 20, 130])),
    st.tuples(st.just("weight"), st.integers(0, 3), st.integers(0, 3)),
    st.tuples(st.just("del"), st.integers(0, 3)),
    st.tuples(st.just("sysctl"),
              st.sampled_from(["expire_nodest_conn",
                               "expire_quiescent_template"]),
              st.integers(0, 1))), min_size=1, max_size=25)


# the service under test: TCP, UDP, or a fwmark service (its packets
# carry fwmark 1)
SERVICES = {"tcp": "-t 10.0.0.1:80", "udp": "-u 10.0.0.1:80", "fwm": "-f 1"}


def _build(sched, dests, persistent, flags, kind):
    net = ipvs_py.Netns(seed=7)
    opt = f" -b {flags}" if flags else ""
    svc = SERVICES[kind]
    rules = [f"-A {svc} -s {sched}{opt}" + (" -p 60" if persistent else "")]
    for i, (w, u) in enumerate(dests):
        rules.append(f"-a {svc} -r 10.0.1.{i + 1}:80 -m -w {w}"
                     + (f" -x {u}" if u else ""))
    net.restore("\n".join(rules) + "\n")
    return net


def _step(net, ev):
    svc = net.services()[0]
    if ev[0] == "weight":
        live = [d for d in svc.dests]
        if live:
            d = live[ev[1] % len(live)]
            net.edit_dest(svc, str(d.addr), d.port, weight=ev[2],
                          fwd_method="masq")
    elif ev[0] == "del":
        live = [d for d in svc.dests]
        if len(live) > 1:
            d = live[ev[1] % len(live)]
            net.del_dest(svc, str(d.addr), d.port)
    elif ev[0] == "sysctl":
        net.sysctl[ev[1]] = ev[2]


@pytest.mark.parametrize("sched", SCHEDULERS)
@settings(max_examples=60, deadline=None)
@given(dests=dest_rules,
       persistent=st.booleans(), evs=events,
       flags=st.sampled_from(["", "sh-fallback", "sh-port",
                              "sh-fallback,sh-port"]),
       kind=st.sampled_from(sorted(SERVICES)))
def test_explain_decides_as_packet(sched, dests, persistent, evs, flags,
                                   kind):
    if sched not in ("sh", "mh"):
        flags = ""
    elif sched == "mh":
        flags = flags.replace("sh-", "mh-")
    a = _build(sched, dests, persistent, flags, kind)
    b = _build(sched, dests, persistent, flags, kind)
    proto = "udp" if kind == "udp" else "tcp"
    for ev in evs:
        if ev[0] != "pkt":
            _step(a, ev)
            _step(b, ev)
            continue
        _, client, port, fl, wait = ev
        a.advance(wait)
        b.advance(wait)
        args = (proto, f"198.18.0.{client + 1}", port, "10.0.0.1", 80, fl,
                1 if kind == "fwm" else 0)
        ex = a.explain(*args)
        v = b.packet(*args)
        assert (ex.action, ex.dest) == (v.action, v.dest), ex.text()
        VALIDATOR.validate(ex.as_dict())
        sched_doc = ex.as_dict()["scheduler"]
        if sched_doc is not None:
            chosen = [d["dest"] for d in sched_doc["dests"] if d["chosen"]]
            want = [sched_doc["chosen"]] if sched_doc["chosen"] else []
            assert chosen == want
    # (walk order follows each table's random hash key)
    assert sorted(a.conn_rows()) == sorted(b.conn_rows())
    assert a.list_text(stats=True) == b.list_text(stats=True)
