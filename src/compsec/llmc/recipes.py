"""The llm-compressor variants compsec builds: name -> recipe (modifier name -> its keyword arguments).

A recipe is plain data in llm-compressor's own recipe vocabulary (its modifiers reject unknown fields), so it
is recorded verbatim in the provenance record and handed to the side environment as JSON. ``lm_head`` is never
compressed (it is tied to the embeddings in the models compsec ships, and llm-compressor's examples skip it).
Layers whose input width a recipe's group size does not divide are added to its ``ignore`` list, as
llm-compressor's own error message tells users to do (:func:`compsec.llmc.build.fit_to_shapes`).

| name            | what llm-compressor does                                                       |
|-----------------|--------------------------------------------------------------------------------|
| gptq-w4a16      | GPTQ, int4 weights, symmetric, groups of 128 input columns                      |
| gptq-w4a16-g64  | the same with groups of 64 (fits widths such as SmolLM2's 576)                   |
| gptq-w8a16      | GPTQ, int8 weights, one scale per output channel                                |
| awq-w4a16       | AWQ smoothing (default Llama mappings) then int4 asymmetric weights, groups of 128 |
| w8a8-int8       | SmoothQuant (strength 0.8) then GPTQ int8 weights + dynamic per-token int8 inputs |
| fp8-dynamic     | FP8 (e4m3) weights per channel + dynamic per-token FP8 inputs; no calibration    |
| sparsegpt-50    | SparseGPT, 50 % unstructured sparsity                                           |
| sparsegpt-2:4   | SparseGPT, 2 of every 4 weights zero (semi-structured)                          |
| wanda-50        | Wanda, 50 % unstructured sparsity                                               |
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace

from compsec.errors import InputError

_LINEAR = {"ignore": ["lm_head"]}
_TARGETS = {"targets": ["Linear"], **_LINEAR}


@dataclass(frozen=True)
class LlmcRecipe:
    """``modifiers``: llm-compressor modifier name -> kwargs, applied in order; ``group_size``: the input
    columns one weight scale covers (None: per channel / no grouping); ``nm``: the N:M sparsity pattern."""

    name: str
    modifiers: dict
    calibrated: bool = True
    group_size: int | None = None
    nm: tuple[int, int] | None = None


RECIPES = {r.name: r for r in (
    LlmcRecipe("gptq-w4a16", {"GPTQModifier": {**_TARGETS, "scheme": "W4A16"}}, group_size=128),
    LlmcRecipe("gptq-w4a16-g64", {"GPTQModifier": {**_LINEAR, "config_groups": {"group_0": {
        "targets": ["Linear"], "weights": {"num_bits": 4, "type": "int", "symmetric": True, "strategy": "group",
                                           "group_size": 64}}}}}, group_size=64),
    LlmcRecipe("gptq-w8a16", {"GPTQModifier": {**_TARGETS, "scheme": "W8A16"}}),
    LlmcRecipe("awq-w4a16", {"AWQModifier": {},  # AWQ only smooths; the quantizer after it rounds
                             "QuantizationModifier": {**_TARGETS, "scheme": "W4A16_ASYM"}}, group_size=128),
    LlmcRecipe("w8a8-int8", {"SmoothQuantModifier": {"smoothing_strength": 0.8},
                             "GPTQModifier": {**_TARGETS, "scheme": "W8A8"}}),
    LlmcRecipe("fp8-dynamic", {"QuantizationModifier": {**_TARGETS, "scheme": "FP8_DYNAMIC"}}, calibrated=False),
    LlmcRecipe("sparsegpt-50", {"SparseGPTModifier": {**_TARGETS, "sparsity": 0.5, "mask_structure": "0:0"}}),
    LlmcRecipe("sparsegpt-2:4", {"SparseGPTModifier": {**_TARGETS, "sparsity": 0.5, "mask_structure": "2:4"}},
               nm=(2, 4)),
    LlmcRecipe("wanda-50", {"WandaPruningModifier": {**_TARGETS, "sparsity": 0.5, "mask_structure": "0:0"}}),
)}


def get_recipe(name: str) -> LlmcRecipe:
    """The recipe called ``name`` (case-insensitive); InputError listing the known names otherwise."""
    recipe = RECIPES.get(name.strip().lower())
    if recipe is None:
        raise InputError(f"unknown llm-compressor variant {name!r}; known: {', '.join(RECIPES)}")
    return recipe


def shape_problems(recipe: LlmcRecipe, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """One line per weight (name -> (out, in) shape) whose input width the recipe cannot split evenly:
    a group size or an N:M block that does not divide it."""
    step = recipe.group_size or (recipe.nm[1] if recipe.nm else None)
    if step is None:
        return []
    what = f"group size {step}" if recipe.group_size else f"{recipe.nm[0]}:{recipe.nm[1]} blocks"
    return [f"{name}: {shape[-1]} input columns are not a multiple of the {what}"
            for name, shape in shapes.items() if len(shape) == 2 and shape[-1] % step]


def indivisible_modules(recipe: LlmcRecipe, shapes: dict[str, tuple[int, ...]]) -> list[str]:
    """The module names (weight name without ``.weight``) whose input width the recipe's group size does not
    divide; empty for recipes without groups."""
    if recipe.group_size is None:
        return []
    return [name.removesuffix(".weight") for name, shape in shapes.items()
            if len(shape) == 2 and shape[-1] % recipe.group_size]


def ignore_patterns(modules: list[str], all_modules: list[str]) -> list[str]:
    """``modules`` as llm-compressor ``ignore`` entries: one ``re:`` pattern per family (the name with its
    block index replaced by ``\\d+``) when every module of that family is listed, exact names otherwise.
    Example: q_proj of all 30 blocks -> ``re:^model\\.layers\\.\\d+\\.self_attn\\.q_proj$``."""
    def family(name: str) -> str:
        return "^" + r"\.".join(r"\d+" if part.isdigit() else re.escape(part) for part in name.split(".")) + "$"

    listed = set(modules)
    patterns: list[str] = []
    for key in dict.fromkeys(family(name) for name in modules):
        members = [name for name in all_modules if family(name) == key]
        whole = all(name in listed for name in members) and len(members) > 1
        patterns += [f"re:{key}"] if whole else [n for n in members if n in listed]
    return patterns


def with_ignored(recipe: LlmcRecipe, entries: list[str]) -> LlmcRecipe:
    """``recipe`` with ``entries`` added to the ``ignore`` list of every modifier that has one (the
    quantizing and pruning modifiers; AWQ then skips the smoothing mappings whose layers are all ignored)."""
    if not entries:
        return recipe
    modifiers = {name: ({**kwargs, "ignore": list(dict.fromkeys([*kwargs["ignore"], *entries]))}
                        if "ignore" in kwargs else kwargs) for name, kwargs in recipe.modifiers.items()}
    return replace(recipe, modifiers=modifiers)
