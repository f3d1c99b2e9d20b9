#!/bin/bash
# Multi-node DDP training with torchrun (no scheduler needed). Run the same command on every node:
#   NNODES=2 NODE_RANK=0 MASTER=node0:29500 RUN_ID=dla3x-01 scripts/torchrun_train.sh experiment=multi_pose_dla_3x gpus=2x8
#   NNODES=2 NODE_RANK=1 MASTER=node0:29500 RUN_ID=dla3x-01 scripts/torchrun_train.sh experiment=multi_pose_dla_3x gpus=2x8
# One node, 8 GPUs:
#   scripts/torchrun_train.sh experiment=multi_pose_dla_3x gpus=8
# All ranks share outputs/train/torchrun-<RUN_ID> (cluster=torchrun); only rank 0 writes into it. Start again
# with the same RUN_ID (or let --max-restarts restart the workers) and training resumes from its newest
# checkpoint. The node count x GPUs per node must match the gpus=... choice.
set -euo pipefail
NNODES="${NNODES:-1}"
NPROC="${NPROC_PER_NODE:-8}"
RUN_ID="${RUN_ID:-$(date +%Y-%m-%d_%H-%M-%S)}"
if [ "${NNODES}" -gt 1 ]; then
  : "${MASTER:?set MASTER=host:port of node 0 for a multi-node run}"
  RDZV=(--nnodes "${NNODES}" --node-rank "${NODE_RANK:?set NODE_RANK}" --rdzv-backend c10d
        --rdzv-endpoint "${MASTER}" --rdzv-id "${RUN_ID}")
else
  # Not --standalone: it replaces --rdzv-id with a random one, and the run folder is named after the id.
  RDZV=(--nnodes 1 --rdzv-backend c10d --rdzv-endpoint "localhost:${PORT:-29500}" --rdzv-id "${RUN_ID}")
fi
exec torchrun "${RDZV[@]}" --nproc-per-node "${NPROC}" --max-restarts "${MAX_RESTARTS:-0}" \
  -m centerpose.train cluster=torchrun "$@"
