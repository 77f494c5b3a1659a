"""How far are compsec's torch simulations of a GGUF from llama.cpp running the file?

For each llama.cpp type (default q4_k_m, q4_0, q8_0) the model is converted and quantized by libllama
(:func:`compsec.models.gguf_quantize.quantized_gguf`); then three torch models are compared with llama.cpp
running that file (``LlamaCppBackend``):

- ``original``: the unquantized model (how much quantization itself moves the model, as llama.cpp runs it);
- ``registry``: compsec's registry format of the same base type (``q4_k`` for q4_k_m, ``q4_0``, ``q8_0``)
  applied to every quantizable weight: what ``--variants q4_k`` audits (uniform type, embeddings untouched);
- ``file``: a torch model holding the file's own dequantized tensors (:mod:`compsec.models.gguf_weights`):
  same weights as llama.cpp, only the runtime differs (llama.cpp rounds activations to Q8 blocks).

Figures: mean next-token KL(torch || llama.cpp) in nats over the contrast probe texts (every position), and
greedy-answer flips over the first ``--limit`` refusal / over-refusal / injection probes: answers that differ
as text, and refusal verdicts (the audit's default ``refusal`` judge) that differ.

    python bench/bench_llamacpp_vs_sim.py [--model tiny|smollm|DIR] [--types q4_k_m,q4_0,q8_0] [--limit 8]
"""

from __future__ import annotations

import argparse
import copy
import json
import time

REGISTRY = {"q4_k_m": "q4_k", "q4_k_s": "q4_k", "q5_k_m": "q5_k", "q6_k": "q6_k", "q4_0": "q4_0", "q8_0": "q8_0",
            "q5_0": "q5_0", "q3_k_m": "q3_k", "q2_k": "q2_k"}
GENERATED = ("refusal", "over-refusal", "injection")


def load(which: str):
    from compsec.models.io import load_model

    if which == "tiny":
        from compsec.tiny.assistant import tiny_assistant_dir

        which = str(tiny_assistant_dir())
    elif which == "smollm":
        from compsec.models.smollm import smollm_folder

        which = str(smollm_folder())
    return load_model(which)


def torch_side(model, tokenizer, texts, prompts, max_new_tokens):
    from compsec.audit.backend import LocalBackend

    backend = LocalBackend(model, tokenizer, "cpu", batch_size=8, max_new_tokens=max_new_tokens)
    return backend.next_token_logprobs(texts), [g.text for g in backend.generate(prompts)]


def compare(reference, other) -> dict:
    """Mean KL(torch || llama.cpp) over texts, and text / refusal-verdict flips over answers."""
    from compsec.audit.backend import mean_token_kl
    from compsec.audit.judges import get_judge

    (ref_lp, ref_answers), (lp, answers) = reference, other
    judge = get_judge("refusal")
    verdicts = [(judge.judge(a).outcome, judge.judge(b).outcome) for a, b in zip(ref_answers, answers)]
    return {"kl": sum(mean_token_kl(a, b) for a, b in zip(lp, ref_lp)) / len(lp),
            "answer_flips": sum(a != b for a, b in zip(ref_answers, answers)),
            "refusal_flips": sum(a != b for a, b in verdicts), "answers": len(answers)}


def one_type(model, tokenizer, type_name, texts, prompts, max_new_tokens) -> dict:
    from compsec import formats
    from compsec.audit.llamacpp_backend import LlamaCppBackend
    from compsec.formats.apply import quantize_model
    from compsec.models.gguf_quantize import quantized_gguf
    from compsec.models.gguf_weights import load_gguf_weights

    started = time.perf_counter()
    path = quantized_gguf(model, tokenizer, type_name)
    row = {"type": type_name, "build_s": round(time.perf_counter() - started, 1)}
    backend = LlamaCppBackend(path, tokenizer, max_new_tokens)
    try:
        started = time.perf_counter()
        llama = (backend.next_token_logprobs(texts), [g.text for g in backend.generate(prompts)])
        row["llama_cpp_s"] = round(time.perf_counter() - started, 1)
    finally:
        backend.close()
    from_file = copy.deepcopy(model)
    load_gguf_weights(from_file, path)
    sides = {"original": model, "file": from_file}
    if type_name in REGISTRY:
        sides["registry:" + REGISTRY[type_name]] = quantize_model(model, formats.get(REGISTRY[type_name]))
    for name, torch_model in sides.items():
        row[name] = compare(llama, torch_side(torch_model, tokenizer, texts, prompts, max_new_tokens))
    return row


def main() -> None:
    from compsec.audit.backend import chat_text
    from compsec.audit.probes import load_probe_set

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="tiny", help="tiny, smollm, or a model folder")
    parser.add_argument("--types", default="q4_k_m,q4_0,q8_0")
    parser.add_argument("--limit", type=int, default=8, help="generated probes per kind")
    parser.add_argument("--max-new-tokens", type=int, default=32)
    args = parser.parse_args()
    model, tokenizer = load(args.model)
    texts = [chat_text(tokenizer, p.prompt) + p.expected for p in load_probe_set("contrast")]
    prompts = [p.prompt for kind in GENERATED for p in load_probe_set(kind)[: args.limit]]
    for type_name in args.types.split(","):
        row = one_type(model, tokenizer, type_name.strip(), texts, prompts, args.max_new_tokens)
        print(json.dumps({"model": args.model, **row}), flush=True)


if __name__ == "__main__":
    main()
