"""Block layouts of the formats, as the scanner needs them: how many weights share a scale, and to which row
length examined rows can be re-cut and joined (rows of many tensors in one call) without changing any code."""

from __future__ import annotations

from compsec.formats.base import Format

GGUF_BLOCK = 32  # the scanner's block for every GGUF format (K-quants: their 32-weight sub-blocks)
GGUF_SUPER_BLOCK = 256  # K-quants quantize super-blocks of 256 weights independently
# Formats whose quantization of one block depends on other blocks (nested absmax statistics; hqq's whole-tensor
# early stop): they are never joined with another tensor's rows.
WHOLE_TENSOR_FORMATS = ("Blockwise4bitNested", "Hqq4bit")


def block_size_of(fmt: Format, row_length: int) -> int:
    """Weights per scale block of ``fmt`` for rows of ``row_length`` (a row for row-wise formats)."""
    size = getattr(fmt, "blocksize", None) or getattr(fmt, "block_size", None) or getattr(fmt, "group", None)
    if size:
        return int(size)
    if fmt.family.lower().startswith("gguf") or fmt.name.startswith("q"):
        return GGUF_BLOCK
    return row_length


def joint_length(fmt: Format, row_length: int) -> int | None:
    """Row length to which rows of ``row_length`` can be re-cut and concatenated with other tensors' rows and
    quantized by ``fmt`` in one call, giving the same codes; None when ``fmt``'s blocks are not independent."""
    if type(fmt).__name__ in WHOLE_TENSOR_FORMATS:
        return None
    size = GGUF_SUPER_BLOCK if fmt.family == "gguf-k" else block_size_of(fmt, row_length)
    if size == row_length or (size < row_length and row_length % size == 0):
        return size
    return None  # blocks straddle rows (bnb's flat blocks on an odd row length): keep the tensor's own layout
