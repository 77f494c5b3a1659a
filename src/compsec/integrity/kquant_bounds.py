"""The bounds check of a K-quant GGUF made with an importance matrix: are its codes this source's codes under the
scales it stores?

llama.cpp chooses a K-quant super-block's scales by a search that the importance matrix weights, so without the
matrix the scales cannot be re-derived. But every K type ends the same way, with or without a matrix: the
sub-block scales are rounded to what the block stores, and each weight's code is recomputed from them
(``nearest_int((x + dmin·m) / (d·sc))``, clamped). So given the stored scales, each code is a pure function of the
source weight (:func:`compsec.formats.gguf_k_box.code_of`), and a source weight moved past its code's interval
changes it. Sub-blocks whose stored step is zero carry no information and are skipped. Measured with
``ggml_quantize_chunk`` and random importance matrices: every code of Q2_K…Q6_K matches
(``tests/integrity/test_kquant_bounds.py``).
"""

from __future__ import annotations

import numpy as np
import torch

from compsec.formats.gguf_k_box import code_of
from compsec.formats.gguf_k_layout import LAYOUTS, QK_K, parse, sub_scales


def inconsistent_super_blocks(raw: np.ndarray, qtype: str, w: torch.Tensor) -> int:
    """Super-blocks of ``raw`` (``qtype`` blocks of ``w``'s rows) holding a code that ``w`` does not give under
    the block's own stored scales."""
    layout = LAYOUTS[qtype]
    codes, scales = parse(raw.reshape(w.numel() // QK_K, -1), qtype)
    step, shift = (t.repeat_interleave(layout.sub, dim=-1) for t in sub_scales(scales, layout))
    mine = code_of(w.reshape(-1, QK_K).float(), step, shift, layout)
    return int(((mine != codes.reshape(mine.shape)) & (step != 0)).any(1).sum())
