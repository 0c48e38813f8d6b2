"""Property tests of the control plane (Hypothesis).

* random valid rule sets round-trip: ``restore(save())`` into a fresh netns
  gives the same ``save()`` text and the same listing;
* random invalid lines never change the state, wherever they sit in a file.
"""
import random

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, example, given, note, settings  # noqa
from hypothesis import strategies as st  # noqa

import ipvs_py  # noqa: E402
from tests.rulegen import rule_set  # noqa: E402

SETTINGS = settings(max_examples=60, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _blocks(saved):
    """The services of a save() text, each with its dest lines: the state,
    without the order.  The order itself is the kernel's: ipvsadm's sort
    compares addresses with a wrapping subtraction, so it is not a total
    order and its result depends on the table walk order, which depends on
    the random table keys (7.1) and on insertion order."""
    blocks, cur = [], None
    for line in saved.splitlines():
        if line.startswith("-A "):
            cur = [line]
            blocks.append(cur)
        else:
            cur.append(line)
    return sorted(tuple([b[0]] + sorted(b[1:])) for b in blocks)


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40),
       kernel=st.sampled_from(["7.1", "6.1"]))
@example(seed=0, n=1, kernel="7.1")
@example(seed=2, n=10, kernel="7.1")       # order differs, state does not
def test_restore_save_round_trip(seed, n, kernel):
    lines = rule_set(random.Random(seed), n, kernel=kernel,
                     big_fwmarks=False)
    net = ipvs_py.Netns(kernel=kernel, seed=seed)
    net.restore("\n".join(lines))
    saved = net.save()
    note(saved)
    again = ipvs_py.Netns(kernel=kernel, seed=seed + 1)
    again.restore(saved)
    assert _blocks(again.save()) == _blocks(saved)
    # a third restore from the second's text: same state again
    third = ipvs_py.Netns(kernel=kernel, seed=seed + 2)
    third.restore(again.save())
    assert _blocks(third.save()) == _blocks(saved)
    # restoring the same text on top of itself is refused (EEXIST) and
    # leaves the state as it was
    if saved:
        before = again.save()
        with pytest.raises(ipvs_py.RuleError):
            again.restore(saved)
        assert again.save() == before


def test_same_walk_order_same_text():
    """With the same table keys and insertion order the text is identical."""
    lines = rule_set(random.Random(5), 30, kernel="6.1", big_fwmarks=False)
    a = ipvs_py.Netns(kernel="6.1", svc_salt=3)
    a.restore("\n".join(lines))
    b = ipvs_py.Netns(kernel="6.1", svc_salt=3)
    b.restore("\n".join(lines))
    assert a.save() == b.save() and a.proc_ip_vs() == b.proc_ip_vs()


_TOKENS = ["-A", "-E", "-D", "-a", "-e", "-d", "-C", "-t", "-u", "-f",
           "--sctp-service", "-s", "-p", "-M", "-r", "-g", "-i", "-m", "-w",
           "-x", "-y", "-b", "-o", "--pe", "-6", "--tun-type", "--tun-port",
           "--tun-csum", "10.0.0.1:80", "10.0.0.1", "[2001:db8::1]:80",
           "10.0.0.256", "rr", "sh", "nosuch", "sip", "70000", "-1", "0",
           "5", "sh-port", "flag-1", "gue", "224.0.0.1", "x", ":80"]


def _snapshot(net):
    return (net.save(), net.proc_ip_vs(), net.list_text(thresholds=True),
            len(net.dest_trash), dict((k, list(v))
                                      for k, v in net.counters.items()))


@SETTINGS
@given(seed=st.integers(0, 2**32 - 1),
       bad=st.lists(st.sampled_from(_TOKENS), min_size=1, max_size=8),
       where=st.integers(0, 10))
@example(seed=1, bad=["-A", "-t", "10.0.0.256"], where=0)
def test_invalid_lines_change_nothing(seed, bad, where):
    rng = random.Random(seed)
    net = ipvs_py.Netns(seed=seed)
    net.restore("\n".join(rule_set(rng, 15, kernel="7.1")))
    before = _snapshot(net)
    good = rule_set(random.Random(seed + 7), 10, kernel="7.1")
    line = " ".join(bad)
    text = good[:where] + [line] + good[where:]
    try:
        net.restore("\n".join(text))
    except ipvs_py.RuleError as exc:
        note(f"refused line {exc.line}: {exc.message}")
        assert _snapshot(net) == before
        return
    # the whole file was valid after all: then the line itself is valid
    probe = ipvs_py.Netns(seed=seed)
    probe.restore("\n".join(rule_set(random.Random(seed), 15,
                                     kernel="7.1")))
    probe.restore("\n".join(text))


@SETTINGS
@given(ops=st.lists(st.tuples(st.sampled_from(["add", "del", "lf"]),
                              st.integers(0, 300), st.integers(-8, 8)),
                    max_size=120),
       init=st.booleans())
def test_svc_table_invariants(ops, init):
    """Whatever adds, deletes and svc_lfactor writes happen, the 7.1 table
    keeps every service findable in bucket ``hash_key & mask`` of the
    current table (whose id the hash_key carries), its size is what the
    kernel's sizing policy gives, and no resize stays pending."""
    from ipvs_py.svctable import thresholds
    net = ipvs_py.Netns(seed=len(ops), init_net=init)
    live = set()
    for op, i, lf in ops:
        fw = i % 7 == 0
        ident = dict(fwmark=i + 1) if fw else dict(
            protocol="tcp", addr=f"10.{i >> 8}.{i & 255}.1", port=80)
        if op == "lf":
            net.sysctl["svc_lfactor"] = lf
        elif op == "add" and i not in live:
            net.add_service(**ident)
            live.add(i)
        elif op == "del" and i in live:
            net.del_service(**ident)
            live.discard(i)
        t = net.svc_table
        assert len(t) == len(live)
        assert not t.resize_queued
        if not live:
            assert t.t is None
            continue
        tab = t.t
        u, l_ = thresholds(tab.size, tab.lfactor)
        assert (tab.u_thresh, tab.l_thresh) == (u, l_)
        for svc in t.walk():
            assert svc.hash_key & 0x80000000 == tab.table_id
            assert svc in tab.buckets[svc.hash_key & tab.mask]
        for j in live:
            fwj = j % 7 == 0
            got = (net.get_service(fwmark=j + 1) if fwj else
                   net.get_service("tcp", f"10.{j >> 8}.{j & 255}.1", 80))
            assert got is not None
