"""The help screen: every key (with its binding id, for remapping in the config file) and the synthetic
model's parameters, so what the map shows is never a black box."""

from __future__ import annotations

from typing import Any

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

MODEL_NOTES = {
    "leverage_tiers": "leverage of new positions",
    "leverage_weights": "share of new positions per tier",
    "taker_alpha": "1 = split new OI by taker flow",
    "side_gap_max": "an OI fall closes the heavier side's excess first (1 = off)",
    "side_gap_forced_share": "... while liquidations are this share of volume (0 = always)",
    "taker_net_weight": "split new OI by the taker imbalance in USD (opt-in, 0 = off)",
    "taker_net_forced_share": "... only while liquidations are under this share of volume (0 = always)",
    "min_delta_rel": "ignore smaller |ΔOI| (share of OI)",
    "min_delta_usd": "ignore smaller |ΔOI| (USD)",
    "cap_rel": "cap one interval's |ΔOI| (share of OI)",
    "cap_gap_ref_s": "... × √(gap ÷ this) after a longer gap between OI samples (a back-fill's 5 min)",
    "cap_open_volume": "a rise past the cap is kept up to the interval's traded USD (off)",
    "cap_open_fill_ratio": "... always while the OI is this × its level 1h ago (filling)",
    "half_life_hours": "decay of unconsumed levels",
    "reconcile_buckets": "real liqs cancel levels within ± buckets",
    "heatmap_sigma_buckets": "Synthetic Heatmap smoothing",
    "hybrid_real_hours": "real liquidations shown in Hybrid",
    "range_pct": "price range the model tracks",
    "hybrid_half_life_hours": "fade of real liquidations in Hybrid",
    "raw_half_life_hours": "Raw recency fade (0 = exact USD sums)",
    "heatmap_clip_pct": "Synthetic Heatmap: percentile read as full",
    "heatmap_decades": "Synthetic Heatmap: decades shown below it",
    "synthetic_reach_alpha": "map: at risk × chance of reach to this power (0 = at risk, 1 = expected liq/h)",
    "typical_position_usd": "position size that picks the margin tier",
    "track_pct": "levels kept within ± this % of price",
    "max_buckets": "most buckets per asset",
    "entry_mode": "profile: entries over traded prices",
    "leverage_spread": "width of a tier's line (0 = exact price, 1 = to its neighbours)",
    "forecast_leverage_spread": "the forecast spreads each tier this wide",
    "prior_weight": "cold-start prior share of open OI (0 = off)",
    "prior_entry_sigma_pct": "prior entries spread (σ, %)",
    "prior_half_life_hours": "fade of the prior",
    "prior_fill_forced_share": "OI prior only while liquidations are this share of volume (0 = always)",
    "forecast_prior_forced_share": "the forecast's OI prior only while liquidations are this share of volume",
    "resting_share": "share of public OI taken as low-leverage positions held for days (NEXT 1H; 0 = off)",
    "resting_leverage_tiers": "their leverages (liquidation 33-67 % away at 1.5-3x)",
    "resting_leverage_weights": "... and the weight of each",
    "resting_hold_hours": "their mean holding time: how far back their entries reach",
    "forecast_horizon_hours": "next-hour forecast horizon",
    "forecast_vol_window_minutes": "realized volatility window",
    "forecast_default_vol_hour_pct": "volatility (%/h) until 10 min seen",
    "forecast_tails": "t3 = fat tails, gauss = thin",
    "forecast_drift_weight": "share of the shrunk recent trend the reach carries (0 = driftless)",
    "forecast_drift_shrink": "trend kept: 1 - shrink/t² of it (t = trend ÷ its noise)",
    "forecast_drift_hours": "trend measured over this many hours once 2 are seen (0 = the σ window's hour)",
    "forecast_vr_minutes": "walk σ × √(variance ratio at this many minutes) (0 = 1-minute σ)",
    "forecast_vr_shrink": "variance ratio's gap to 1 kept: 1 - shrink/z² (z = gap ÷ its noise)",
    "forecast_calibrated": "NEXT 1H % = share of such clusters reached (false: the raw random-walk chance)",
}


