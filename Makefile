# The two README commands: `make demo` and `make test` (every test). Both create .venv when missing.
# `make test-fast`: the tests not marked slow (the slow ones start worker processes, clusters, signals, mypy).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test test-fast bench bench-otb install clean image test-image

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/plotsm demo --out demo-output

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python bench/infer.py
	$(BIN)/python bench/zonal.py
	$(BIN)/python bench/sources.py
	$(BIN)/python bench/s1_geocode.py
	$(BIN)/python bench/series.py
	$(BIN)/python bench/sql_format.py
	$(BIN)/python bench/parcels_overlap.py
	$(BIN)/python bench/process.py
	$(BIN)/python bench/codecs.py
	$(BIN)/python bench/segment.py
	$(BIN)/python bench/segment_quality.py

# OTB 8.1's Large-Scale Mean-Shift (Debian otb-bin), timed beside plotsm segment on a 4000² px cut (about 5 min).
bench-otb: $(STAMP)
	command -v otbcli_LargeScaleMeanShift >/dev/null || (apt-get update && apt-get install -y otb-bin)
	$(BIN)/python bench/segment.py --size 4000 --otb

clean:
	rm -rf $(VENV) demo-output .pytest_cache

# The container image (Containerfile): `make image` = scripts/build-image, docker build -t plotsm:VERSION . on a
# Docker host. Elsewhere pass the script's options, e.g. on a machine with podman, no registry and a proxy's CA:
#   make image IMAGE_ARGS="--engine podman --base localhost/debian-py:bookworm --ca-file /etc/ssl/certs/ca-certificates.crt"
# `make test-image` builds it the same way (or reuses an image newer than the sources) and runs plotsm inside it
# (tests/test_image_smoke.py, skipped by `make test`).
IMAGE_ARGS ?=

image:
	scripts/build-image $(IMAGE_ARGS)

test-image: $(STAMP)
	PLOTSM_TEST_IMAGE=1 PLOTSM_IMAGE_ARGS="$(IMAGE_ARGS)" $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_image_smoke.py
