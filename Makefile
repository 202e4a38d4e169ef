# One command per job; each makes its own virtual environment first.
# `make test` and `make train-lite` add the optional `train` extra (CPU PyTorch): tests compare
# the ONNX builders with PyTorch references. The package itself never needs torch.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
ARSIM := $(VENV)/bin/arsim
SCENARIO ?= scenarios/orbit-desk
DEVICE ?= redmi-note-10
OUT ?= out/run

.PHONY: setup setup-train mobile-setup kotlin-check swift-check grid run test bench fuzz lint samples train-lite clean
TEACHER ?= toon-classic
STEPS ?= 1500

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

setup-train: $(VENV)/.installed-train

$(VENV)/.installed-train: $(VENV)/.installed
	$(PY) -m pip install --quiet -e '.[dev,train,cluster,fast]'
	touch $@

# The mobile bench's non-Python parts: Debian chromium + chromedriver (if missing), the Appium 3
# server with its fake and Chromium drivers, and onnxruntime-web, from npm (mobile/setup.sh).
mobile-setup: mobile/.appium/.installed

mobile/.appium/.installed: mobile/package.json mobile/package-lock.json mobile/setup.sh
	bash mobile/setup.sh
	touch $@

# The Android app's platform-free Kotlin (metrics, pose record, parameters) and its JVM unit
# tests, compiled with a real kotlinc (npm kotlin-compiler, into mobile/.kotlin/) and run with
# JUnit 4 against mobile/test-vectors/metrics-vector.json; no Android SDK (mobile/android/check.sh).
kotlin-check:
	bash mobile/android/check.sh

# The iOS app's ArsimCore package (mobile/ios) compiled and its XCTests run (the shared metrics
# vector included) with Debian's Swift 6.0.3 in a Debian trixie root kept in mobile/.swift-root/
# (root needed; first run: debootstrap + swiftlang, ~0.6 GB download, ~2.6 GB disk, ~2 min).
swift-check:
	bash mobile/ios/check.sh

# A local device farm in the foreground until Ctrl-C: a Selenium Grid 4 hub on GRID_PORT and a
# relay node to the project's Appium server (web slots), logs in out/grid
# (`arsim device grid --help` for slots, sessions at once and the session queue timeout).
GRID_PORT ?= 4444
grid: setup mobile-setup
	$(ARSIM) device grid --port $(GRID_PORT)

# The main job: replay the bundled sample on the default device and model.
# Exit code 1 only means a budget failed; the verdict is the output, so make succeeds.
run: setup
	$(ARSIM) run $(SCENARIO) --device $(DEVICE) --out $(OUT); rc=$$?; [ $$rc -le 1 ]

test: setup-train mobile-setup
	$(PY) -m pytest

bench: setup mobile-setup
	$(PY) bench/run_bench.py --out bench/results.json
	$(PY) bench/matrix_scale.py --out bench/matrix_scale.json
	$(PY) bench/host_speed.py --out bench/host_speed.json
	$(PY) bench/import_speed.py --out bench/import_speed.json
	$(PY) bench/recording_demo.py --out bench/recording_demo.json --picture docs/recording-demo.png
	$(PY) bench/soak.py --out bench/soak.json
	$(ARSIM) sweep --out bench
	$(PY) bench/mobile_calibration.py --out bench --history bench/mobile_calibration_runs.md

# Fuzz the readers of untrusted files (tests/test_fuzz.py) for FUZZ_MINUTES each; the counts
# go to bench/fuzz.json. `make test` runs the same targets for a few dozen examples.
FUZZ_MINUTES ?= 10
fuzz: setup
	$(PY) tests/fuzz_driver.py --minutes $(FUZZ_MINUTES) --out bench/fuzz.json

lint: setup
	$(VENV)/bin/ruff check .

# Regenerate the bundled sample scenarios (deterministic for their seeds).
samples: setup
	$(PY) -m simulator.scenario.samples

# Distil the AR-lite student from TEACHER (any model name or .onnx path) into models/.
train-lite: setup-train
	$(PY) -m simulator.zoo.train_lite --out models --teacher $(TEACHER) --steps $(STEPS)

clean:
	rm -rf out .pytest_cache .ruff_cache
