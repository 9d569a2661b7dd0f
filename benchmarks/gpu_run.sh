#!/usr/bin/env bash
# One prepared GPU run of the throughput benchmarks; every result lands under $OUT.
#
# Before (on the machine with the checkout): carry Fashion-MNIST in the ignored
# folder data/fashion-mnist/ (the GPU machine has no internet):
#     mkdir -p data/fashion-mnist && cp /usr/share/datasets/fashion-mnist/*-ubyte.gz data/fashion-mnist/
# Then, with the device tool (about 6 minutes of device time after the start):
#     run(command="bash benchmarks/gpu_run.sh", carry=["data/fashion-mnist"], timeout_s=570)
# Elsewhere: OUT=/some/folder bash benchmarks/gpu_run.sh
#
# 1. ResNet-20 over 10,000 Fashion-MNIST images and the D-GEX-sized dense net over
#    20,000 random examples: jaxsurf (float32 and bf16) against the reference-style
#    PyTorch loop on the same GPU, and the measured matmul peak.
# 2. ResNet-56 over 50,000 images of CIFAR-10's shape (random values: CIFAR-10 is not
#    on these machines; the FLOPs are CIFAR-10's): seconds per point, from which the
#    51 x 51 surface's time follows (2,601 points), with one PyTorch round.
set -uo pipefail
export PYTHONUNBUFFERED=1
OUT="${OUT:-benchmarks/results}"
mkdir -p "$OUT"
PY=python3
DATA=data/fashion-mnist
[ -d "$DATA" ] || { echo "warning: $DATA missing: random stand-in images"; DATA=""; }

{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; \
  $PY -c "import jax, torch; print('jax', jax.__version__, jax.devices()); print('torch', torch.__version__)"; \
} 2>&1 | tee "$OUT/gpu_env.txt"

timeout 300 $PY -m benchmarks.grid_throughput --models resnet20 dense \
    --examples 10000 --batch-size 1000 --torch-batch-size 1000 ${DATA:+--data-dir $DATA} \
    --dense-examples 20000 --dense-batch-size 2000 --grid 4 --dense-grid 3 \
    --rounds 2 --torch-points 2 --torch-configs 8 \
    --out "$OUT/grid_throughput_gpu.json" 2>&1 | tee "$OUT/grid_throughput_gpu.log"

timeout 200 $PY -m benchmarks.grid_throughput --models resnet56 --image-shape cifar \
    --examples 50000 --batch-size 1000 --torch-batch-size 1000 --grid 3 \
    --rounds 1 --torch-points 1 --torch-configs 8 \
    --out "$OUT/grid_throughput_resnet56_gpu.json" 2>&1 | tee "$OUT/grid_throughput_resnet56_gpu.log"

# 3. Sharded params (issue 25): the 1/2/4/8 model-shard sweep of benchmarks/sharded.py on
#    the machine's own devices (up to 8; the shard counts that divide them): planned and
#    measured per-device bytes (peak_bytes_in_use), seconds per point, ratio to a bare
#    jitted sharded forward pass. The host-memory comparison is a CPU measurement (--skip-rss).
timeout 300 $PY -m benchmarks.sharded --real-devices --skip-rss --hidden 4096 --width 1024 \
    --examples 4096 --batch-size 1024 --chunks 6 \
    --out "$OUT/sharded_gpu.json" 2>&1 | tee "$OUT/sharded_gpu.log"
