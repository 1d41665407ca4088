"""CaPaKey normalisation speed (it runs on every search-box keystroke and on every imported parcel)."""

from __future__ import annotations

from benchmarks import Figure, median, timings
from opendata.capakey import normalise_capakey

TYPED = ["44024A0034/00B002", "44024 a 0034 / 00 b 002", "11111A000100000", "44024A34/0B2"] * 2500


def run() -> list[Figure]:
    seconds = timings(lambda: [normalise_capakey(t) for t in TYPED], repeat=7)
    per_key_us = median(seconds) / len(TYPED) * 1e6
    return [Figure("CaPaKey normalise, typed spellings (median of 7 x 10k)", per_key_us, "µs/key")]
