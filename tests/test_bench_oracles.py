"""The forecast benchmark's degraded oracles (benchmarks/bench_forecast.py, ``LIQMAP_BENCH_FORECAST_DEGRADE=1``):
how exact a map must be. A shift moves each bucket's USD at most one bucket and keeps every dollar; a Gaussian keeps
the dollars and the centre; the shifted oracle is scored as the mean of many draws, since one draw's top buckets
swing the score (1.52 and 1.84 on the same positions, session 19)."""

from __future__ import annotations

import numpy as np

import benchmarks.bench_forecast as bf  # the repository root is on the tests' import path (pyproject.toml)


def test_a_shift_moves_each_buckets_dollars_at_most_one_bucket_and_keeps_them_all():
    o = np.zeros(200)
    o[[20, 100, 150]] = [5e6, 1e6, 3e5]
    rng = np.random.default_rng(3)
    draws = [bf._shifted(o, rng) for _ in range(64)]
    for d in draws:
        assert d.sum() == o.sum()
        for b in (20, 100, 150):
            assert d[b - 1:b + 2].sum() == o[b]
    # the draws differ: each one is one guess, which is why the benchmark scores their mean
    assert len({int(np.argmax(d)) for d in draws}) == 3
    assert bf.SHIFT_DRAWS >= 8


def test_a_smoothed_oracle_keeps_the_dollars_and_the_centre():
    o = np.zeros(200)
    o[100] = 1e6
    for name, s in bf._smoothed_oracles(o).items():
        assert abs(s.sum() - 1e6) < 1e-3, name
        assert int(np.argmax(s)) == 100, name
    assert set(bf._smoothed_oracles(o)) == {f"oracle_sigma{s}" for s in bf.DEGRADE_SIGMAS}
    assert {"oracle_seen", "oracle_seen_shift1", "oracle_shift1"} <= set(bf.DEGRADED)
