# The two commands of the README, and a few helpers. Python 3.10+ with pip on PATH.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip

.PHONY: install install-all demo test lint default-model default-bundle default-lighter pareto

install:            ## runtime only: OpenVINO, OpenCV, numpy, psutil (seconds on a laptop)
	$(PIP) install -e .

install-all:        ## everything: training, calibration, benchmarks, tests
	$(PIP) install -e '.[all,dev]'

demo: install       ## sharpen an offline scene with the shipped model; writes out/demo/
	edgesharp run --source synthetic --frames 150 --sink out/demo/sharpened.mp4 --sink compare:out/demo --stats-json out/demo/stats.json

test: install-all   ## what CI runs
	$(PYTHON) -m pytest -q

lint:               ## ruff
	ruff check .

# tensors the default's INT8 keeps float (docs/calibration.md)
DEFAULT_FLOAT_NODES = 0/add/8 0/add/9 0/add/11 0/conv2d/3 1/pixel_shuffle/3 ending/conv2d/0 shuffle/pixel_shuffle/0

# photos of the last training stage and of calibration (train split) and of every choice (validation split)
DATA ?= ../shared/data/train_photos

# the shipped default model from scratch, resumable (stages: MODEL_CARD.md); DATA=DIR for other photos
PHOTO_SETS = --set data.sources.0.path=$(DATA) --set validation.source=$(DATA)
default-model: install-all  ## the shipped default model from scratch
	edgesharp train train/configs/default-teacher.yaml $(if $(wildcard runs/default-teacher/last.pt),--resume)
	edgesharp train train/configs/default-teacher-continue.yaml $(if $(wildcard runs/default-teacher2/last.pt),--resume)
	edgesharp train train/configs/default.yaml $(if $(wildcard runs/default-student/last.pt),--resume)
	edgesharp train train/configs/default-continue.yaml $(if $(wildcard runs/default-student2/last.pt),--resume)
	edgesharp train train/configs/default-photos.yaml --set init_from=runs/default-student2/last.pt $(PHOTO_SETS) \
		$(if $(wildcard runs/default-photos/last.pt),--resume)
	$(MAKE) default-bundle CHECKPOINT=runs/default-photos/last.pt
	$(MAKE) default-lighter STUDENT=runs/default-photos/last.pt
	edgesharp bench quality --model edge/models/default --images $(DATA) --split val --downscale 2 \
		--out out/default-model-val
	edgesharp bench quality --model edge/models/default --images ../shared/data/kodak24 \
		--pairs ../shared/data/gopro_pairs --out out/default-model-quality

# the calibration stage alone, from a student checkpoint (about 25 min on 2 cores; docs/calibration.md)
CHECKPOINT ?= runs/default-student2/last.pt
BUNDLE ?= edge/models/default
default-bundle:     ## calibrate CHECKPOINT into BUNDLE with the default's settings
	edgesharp calibrate $(CHECKPOINT) --out $(BUNDLE) --name edgesharp-default --skip-ort-int8 --slim \
		--max-ssim-drop 0.006 --guard worst-level --preset mixed --activation-range minmax --qat-steps 2000 \
		--qat-photometric 0.5 --int8-optional \
		--val-images $(DATA) --val-split val --calib-images $(DATA) --calib-split train --downscale 2 \
		--ignored-scope $(DEFAULT_FLOAT_NODES)

# the governor's lighter model (MODEL_CARD.md, "The lighter variant"): the lean student fine-tuned from STUDENT on
# DATA, calibrated float-only, then linked into BUNDLE with its cost timed as on an AVX2 laptop (about 100 min on 2 cores)
STUDENT ?= runs/recovered-v12/last.pt
LIGHTER ?= edge/models/default-lighter
default-lighter:    ## the lighter variant the governor switches to before it lowers the resolution
	edgesharp train train/configs/lean-from-v12.yaml --set init_from=$(STUDENT) --set teacher.path=$(STUDENT) \
		$(PHOTO_SETS) $(if $(wildcard runs/lean-from-v12/last.pt),--resume)
	edgesharp train train/configs/lean-continue.yaml $(PHOTO_SETS) $(if $(wildcard runs/lean-continue/last.pt),--resume)
	edgesharp calibrate runs/lean-continue/last.pt --out $(LIGHTER) --name edgesharp-default-lighter --skip-ort-int8 \
		--slim --max-ssim-drop 0.006 --guard worst-level --preset mixed --activation-range minmax --no-accuracy-control \
		--int8-optional --val-images $(DATA) --val-split val --calib-images $(DATA) --calib-split train --downscale 2
	$(PYTHON) -m edgesharp.calibrate.lighter $(BUNDLE) $(LIGHTER) --isa-cap avx2

# the real-time student study: train, calibrate, time and score each candidate (docs/benchmarks.md, "pareto")
PARETO_ARCHS ?= nafnet-rt-lite-rms nafnet-rt-ln nafnet-rt-lite nafnet-rt-s2 nafnet-rt-s2-w12 nafnet-rt-deep nafnet-rt-deeper \
	nafnet-rt-fast nafnet-rt-wide-stem nafnet-rt-lite-rms-k5 nafnet-tiny
PARETO_BENCH_FLAGS ?=
pareto: install-all ## the real-time student study
	for a in $(PARETO_ARCHS); do \
		edgesharp train train/configs/pareto.yaml --set arch=$$a --set out_dir=runs/pareto2500/$$a \
			$$(test -f runs/pareto2500/$$a/last.pt && echo --resume) || exit 1; \
		test -f out/pareto2500/$$a/manifest.json || edgesharp calibrate runs/pareto2500/$$a/last.pt --out out/pareto2500/$$a \
			--val-crop 256 --name $$a --skip-ort-int8 --slim --no-accuracy-control --preset mixed --subset-size 100 \
			--max-ssim-drop 0.01 || exit 1; \
	done
	edgesharp bench all $(foreach a,$(PARETO_ARCHS),--model out/pareto2500/$(a)) --checkpoint runs/pareto2500/nafnet-tiny/last.pt \
		--backends openvino,pytorch --precisions fp32,int8 --sizes 640x480,1280x720 --no-search $(PARETO_BENCH_FLAGS) \
		--images ../shared/data/kodak24 --no-sheet --repeats 2 --duration 2 --warmup 2 --e2e-seconds 5 --out out/bench-pareto
	$(PYTHON) -m edgesharp.benchmarks.pareto out/bench-pareto/results.json
