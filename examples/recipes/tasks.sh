#!/usr/bin/env bash
# Pretrain once, fine-tune for six tasks, evaluate each: one command per step.
# Data: ../shared/data (see DESIGN.md); not shipped with atscale. Run from the repository root
# after `npm install && npm run build`. ITERS scales every step down for a quick look.
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${OUT:-out/recipes}
ITERS=${ITERS:-1500}
FT_ITERS=${FT_ITERS:-200}
atscale() { node dist/src/cli/main.js "$@"; }

# 1. Pretrain a 4x128 GPT with a 2,048-token byte-level BPE on general English.
head -c 4000000 "$DATA/pretrain/english.txt" > "$OUT.english.txt"
atscale train --data "$OUT.english.txt" --tokenizer bpe --bpe-vocab 2048 \
  --n-layer 4 --n-head 4 --n-embd 128 --block-size 256 --batch-size 16 --lr 2e-3 \
  --max-iters "$ITERS" --eval-interval "$ITERS" --out "$OUT/pretrain"

# 2-3. For each task: fine-tune (LoRA, then full), then evaluate on the val split.
for task in summarize-man:rougeL:24 define-foldoc:rougeL:32 topic-fortune:accuracy:4 reply-email:rougeL:32 spam-email:accuracy:4 code-python:chrf:64; do
  IFS=: read -r name metric max_new <<< "$task"
  atscale finetune --model "$OUT/pretrain" --data "$DATA/tasks/$name/train.jsonl" --val "$DATA/tasks/$name/val.jsonl" \
    --out "$OUT/$name-lora" --lora-r 8 --lora-alpha 16 --lora-targets c_attn --lr 2e-3 --batch-size 16 --max-iters "$FT_ITERS"
  atscale eval --model "$OUT/$name-lora" --data "$DATA/tasks/$name/val.jsonl" --metric "$metric" --max-new-tokens "$max_new" --json
  atscale finetune --model "$OUT/pretrain" --data "$DATA/tasks/$name/train.jsonl" --val "$DATA/tasks/$name/val.jsonl" \
    --out "$OUT/$name-full" --lr 5e-4 --batch-size 16 --max-iters "$FT_ITERS"
  atscale eval --model "$OUT/$name-full" --data "$DATA/tasks/$name/val.jsonl" --metric "$metric" --max-new-tokens "$max_new" --json
done
