#!/usr/bin/env bash
# Retrain the bundled brain3d on a GPU in one command (about 9 minutes): configs/brain3d.yaml's design
# (the image kept, learned channels pre-trained on structure codes for the whole budget) on whole
# 96x112x96 volumes (no crop), as long as the budget allows; the best checkpoint by validation Dice
# (the validation anatomies) slimmed to $OUT/brain3d.ckpt. The held-out pairs are not touched here;
# on the CPU afterwards choose its gate (benchmarks/choose_gate.py), then score it
# (benchmarks/validation_cases.py, benchmarks/real_brains.py).
# Needs the built folder at ./brains (python -m lightning_reg.anatomy brains; carry it to the GPU
# machine) and benchmarks/gpu_wheels.sh's wheels where there is no PyPI. LABEL_MAPS (default
# shared/data/synthseg-label-maps, where it exists) adds SynthSeg's 15 training label maps.
#     MINUTES=8 bash benchmarks/gpu_brains.sh
set -euo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-benchmarks/out/gpu}"
minutes="${MINUTES:-8}"
mkdir -p "$out"
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --find-links .whl --no-deps --no-build-isolation .whl/* > "$out/install.log" 2>&1
fi
python3 -m pip install -q --no-build-isolation --no-deps -e . >> "$out/install.log" 2>&1
test -f brains/test_pairs.csv || { echo "no ./brains folder: run python -m lightning_reg.anatomy brains first"; exit 2; }
maps="${LABEL_MAPS:-shared/data/synthseg-label-maps}"
extra=()
if [ -d "$maps" ]; then extra=(--data.label_maps "$maps"); fi
lightning-reg fit --config configs/brain3d.yaml --trainer configs/trainer/gpu.yaml --data.root brains \
    --data.crop null --model.pretrain_steps 1000000 --data.train_pairs 400 --data.val_pairs 4 --data.num_workers 8 \
    --trainer.max_epochs 1000 --trainer.max_time "00:00:$(printf %02d "$minutes"):00" \
    --trainer.enable_progress_bar false "${extra[@]}" > "$out/brain3d_fit.log" 2>&1
best=$(ls -t runs/lightning-reg/*/checkpoints/best-*.ckpt 2>/dev/null | head -1)
test -n "$best" || { echo "no best checkpoint written; see $out/brain3d_fit.log"; exit 1; }
python3 -m lightning_reg.models.bundle "$best" brain3d --eval-transform greedy --eval-iterations 200 100 50
cp lightning_reg/models/brain3d.ckpt "$out/brain3d.ckpt"  # the card's figures must be remeasured before it lands
grep -o "val/dice[^ ]*" "$out/brain3d_fit.log" | tail -3 || true
echo "wrote $out/brain3d.ckpt from $best"
