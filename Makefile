# The two commands of the README, and a few helpers. Python 3.10+ with pip on PATH.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-all demo test lint default-model

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

# The shipped default model, from nothing but what installed packages provide (about an hour on 2 cores):
# teacher on ground truth, real-time student distilled from it, fine-tuned on photographs, INT8 under the
# SSIM guard, Kodak24 check (MODEL_CARD.md).
default-model: install-all
	edgesharp train train/configs/default-teacher.yaml $(if $(wildcard runs/default-teacher/last.pt),--resume)
	edgesharp train train/configs/default.yaml $(if $(wildcard runs/default/last.pt),--resume)
	edgesharp train train/configs/default-finetune.yaml $(if $(wildcard runs/default-finetune/last.pt),--resume)
	edgesharp calibrate runs/default-finetune/last.pt --out edge/models/default --name edgesharp-default --skip-ort-int8
	edgesharp bench quality --model edge/models/default --teacher runs/default-teacher/best.pt \
		--images ../shared/data/kodak24 --pairs ../shared/data/gopro_pairs --out out/default-model-quality
