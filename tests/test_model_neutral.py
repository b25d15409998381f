"""The synthetic model's outputs are bit-identical to the reference written before its refactors (issues 15, 17).

``tests/data/model/fingerprint.json`` was computed by ``tools/model_fingerprint.py write`` on main's model code
before the module split and the numpy fast paths; any change to what the model computes — a level, a forecast
value, a history column, a ledger row, a stat — changes a hash here. A change meant to alter the model's
behaviour regenerates the reference in its own commit (and says so).
"""

from __future__ import annotations

import json

import pytest

import model_fingerprint as mf


@pytest.fixture(scope="module")
def current() -> dict:
    return mf.fingerprint()


def test_the_reference_covers_every_variant_and_both_feeds():
    ref = json.loads(mf.FINGERPRINT_FILE.read_text())
    assert {k.split("/")[2] for k in ref} == set(mf.VARIANTS)
    assert {k.split("/")[0] for k in ref} == {"demo", "bench"}
    # the feeds place something: a fingerprint of empty outputs would pass any refactor
    assert all("columns_1m" in ref[k]["end"] for k in ref)


def test_model_outputs_match_the_pre_refactor_reference(current):
    ref = json.loads(mf.FINGERPRINT_FILE.read_text())
    diff = [f"{run}/{when}/{what}" for run in ref for when in ref[run] for what in ref[run][when]
            if current.get(run, {}).get(when, {}).get(what) != ref[run][when][what]]
    assert not diff, f"model outputs changed: {diff[:12]} ({len(diff)} in all)"
