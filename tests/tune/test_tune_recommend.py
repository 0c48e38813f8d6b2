"""Recommendation rules and the Pareto front on synthetic rows, against
brute-force references."""
import dataclasses

import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import example, given, note, strategies as st  # noqa: E402

from ipvs_py.tune.recommend import (apply_lines, cost_of,  # noqa: E402
                                    dominates, pareto_front, points_of,
                                    recommend)


@dataclasses.dataclass
class FakeRow:
    total_bytes: int
    lookup_ns: float
    walk_mean: float
    lfactor: object = 0
    conn_tab_bits: int = 20


def brute_front(points):
    return [i for i, p in enumerate(points)
            if not any(dominates(q, p) for q in points)]


small = st.integers(0, 6)        # few distinct values: many ties
points = st.lists(st.tuples(small, small), max_size=25)


@given(points)
@example([(1, 1), (1, 1), (2, 0), (0, 2), (2, 2)])
def test_pareto_front_equals_brute_force(pts):
    assert pareto_front(pts) == brute_front(pts)


rows_st = st.lists(st.builds(FakeRow, st.integers(1, 8), small.map(float),
                             small.map(float)), min_size=1, max_size=17)
target = st.one_of(st.none(), st.integers(1, 8))


@given(rows_st, target, target, target)
def test_recommend_matches_brute_force(rows, budget, max_ns, max_chain):
    rec = recommend(rows, memory_budget=budget, max_lookup_ns=max_ns,
                    max_chain=max_chain)
    if budget is None and max_ns is None and max_chain is None:
        assert rec is None
        return
    ok = [i for i, r in enumerate(rows)
          if (budget is None or r.total_bytes <= budget)
          and (max_ns is None or r.lookup_ns <= max_ns)
          and (max_chain is None or r.walk_mean <= max_chain)]
    note(f"ok={ok} rec={rec}")
    if not ok:
        assert rec.index is None and "no setting" in rec.reason
        return
    cost = cost_of(max_ns, max_chain)
    pick = rows[rec.index]
    assert rec.index in ok
    if max_ns is None and max_chain is None:
        # cheapest lookup within the budget, then the smaller memory
        assert (cost(pick), pick.total_bytes) == min(
            (cost(rows[i]), rows[i].total_bytes) for i in ok)
    else:
        # smallest memory meeting the target, then the cheaper lookup
        assert (pick.total_bytes, cost(pick)) == min(
            (rows[i].total_bytes, cost(rows[i])) for i in ok)
    # Pareto-optimal in (memory, cost): among all rows with at most one
    # lookup target, among those within max_chain with both
    pool = (range(len(rows)) if max_ns is None or max_chain is None
            else [i for i, r in enumerate(rows) if r.walk_mean <= max_chain])
    pts = points_of([rows[i] for i in pool], cost)
    assert list(pool).index(rec.index) in brute_front(pts)


@pytest.mark.parametrize("kw", [dict(memory_budget=0),
                                dict(max_lookup_ns=-1), dict(max_chain=0)])
def test_bad_targets_are_named(kw):
    with pytest.raises(ValueError, match="must be > 0"):
        recommend([FakeRow(1, 1, 1)], **kw)


def test_apply_lines():
    lines = apply_lines(FakeRow(1, 1, 1, lfactor=-3))
    assert "sysctl -w net.ipv4.vs.conn_lfactor=-3" in lines
    assert not any("conn_tab_bits" in ln for ln in lines)
    lines = apply_lines(FakeRow(1, 1, 1, lfactor=2, conn_tab_bits=18),
                        bits_swept=True)
    assert "sysctl -w net.ipv4.vs.conn_lfactor=2" in lines
    assert any("options ip_vs conn_tab_bits=18" in ln for ln in lines)
    old = apply_lines(FakeRow(1, 1, 1, lfactor=None, conn_tab_bits=16))
    assert not any(ln.startswith("sysctl") for ln in old)
    assert "no conn_lfactor" in old[0]
    assert any("options ip_vs conn_tab_bits=16" in ln for ln in old)
