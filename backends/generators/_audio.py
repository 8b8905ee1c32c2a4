"""A soundtrack for local videos: a soft chord pad and a plucked arpeggio chosen by the prompt."""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 48_000
_ROOTS = (196.00, 220.00, 246.94, 261.63, 293.66, 329.63)  # G3 A3 B3 C4 D4 E4
_MAJOR, _MINOR = (0, 4, 7), (0, 3, 7)


def soundtrack(duration_seconds: float, rng: np.random.Generator) -> bytes:
    """Exactly `duration_seconds` of mono signed 16-bit little-endian PCM at SAMPLE_RATE."""
    n = round(duration_seconds * SAMPLE_RATE)
    t = np.arange(n, dtype=np.float64) / SAMPLE_RATE
    root = _ROOTS[int(rng.integers(len(_ROOTS)))]
    steps = _MAJOR if rng.random() < 0.6 else _MINOR
    chord = [root * 2 ** (s / 12) for s in steps]

    # Pad: the chord with slight detune and a slow swell, so it sounds less like a test tone.
    pad = sum(np.sin(2 * np.pi * f * t) + 0.5 * np.sin(2 * np.pi * f * 1.003 * t) for f in chord)
    pad *= 0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t) ** 2

    # Arpeggio: one chord note (an octave up) every beat, each with a quick decay.
    beat = 60.0 / float(rng.choice([80, 96, 110, 120]))
    k = np.floor(t / beat).astype(np.int64)
    pattern = rng.permutation(len(chord))
    freqs = np.array(chord)[pattern[k % len(chord)]] * 2
    since = t - k * beat
    pluck = np.sin(2 * np.pi * freqs * since) * np.exp(-since * 5.0) * np.minimum(1.0, since / 0.005)

    signal = 0.06 * pad + 0.25 * pluck
    fade = np.minimum(1.0, np.minimum(t, duration_seconds - t) / 0.25)
    signal *= np.clip(fade, 0.0, 1.0)
    peak = float(np.abs(signal).max()) or 1.0
    return (signal * (0.5 * 32767 / peak)).astype("<i2").tobytes()
