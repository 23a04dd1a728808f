# The two commands of the README:
#   make demo   builds a virtual environment, installs postprod, builds the demo
#               shoot and processes it with both executors.
#   make test   builds the same environment and runs the test suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEMO_DIR ?= demo
DEMO_CHART ?= social_media
# Use the verified model copies of the shared test data when they are there;
# elsewhere `postprod models fetch` downloads them from their official address.
SHARED_MODELS := $(abspath ../shared/data/models)
ifneq ($(wildcard $(SHARED_MODELS)/*.onnx),)
export POSTPROD_MODEL_DIR ?= $(SHARED_MODELS)
endif
STAMP := $(VENV)/.installed

.PHONY: demo test install clean-demo system-deps bench accuracy

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev,insightface]'
	touch $(STAMP)

install: $(STAMP)

# Debian packages the tests use: exiftool reads exported metadata back,
# chromium runs the review app's end-to-end test, DejaVu Sans draws watermarks' text.
SYSTEM_PACKAGES := libimage-exiftool-perl chromium fonts-dejavu-core
system-deps:
	@if command -v exiftool >/dev/null 2>&1 && command -v chromium >/dev/null 2>&1 \
		&& [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ]; then :; \
	elif [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(SYSTEM_PACKAGES) >/dev/null; \
	else echo "missing system packages: sudo apt-get install $(SYSTEM_PACKAGES)"; fi

demo: install
	$(BIN)/postprod models fetch yunet_2023mar
	$(BIN)/postprod demo-shoot --dest $(DEMO_DIR)/shoot
	$(BIN)/postprod process $(DEMO_DIR)/shoot --out $(DEMO_DIR)/out-local --executor local --chart $(DEMO_CHART); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]
	$(BIN)/postprod process $(DEMO_DIR)/shoot --out $(DEMO_DIR)/out-ray --executor ray --chart $(DEMO_CHART); rc=$$?; [ $$rc -eq 0 ] || [ $$rc -eq 3 ]
	@echo
	@echo "Demo outputs: $(abspath $(DEMO_DIR))/out-ray (Ray) and $(abspath $(DEMO_DIR))/out-local (local executor)"
	@echo "Open $(abspath $(DEMO_DIR))/out-ray/report.html, or review it: $(BIN)/postprod review $(DEMO_DIR)/out-ray"

# The suite in parallel, one process per CPU up to four (pytest-xdist); a module's tests stay in one
# process (--dist loadscope), so its fixtures are built once. `TEST_WORKERS=0 make test` runs it serially.
TEST_WORKERS ?= auto
test: install system-deps
	$(BIN)/python -m pytest -q $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --maxprocesses 4 --dist loadscope)

bench: install
	$(BIN)/python benchmarks/run.py

# Decisions against known truth (benchmarks/ACCURACY.md); uses rawtherapee-cli when installed.
accuracy: install
	$(BIN)/python benchmarks/accuracy.py --write

clean-demo:
	rm -rf $(DEMO_DIR)
