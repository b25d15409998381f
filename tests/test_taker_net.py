"""The opt-in split of an OI step by the taker imbalance in USD (model.taker_net_weight, docs/model.md §3 step 2)."""

from __future__ import annotations

import pytest

from liqmap.core.model.flow import net_long_share
from test_synthetic import BIN, EMPTY_L, EMPTY_O, EMPTY_T, liq_rows, model, oi_rows, opened, trade_rows


def test_net_long_share_reads_the_imbalance_against_the_step():
    assert net_long_share(310_000.0, 290_000.0, 60_000.0) == pytest.approx(0.5 + 0.5 * 20 / 60)
    assert net_long_share(290_000.0, 310_000.0, -60_000.0) == pytest.approx(0.5 - 0.5 * 20 / 60)
    assert net_long_share(500_000.0, 100_000.0, 60_000.0) == 1.0  # bounded by the step
    assert net_long_share(100_000.0, 500_000.0, 60_000.0) == 0.0
    assert net_long_share(1.0, 2.0, 0.0) == 0.5


@pytest.mark.parametrize("w", [0.0, 0.5, 1.0])
def test_a_step_the_imbalance_made_one_sided(w):
    """ΔN = 1 BTC × 60,000 = 60k with taker buys 310k and sells 290k: by the ratio 310/600 = 51.7 % long (31k); by
    the imbalance against the step ½ + ½·20k/60k = 66.7 % long (40k). The default (w 0) is the ratio split."""
    m = model({"taker_net_weight": w})
    opened(m, buy=310_000.0, sell=290_000.0, d_oi=1.0)
    ratio, net = 310 / 600, 0.5 + 0.5 * 20 / 60
    want = 60_000.0 * ((1 - w) * ratio + w * net)
    assert m.total_long() == pytest.approx(want, rel=1e-9)
    assert m.total_short() == pytest.approx(60_000.0 - want, rel=1e-9)


def test_the_gate_keeps_the_ratio_split_in_a_forced_phase():
    """With taker_net_forced_share 1 %: liquidations 5 % of the traded USD in the window → the ratio split."""
    m = model({"taker_net_weight": 1.0, "taker_net_forced_share": 0.01})
    m.update(oi_rows((0.0, 1000.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    m.update(EMPTY_O, trade_rows((10.0, 60_000.0, 310_000.0, 1, BIN), (20.0, 60_000.0, 290_000.0, -1, BIN)),
             liq_rows((15.0, 50_000.0, 30_000.0, 1, BIN)))
    m.update(oi_rows((30.0, 1001.0, 60_000.0, BIN)), EMPTY_T, EMPTY_L)
    assert m.total_long() == pytest.approx(60_000.0 * 310 / 600, rel=1e-9)
    quiet = model({"taker_net_weight": 1.0, "taker_net_forced_share": 0.01})
    opened(quiet, buy=310_000.0, sell=290_000.0, d_oi=1.0)
    assert quiet.total_long() == pytest.approx(40_000.0, rel=1e-9)
