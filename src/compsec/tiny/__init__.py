"""The embedded tiny assistant every demo and test uses, and the digits classifier fixture.

- ``corpus``    the generated, seeded chat corpus (train and held-out phrasings);
- ``tokenizer`` the locally trained BPE tokenizer with its chat template;
- ``train``     the training recipe (a 2-layer Llama, about 1.6 M parameters);
- ``assistant`` load-or-train with a verified cache (``load_tiny_assistant``);
- ``chat``      batched greedy generation through the chat template (``generate``);
- ``evaluate``  refusal / answer / correctness rates;
- ``digits``    the scikit-learn digits MLP fixture.

Nothing is imported here, so ``import compsec.tiny`` stays cheap.
"""
