"""The tuning report's numbers equal what the table reports directly."""
import csv
import json
import re

import numpy as np
import pytest

from ipvs_py import workload
from ipvs_py.tune import report
from ipvs_py.tune.measure import (Setting, chunk_bounds, new_netns,
                                percentile_of_hist, replay_setting,
                                status_percentages, sweep)
from ipvs_py.tune.cli import EXAMPLE_RULES

RULES = EXAMPLE_RULES.read_text()
VIPS = (("192.0.2.10", 80), ("192.0.2.10", 443))


@pytest.fixture(scope="module")
def batch():
    return workload.new_connections(20_000, rate=1e5, vips=VIPS, seed=4)


def status_hist(text):
    """{"empty": pct, 1: pct, ...} and the bucket line of ip_vs_status."""
    pct = {}
    for m in re.finditer(r"^Conn buckets (empty|len-(\d)):\t(\d+) \((\d+)%\)",
                         text, re.M):
        pct["empty" if m.group(1) == "empty" else int(m.group(2))] = (
            int(m.group(3)), int(m.group(4)))
    size = int(re.search(r"^Conn buckets:\t(\d+) \((\d+) bits", text,
                         re.M).group(1))
    return pct, size


@pytest.mark.parametrize("lfactor", [-4, 0, 3])
def test_row_equals_table_direct(batch, lfactor):
    setting = Setting(lfactor, 18)
    net = new_netns(RULES, setting)
    row = replay_setting(batch, RULES, setting, chunks=7, timing_rows=5000,
                         net=net)
    e = net._path().e
    direct = e.table_stats()
    # histogram and size: conn_chain_lengths() and ip_vs_status
    assert row.hist == net.conn_chain_lengths()
    assert row.buckets == net.conn_tab_size == 2 ** row.bits
    pct, size = status_hist(net.status())
    assert size == row.buckets
    assert pct["empty"] == (row.hist[0], row.empty_pct)
    for k in range(1, 8):
        assert pct.get(k, (0, 0)) == (row.hist[k], row.len_pct[k - 1])
    assert row.conns == net.conn_count == 20_000
    # walk counters: the engine's own
    assert row.lookups == direct["lookups"] == len(batch)
    assert row.walk_mean == direct["walked"] / direct["lookups"]
    assert row.walk_hist == direct["hist"]
    cum = np.cumsum(direct["hist"])
    assert cum[row.walk_p99] >= 0.99 * row.lookups
    assert row.walk_p99 == 0 or cum[row.walk_p99 - 1] < 0.99 * row.lookups
    # bytes, resizes, pauses
    assert row.table_bytes == direct["bucket_bytes"] + direct["lock_bytes"]
    assert direct["bucket_bytes"] == row.buckets * 4      # 32-bit heads
    assert row.entry_bytes == direct["conn_bytes"]
    assert row.total_bytes == row.table_bytes + row.entry_bytes
    assert row.resizes == direct["resizes"]
    assert row.pause_max_ms == direct["pause_max_ns"] / 1e6
    # timeline: starts empty, ends at the final size, never skips conns
    assert row.timeline[0][1] == 0
    assert row.timeline[-1][1:] == (row.conns, row.buckets)
    assert [p[0] for p in row.timeline] == sorted(p[0] for p in row.timeline)
    assert row.lookup_ns > 0


def test_kernel_61_table_is_fixed(batch):
    row = replay_setting(batch, RULES, Setting(None, 12, "6.1"), chunks=3,
                         timing_rows=1000)
    assert row.buckets == 4096 and row.resizes == 0
    assert all(p[2] == 4096 for p in row.timeline)


def test_percentile_and_status_percentages():
    assert percentile_of_hist([0, 99, 1], 0.99) == 1
    assert percentile_of_hist([0, 98, 2], 0.99) == 2
    assert percentile_of_hist([0, 0, 0], 0.99) == 0
    # ip_vs_status: empty of all, len-N of the non-empty, truncated
    assert status_percentages([1, 1, 1, 0, 0, 0, 0, 0]) == (33, [50, 50, 0, 0,
                                                                 0, 0, 0])


def test_chunk_bounds_cover_every_row_once():
    for n, c in ((0, 5), (1, 40), (10, 40), (100_000, 40)):
        b = chunk_bounds(n, c)
        assert b[0] == 0 and b[-1] == n
        assert np.all(np.diff(b) > 0)
        assert len(b) <= c + 2


def test_csv_and_json_carry_the_rows(batch, tmp_path):
    rows = sweep(batch, RULES, [Setting(-2, 16), Setting(2, 16)], chunks=3,
                 timing_rows=1000)
    report.write_csv(tmp_path / "r.csv", rows, pareto={1})
    lines = list(csv.DictReader(open(tmp_path / "r.csv")))
    assert [int(x["lfactor"]) for x in lines] == [-2, 2]
    for r, line in zip(rows, lines):
        assert [int(line[f"hist_{h}"]) for h in
                ("empty", "len-1", "len-2", "len-3", "len-4", "len-5",
                 "len-6", "len-7+")] == r.hist
        assert int(line["buckets"]) == r.buckets
        assert int(line["total_bytes"]) == r.total_bytes
        assert float(line["walk_mean"]) == pytest.approx(r.walk_mean)
        assert int(line["resizes"]) == r.resizes
    assert [x["pareto"] for x in lines] == ["0", "1"]
    report.write_json(tmp_path / "r.json", rows, workload={"generator": "x"},
                      pareto=[1], recommendation=None)
    doc = json.load(open(tmp_path / "r.json"))
    assert doc["workload"] == {"generator": "x"}
    assert [d["hist"] for d in doc["rows"]] == [r.hist for r in rows]
    assert [len(d["timeline"]) for d in doc["rows"]] == [
        len(r.timeline) for r in rows]
    assert doc["rows"][0]["total_bytes"] == rows[0].total_bytes


def test_parallel_sweep_matches_sequential(batch):
    """jobs=2 replays two namespaces at once on real threads (nogil):
    the same rows, in order, as one at a time (the table keys are random,
    so the chain histograms may differ; sizes and counts may not)."""
    settings = [Setting(lf, 16) for lf in (-3, 0, 3, 6)]
    seq = sweep(batch, RULES, settings, chunks=5, timing_rows=500)
    par = sweep(batch, RULES, settings, chunks=5, timing_rows=500, jobs=2)
    key = lambda r: (r.lfactor, r.conns, r.buckets, r.resizes, r.lookups,
                     sum(r.hist), [p[1:] for p in r.timeline])
    assert [key(r) for r in par] == [key(r) for r in seq]
    with pytest.raises(ValueError, match="jobs must be >= 1"):
        sweep(batch, RULES, settings, jobs=0)