# Every mark the map draws, in the order a trader meets them (glyphs from ui/heatmap.py, ui/live_column.py).
MAP_LEGEND = (
    ("cell colour", "Synthetic, Heatmap, Hybrid: the model's USD at risk at that row × the chance price reaches "
                    "it within the hour from where the column closed, to the power synthetic_reach_alpha (0.7: "
                    "levels near price bright, far clusters drawn dimmer; 1 = expected liquidation USD per hour, "
                    "0 = plain USD at risk); Raw: USD liquidated. The status bar's swatch says what the dimmest and "
                    "brightest colours are worth and what the number is (at risk×reach^0.7)"),
    ("teal cells", "Synthetic, Heatmap, Hybrid: where positions held for days at 1.5-3x (sized by the public open "
                   "interest, within 15 % of price) hold more of the cell's USD than the flow the model saw open, "
                   "the cell is drawn on their own ramp and scale (the theme's held colours; '+ swatch $X/row "
                   "held≥days' in the status bar); after a large move they are the biggest mass near price"),
    ("━ ┃ ┏┛┓┗", "price: the last trade of each column; it steps where price changes row"),
    ("bin ≤1/s", "Raw and Hybrid's real liquidations undercount Binance in bursts: its forceOrder stream sends "
                 "at most one liquidation per symbol per second (the latest), the other venues send every one"),
    ("· • ●", "Hybrid: real liquidations, small / medium / large against the largest in view; red = longs "
              "liquidated, green = shorts"),
    ("▬", "order-book wall at its price from when it was first seen to when it was pulled or consumed "
          "(green bid, red ask; bright while it stands)"),
    ("live column", "the map's right-edge column; in Synthetic, Heatmap and Hybrid its colour is NEXT 1H: the "
                    "liquidation USD expected there in the next hour (the model's levels × the chance price gets "
                    "there); its three brightest colours run from the weakest NEXT 1H cluster the reports name up to "
                    "the strongest row, the rest three decades below; in Raw and Positions, the newest column's heat"),
    ("▐", "live column: a wall resting in the book now"),
    ("█ right edge", "Hybrid forward profile: where liquidations would hit if price got there (red longs "
                     "below, green shorts above)"),
    ("exact:", "Positions mode (5): EXACT liquidation USD of the Hyperliquid wallets liqmap polls, a sample of the "
               "largest — the status bar says how many wallets, what share of Hyperliquid's open interest, and how "
               "much of their USD is held at 3x or less (liquidation a third or more away, or none); "
               "only their liquidations are seen (no venue publishes all of them). The reports' NEXT 1H line "
               "'model X % vs base Y % of exact $' is the model's live accuracy against them"),
    ("91% held days", "reports panel, NEXT 1H: the part of the cluster's USD at risk that is positions held for "
                      "days at 1.5-3x, sized by the public open interest and never seen open (shown from 10 %)"),
    ("┊", "time cursor (Enter on a sweep or absorption)"),
    ("╌", "the selected event's price level"),
    ("▶", "last price on the price axis"),
    ("┃ ≈$650k", "price axis: the NEXT 1H magnets — the rows of each cluster the reports panel lists (red: "
                "longs liquidated below price, green: shorts above), with the USD expected there in the next hour"),
    ("◆", "the selected event's price on the price axis"),
    ("NEXT 1H 67%", "reports panel: the chance price reaches the cluster's nearest edge within the hour, "
                    "calibrated — of the clusters shown at about 67 %, about 67 % were reached within their hour "
                    "(fitted on the demo market, seeds 1-10, checked on 11-20; the walk's raw chance is reach_raw "
                    "in the headless report, and its reliability table on any recording in synthetic.forecast."
                    "reliability)"),
)


