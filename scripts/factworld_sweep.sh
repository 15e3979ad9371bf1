#!/usr/bin/env bash
# Build several fact-world recipes side by side on one GPU, each fitted into the same wall-clock budget,
# and pack each build (checkpoint + log) into one archive under $OUT.
#
#   OUT=/tmp/sweep MINUTES=6.5 bash scripts/factworld_sweep.sh
#
# Each line of RECIPES is "<name> <build options...>" (see `python -m editbench.factworld.build --help`).
# The winning recipe becomes the defaults in editbench/factworld/build.py and its checkpoint is shipped.
set -u
OUT=${OUT:-/tmp/factworld-sweep}
MINUTES=${MINUTES:-6.5}
KILL_AFTER=${KILL_AFTER:-520}
WORK=${WORK:-/tmp/factworld-builds}
mkdir -p "$OUT" "$WORK"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 OMP_NUM_THREADS=1 HF_HUB_OFFLINE=1
RECIPES=${RECIPES:-"A
B --set n_embd=128 --set tokens_per_batch=6144
C --set n_embd=192 --set n_head=6 --set tokens_per_batch=6144 --set lr=3e-3
D --set n_embd=128 --set tokens_per_batch=6144 --set lr=1e-2
E --set tokens_per_batch=6144 --set lr=8e-3
F --set n_embd=192 --set n_head=6 --set lr=2e-3
G --set n_embd=128 --set tokens_per_batch=16384 --set lr=1e-2"}
{
  date; nvidia-smi --query-gpu=name,memory.total --format=csv,noheader 2>/dev/null
  python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__, 'cuda', torch.cuda.is_available())"
} > "$OUT/summary.txt" 2>&1
while read -r name opts; do
  [ -z "$name" ] && continue
  (
    timeout "$KILL_AFTER" python3 -m editbench.factworld.build --out "$WORK/$name" --device "${DEVICE:-cuda}" \
      --max-minutes "$MINUTES" --epochs 5000 --eval-every 10 $opts > "$WORK/$name.log" 2>&1
    echo "rc=$?" >> "$WORK/$name.log"
    cp "$WORK/$name.log" "$WORK/$name/" 2>/dev/null
    tar czf "$OUT/$name.tgz" -C "$WORK" "$name" "$name.log"
  ) &
done <<< "$RECIPES"
wait
for f in "$WORK"/*.log; do
  echo "== $(basename "$f") =="; grep -E "^\[build\] (world|epoch|done)|budget|rc=|Error|error" "$f" | tail -12
done >> "$OUT/summary.txt"
cat "$OUT/summary.txt"
