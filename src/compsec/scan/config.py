"""Settings of a scan (the CLI's options come from these fields)."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_FORMATS = ("int8", "nf4", "fp4", "q4_0", "q8_0", "q4_k", "q5_k", "q6_k")
# K-quants are checked by default only where their backend (llama-cpp-python, ``compsec[gguf-k]``) is installed.


@dataclass(frozen=True)
class ScanConfig:
    """How to scan.

    formats: formats whose boxes are checked (default: those of DEFAULT_FORMATS that are registered and whose
        backend is installed: the K-quants need llama-cpp-python).
    sample_weights: 0 (default) examines every weight of every quantizable tensor.  N > 0 is a quick look: about
        N weights per tensor, as blocks drawn from every row (:mod:`compsec.scan.coverage`) with a fresh random
        seed per run; a fixed sample would let an attacker who reads the source plant outside it.
    eps: edge band, as a fraction of the interval width (0.01 = within 1 % of an edge).
    alpha: Benjamini-Hochberg false discovery rate over every tamper test of the scan.
    min_odds_ratio: edge-mass effect floor (edge:adjacent odds over the null's); benign tensors sit near 1.
    max_edge_ratio: edge-depletion effect floor: observed / expected share of weights within ``eps`` of an edge
        at most this (benign ~1; an attacker repairing inside boxes shrunk by 10-20 % leaves ~0.2).
    min_band_ratio: edge-band effect floor: observed / expected share of weights in the outer 25 % of their
        interval on either side at least this (benign within 1 % of 1 on the corpus; randomised adaptive
        attackers 1.16-1.33).
    min_spike_ratio: position-spike effect floor: density of the densest 1 %-wide position band over its
        neighbours' (benign 1.3-1.9x in fp32; the adaptive q4_k attacker with 10 % margins 6.8x).
    ratio_threshold: block-outlier abs-max / second-largest ratio counted as an injected outlier.
    min_outlier_blocks: block-outlier effect floor (exceeding blocks, and at least 10x the null's count).
    seed: seed of a sampled run (None: a fresh random one, recorded in the report; pass it to repeat a run).
    behaviour: also run the behavioural contrast (needs compsec.audit; see runner.behavioural_contrast).
    """

    formats: tuple[str, ...] = field(default=())
    sample_weights: int = 0
    eps: float = 0.01
    alpha: float = 1e-3
    min_odds_ratio: float = 1.5
    max_edge_ratio: float = 0.5
    min_band_ratio: float = 1.1
    min_spike_ratio: float = 3.0
    ratio_threshold: float = 16.0
    min_outlier_blocks: int = 3
    seed: int | None = None
    behaviour: bool = False

    def __post_init__(self) -> None:
        if self.sample_weights < 0:
            raise ValueError("sample_weights must be >= 0 (0 examines every weight)")
        if not 0 < self.eps < 0.25:
            raise ValueError(f"eps={self.eps} must be in (0, 0.25); 0.01 means 'within 1 % of an edge'")
        if not 0 < self.alpha < 1:
            raise ValueError(f"alpha={self.alpha} must be in (0, 1); try 1e-3")
        if not 0 < self.max_edge_ratio < 1:
            raise ValueError(f"max_edge_ratio={self.max_edge_ratio} must be in (0, 1); 0.5 flags edges at half the "
                             "expected density")
        if self.min_spike_ratio <= 1:
            raise ValueError(f"min_spike_ratio={self.min_spike_ratio} must exceed 1; 3 flags a band 3x denser than "
                             "its neighbours")
        if self.min_band_ratio <= 1:
            raise ValueError(f"min_band_ratio={self.min_band_ratio} must exceed 1; 1.1 flags a 10 % excess")
        if self.ratio_threshold <= 1 or self.min_odds_ratio < 1 or self.min_outlier_blocks < 1:
            raise ValueError("ratio_threshold must exceed 1, min_odds_ratio be >= 1, min_outlier_blocks >= 1")

    def format_names(self) -> list[str]:
        """The formats to check: the configured ones, else the registered defaults whose backend is installed."""
        from compsec import formats

        if self.formats:
            return [formats.get(name).name for name in self.formats]
        return [name for name in DEFAULT_FORMATS
                if name in formats.names() and getattr(formats.get(name), "available", lambda: True)()]