def legend_table() -> Table:
    t = Table(title="Map", title_justify="left", expand=False, box=None, padding=(0, 2))
    t.add_column("mark", style="bold")
    t.add_column("meaning")
    for mark, meaning in MAP_LEGEND:
        t.add_row(mark, meaning)
    return t


def key_display(key: str) -> str:
    names = {"left_square_bracket": "[", "right_square_bracket": "]", "question_mark": "?", "plus": "+",
             "minus": "-", "equals_sign": "=", "slash": "/", "enter": "Enter", "up": "↑", "down": "↓",
             "left": "←", "right": "→", "escape": "Esc", "tab": "Tab"}
    return ",".join(names.get(k.strip(), k.strip()) for k in key.split(","))


def bindings_table(rows: list[tuple[str, str, str]]) -> Table:
    t = Table(title="Keys", title_justify="left", expand=False, box=None, padding=(0, 2))
    t.add_column("key", style="bold")
    t.add_column("action")
    t.add_column("id (config \\[keys])", style="dim")
    for key, desc, bid in rows:
        t.add_row(key_display(key), desc, bid)
    return t


def model_table(model: dict[str, Any]) -> Table:
    t = Table(title="Synthetic model (config \\[model])", title_justify="left", box=None, padding=(0, 2))
    t.add_column("parameter", style="bold")
    t.add_column("value")
    t.add_column("meaning", style="dim")
    for k, v in model.items():
        if isinstance(v, list):
            v = ", ".join(f"{x:g}" if isinstance(x, float) else str(x) for x in v)
        t.add_row(k, str(v), MODEL_NOTES.get(k, ""))
    return t


class HelpScreen(ModalScreen):
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 120; max-width: 100%; height: auto; max-height: 90%;
        background: $surface; border: round $primary; padding: 0 1; }
    """
    BINDINGS = [
        Binding("escape,question_mark", "dismiss", "Close help", id="help_close"),
        Binding("q", "app.quit", "Quit", id="help_quit"),
        # The screen's own keys, not the scroll container's: with --no-mouse over ssh the keyboard is the only
        # way through a help longer than the terminal, and the app's arrows (pan) must not leak through.
        Binding("down,j", "scroll(1)", "Scroll down", show=False, id="help_down"),
        Binding("up,k", "scroll(-1)", "Scroll up", show=False, id="help_up"),
        Binding("pagedown,space", "page(1)", "Page down", show=False, id="help_page_down"),
        Binding("pageup", "page(-1)", "Page up", show=False, id="help_page_up"),
        Binding("home", "edge(0)", "Top", show=False, id="help_top"),
        Binding("end", "edge(1)", "Bottom", show=False, id="help_bottom"),
    ]

    def __init__(self, rows: list[tuple[str, str, str]], model: dict[str, Any]) -> None:
        super().__init__()
        self.rows = rows
        self.model = model

    def _scroller(self) -> VerticalScroll:
        return self.query_one(VerticalScroll)

    def action_scroll(self, rows: int) -> None:
        self._scroller().scroll_relative(y=rows, animate=False)

    def action_page(self, pages: int) -> None:
        sc = self._scroller()
        sc.scroll_relative(y=pages * max(sc.scrollable_content_region.height - 1, 1), animate=False)

    def action_edge(self, end: int) -> None:
        sc = self._scroller()
        (sc.scroll_end if end else sc.scroll_home)(animate=False)

    def compose(self) -> ComposeResult:
        with VerticalScroll():
            yield Static(Text("liqmap — help  (Esc or ? closes)", style="bold"), id="help-title")
            yield Static(bindings_table(self.rows), id="help-keys")
            yield Static(model_table(self.model), id="help-model")
            yield Static(legend_table(), id="help-legend")
            yield Static(Text("Tab moves focus to the reports panel: ↑/↓ select, Enter jumps the map to the "
                              "event. Ctrl+P opens the command palette. Colours: --color, --theme.",
                              style="dim"))
