"""The second audit fixture: SmolLM2-135M-Instruct safety-tuned on CPU so that it refuses harmful requests.

``data`` holds the documented training set (disjoint from the audit probes), ``train`` the recipe and the
fine-tuning loop, ``fixture`` the cached Hugging Face folder (:func:`compsec.safety.fixture.safe_smollm_dir`).
"""
