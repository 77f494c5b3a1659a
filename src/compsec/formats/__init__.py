"""Quantization formats with exact preimages (boxes), one module per family.

>>> from compsec import formats
>>> nf4 = formats.get("nf4")
>>> box = nf4.preimage(w)            # every w' in [box.lo, box.hi] quantizes like w
"""

from compsec.formats.base import Box, Format, Quantized
from compsec.formats.registry import get, names, parse_list, register

# Importing a family module registers its formats.  Add one line per family.

__all__ = ["Box", "Format", "Quantized", "get", "names", "parse_list", "register"]
import compsec.formats.gguf
import compsec.formats.gguf_k
import compsec.formats.hqq
import compsec.formats.rtn  # noqa: F401
from compsec.formats import bnb, bnb_dq  # noqa: F401
