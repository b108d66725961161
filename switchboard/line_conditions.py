"""A bad phone line for the simulated caller: the caller's level, noise, lost and late
packets. Deterministic for a seed, so a test or a benchmark places the same bad call twice.

``switchboard call --gain DB --noise SNR_DB --loss PCT --jitter MS --seed N``.
"""

from collections import deque
from dataclasses import dataclass

import numpy as np

from media_plane.pcm import audioop

FULL_SCALE = 32768.0


@dataclass(frozen=True)
class LineConditions:
    gain_db: float = 0.0  # the caller's speech louder (+) or quieter (-) than recorded
    noise_snr_db: float | None = None  # steady noise on the line, this far under the speech
    loss_pct: float = 0.0  # media messages lost on the way (never sent)
    jitter_ms: float = 0.0  # each message late by up to this much, order kept
    seed: int = 0


CLEAN_LINE = LineConditions()


def speech_level_dbfs(pcm: np.ndarray) -> float:
    """RMS level of the voiced part (20 ms frames at 8 kHz within 30 dB of the loudest):
    how loud a talker is, not diluted by the pauses around the words."""
    frames = pcm[: len(pcm) // 160 * 160].astype(np.float64).reshape(-1, 160)
    if not len(frames):
        return -np.inf
    energy = (frames**2).mean(axis=1)
    voiced = frames[energy >= energy.max() / 1000]
    mean_square = (voiced**2).mean()
    return 10 * np.log10(mean_square / FULL_SCALE**2) if mean_square else -np.inf


def with_gain(pcm: np.ndarray, gain_db: float) -> np.ndarray:
    if gain_db == 0:
        return pcm
    scaled = pcm.astype(np.float64) * 10 ** (gain_db / 20)
    return np.clip(scaled, -32768, 32767).astype(np.int16)


class BadLine:
    """Applies the conditions to what the caller sends, message by message."""

    def __init__(self, conditions: LineConditions, speech_level_dbfs: float):
        self.conditions = conditions
        self._rng = np.random.default_rng(conditions.seed)
        self._noise_rms = 0.0
        if conditions.noise_snr_db is not None and np.isfinite(speech_level_dbfs):
            noise_dbfs = speech_level_dbfs - conditions.noise_snr_db
            self._noise_rms = FULL_SCALE * 10 ** (noise_dbfs / 20)
        self._late: deque[tuple[float, dict]] = deque()  # (when it arrives, message)

    def noisy(self, ulaw: bytes) -> bytes:
        """The caller's mu-law audio with the line's noise in it (in silence too)."""
        if not self._noise_rms:
            return ulaw
        pcm = np.frombuffer(audioop.ulaw2lin(ulaw, 2), np.int16).astype(np.float64)
        pcm += self._rng.normal(0.0, self._noise_rms, len(pcm))
        mixed = np.clip(pcm, -32768, 32767).astype(np.int16)
        return audioop.lin2ulaw(mixed.tobytes(), 2)

    def send(self, message: dict, now: float) -> list[dict]:
        """The message handed to the line at ``now``: the messages that arrive now, in
        order (none if it was lost or is late, several if late ones catch up)."""
        if self._rng.random() * 100 >= self.conditions.loss_pct:
            late = self._rng.uniform(0, self.conditions.jitter_ms / 1000)
            # A message never overtakes the one before it (one connection, in order).
            arrives = max(now + late, self._late[-1][0] if self._late else 0.0)
            self._late.append((arrives, message))
        return self.due(now)

    def due(self, now: float) -> list[dict]:
        arrived = []
        while self._late and self._late[0][0] <= now:
            arrived.append(self._late.popleft()[1])
        return arrived
