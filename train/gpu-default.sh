#!/usr/bin/env bash
# Teacher and student of the default model on one lent GPU, within one lease of about nine minutes:
#   bash train/gpu-default.sh OUT DATA GENERATED INIT [TEACHER_S] [DEADLINE_S]
# OUT: where the slim checkpoints, training logs and console.log go; DATA: a folder of train/ and val/
# photos already at the size they are used (train_photos split by edge.imaging.splits and downscaled x2);
# GENERATED: generated video-call content (train.builtin); INIT: the student to continue (the shipped one's
# checkpoint, python -m edgesharp.calibrate.recover). The teacher (gpu-teacher.yaml) trains for TEACHER_S seconds,
# then two students (gpu-student.yaml, with and without webcam frames in the final phase) share the GPU
# until DEADLINE_S seconds after the start, less a margin to write the results. Choose between the students
# on the validation split, on a CPU. Nothing here needs a GPU: on a CPU it runs, slowly, the same way.
set -euo pipefail
OUT=$1 DATA=$2 GEN=$3 INIT=$4 TEACHER_S=${5:-270} DEADLINE_S=${6:-520}
RUNS=${RUNS:-/tmp/edgesharp-gpu-runs}
PY=${PYTHON:-python3}
mkdir -p "$OUT" "$RUNS"
common=(--set "data.sources.0.path=$DATA/train" --set data.sources.0.split= --set data.sources.0.downscale=1
        --set data.sources.1.kind=folder --set data.sources.1.content=all --set "data.sources.1.path=$GEN"
        --set "validation.source=$DATA/val" --set validation.split= --set validation.downscale=1 --set progress=false)
extra=("${@:7}")
log() { echo "[$(date +%T) +${SECONDS}s] $*"; }

log "teacher: ${TEACHER_S}s"
$PY -m edgesharp.train train/configs/gpu-teacher.yaml "${common[@]}" --set "out_dir=$RUNS/teacher" \
    --set "time_budget_s=$TEACHER_S" "${extra[@]}"
cp "$RUNS/teacher/log.jsonl" "$OUT/teacher.jsonl"
$PY -m edgesharp.train slim "$RUNS/teacher/last.pt" --out "$OUT/teacher.pt" --half

student_s=$((DEADLINE_S - SECONDS - 45))
student_s=$((student_s < 60 ? 60 : student_s))
log "students: ${student_s}s each, side by side"
student() {  # NAME, then overrides
    local name=$1; shift
    $PY -m edgesharp.train train/configs/gpu-student.yaml "${common[@]}" --set "out_dir=$RUNS/$name" \
        --set "teacher.path=$RUNS/teacher/last.pt" --set "init_from=$INIT" --set "time_budget_s=$student_s" \
        "$@" "${extra[@]}" 2>&1 | sed "s/^/[$name] /"
}
student student-webcam &
webcam=$!
student student-clean --set "phases.2.subsets=[3, 3, 9]" &
clean=$!
status=0
wait $webcam || status=$?
wait $clean || status=$?
for name in student-webcam student-clean; do
    if [ -f "$RUNS/$name/last.pt" ]; then
        cp "$RUNS/$name/log.jsonl" "$OUT/$name.jsonl"
        $PY -m edgesharp.train slim "$RUNS/$name/last.pt" --out "$OUT/$name.pt"
    fi
done
log "done (status $status)"
exit $status
