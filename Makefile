# The two commands of the README, and a few helpers. Python 3.10+ with pip on PATH.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-all demo test lint

install:            ## runtime only: OpenVINO, OpenCV, numpy, psutil (seconds on a laptop)
	$(PIP) install -e .

install-all:        ## everything: training, calibration, benchmarks, tests
	$(PIP) install -e '.[all,dev]'

demo: install       ## sharpen an offline scene with the shipped model; writes out/demo/
	edgesharp run --source synthetic --frames 150 --sink out/demo/sharpened.mp4 --sink compare:out/demo --stats-json out/demo/stats.json

test: install-all   ## what CI runs
	$(PYTHON) -m pytest -q

lint:
	ruff check .
