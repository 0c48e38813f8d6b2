"""twos: the kernel's random draws cannot be reproduced, so the model's
seeded draws are checked for the kernel's *distribution* instead."""
import math

from ipvs_py.schedulers import twos
from ipvs_py.schedulers.base import IP_VS_DEST_F_OVERLOAD

from .helpers import make, pkt

N = 40000


def shares(svc, s, n=N):
    counts = [0] * len(svc.dests)
    p = pkt("1.1.1.1")
    for _ in range(n):
        counts[svc.dests.index(s.schedule(svc, p))] += 1
    return counts


def test_same_seed_same_choices():
    a, s = make("twos", [1, 2, 3])
    b, _ = make("twos", [1, 2, 3])
    twos.seed(a, 42)
    twos.seed(b, 42)
    p = pkt("1.1.1.1")
    assert [a.dests.index(s.schedule(a, p)) for _ in range(200)] == \
        [b.dests.index(s.schedule(b, p)) for _ in range(200)]


def test_idle_dests_get_choice1_weighted_with_the_kernels_plus_one():
    # With no load choice2 never beats choice1 (0 > 0 is false), so the
    # share of dest i is P(r1 lands on it): (w_first + 1)/(T + 1) for the
    # first usable dest, w_i/(T + 1) for the others; T = sum of weights.
    svc, s = make("twos", [1, 2, 3, 4])   # list 4 3 2 1
    twos.seed(svc, 7)
    got = shares(svc, s)
    w = [4, 3, 2, 1]
    T = sum(w)
    expect = [(w[0] + 1) / (T + 1)] + [x / (T + 1) for x in w[1:]]
    for g, e in zip(got, expect):
        sigma = math.sqrt(N * e * (1 - e))
        assert abs(g - N * e) < 5 * sigma, (got, expect)


def test_less_loaded_of_the_two_wins():
    svc, s = make("twos", [1, 1])
    twos.seed(svc, 3)
    busy, idle = svc.dests
    busy.activeconns = 10
    got = shares(svc, s, 20000)
    # idle wins unless both draws hit busy: P = ((1+1)/3)^2 = 4/9
    p_busy = (2 / 3) ** 2
    sigma = math.sqrt(20000 * p_busy * (1 - p_busy))
    assert abs(got[0] - 20000 * p_busy) < 5 * sigma


def test_overloaded_and_zero_weight_never_chosen():
    svc, s = make("twos", [0, 5, 5])
    svc.dests[0].flags |= IP_VS_DEST_F_OVERLOAD
    got = shares(svc, s, 2000)
    assert got[0] == 0 and got[2] == 0 and got[1] == 2000
    svc.dests[1].weight = 0
    assert s.schedule(svc, pkt("1.1.1.1")) is None
