#!/usr/bin/env bash
# The GPU checks of docs/performance.md in one script (a lent GPU machine has minutes, not hours):
# the CUDA tests, then the 8B-shaped scoring benchmark eager (the model's own kernels against Liger's,
# interleaved) and compiled, each with a profile; FlexAttention's block mask against the dense mask (flex: eager,
# interleaved; flexcompile: compiled); the LM head's fold by passes against one log-softmax (fold: eager, interleaved);
# one batch in flight against two, for the dense mask, the block mask and FlashAttention's variable-length calls
# (inflight: eager, interleaved; inflightcompile: the dense mask, compiled; varlencompile: the variable-length
# calls, compiled).
# Wheels in .whl/ (e.g. liger-kernel) are installed first.
#   bash benchmarks/gpu_check.sh [OUT_DIR] [STAGES]   # STAGES: a comma list of
#                                 # tests,eager,compile,b,flex,flexcompile,fold,inflight,inflightcompile,varlencompile
set -uo pipefail
out=${1:-${OUT:-/tmp/gpu_check}}
stages=${2:-tests,inflight,varlencompile}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
        && export PYTHONPATH="$PYTHONPATH:/tmp/site"
fi
nvidia-smi --query-gpu=name,driver_version,clocks.sm,temperature.gpu,utilization.gpu --format=csv
python3 -c "import torch, transformers; print('torch', torch.__version__, 'transformers', transformers.__version__)"
python3 -c "import liger_kernel, triton; print('liger', liger_kernel.__file__, 'triton', triton.__version__)" || true
bench="python3 benchmarks/score_bench.py --random-shape llama-3.1-8b --dtype bfloat16 --spec-peak-tflops 989"
bench="$bench --skip-baselines --sustained-seconds 1"
case ",$stages," in *,tests,*)
    python3 -m pytest -q -p no:cacheprovider tests/scoring/test_engine_cuda.py tests/models/test_fused_kernels.py \
        tests/scoring/test_attention_masks.py \
        2>&1 | tee "$out/tests.log" | tail -15 ;; esac
case ",$stages," in *,eager,*)
    $bench --instructions 64 --kernels torch,liger --rounds 7 --profile --json "$out/gpu_a_eager.json" \
        2>&1 | tee "$out/gpu_a_eager.log" | tail -40 ;; esac
case ",$stages," in *,b,*)
    $bench --instructions 32 -k 8 --prompt-tokens 512 --response-tokens 256 --kernels torch,liger --rounds 5 \
        --json "$out/gpu_b_eager.json" 2>&1 | tee "$out/gpu_b_eager.log" ;; esac
case ",$stages," in *,flex,*)
    $bench --instructions 64 --kernels liger --attention mask,flex --rounds 5 --profile --json "$out/gpu_a_flex.json" \
        2>&1 | tee "$out/gpu_a_flex.log" | tail -40 ;; esac
case ",$stages," in *,flexcompile,*)
    $bench --instructions 64 --compile --kernels torch --attention flex --rounds 3 --profile \
        --json "$out/gpu_a_flex_compiled.json" 2>&1 | tee "$out/gpu_a_flex_compiled.log" | tail -40 ;; esac
case ",$stages," in *,fold,*)
    python3 benchmarks/fold_speed.py --engine --random-shape llama-3.1-8b --device cuda --instructions 64 --rounds 7 \
        --json "$out/gpu_a_fold.json" 2>&1 | tee "$out/gpu_a_fold.log" | tail -12 ;; esac
case ",$stages," in *,inflight,*)
    $bench --instructions 64 --kernels liger --attention mask,flex,varlen --in-flight 1,2 --rounds 7 --profile \
        --json "$out/gpu_a_inflight.json" 2>&1 | tee "$out/gpu_a_inflight.log" | tail -60 ;; esac
case ",$stages," in *,inflightcompile,*)
    $bench --instructions 64 --compile --kernels torch --attention mask --in-flight 1,2 --rounds 5 --profile \
        --json "$out/gpu_a_inflight_compiled.json" 2>&1 | tee "$out/gpu_a_inflight_compiled.log" | tail -40 ;; esac
case ",$stages," in *,varlencompile,*)
    $bench --instructions 64 --compile --kernels torch --attention varlen --in-flight 1,2 --rounds 5 --profile \
        --json "$out/gpu_a_varlen_compiled.json" 2>&1 | tee "$out/gpu_a_varlen_compiled.log" | tail -40 ;; esac
case ",$stages," in *,compile,*)
    $bench --instructions 64 --compile --kernels torch --rounds 5 --profile --json "$out/gpu_a_compiled.json" \
        2>&1 | tee "$out/gpu_a_compiled.log" | tail -40 ;; esac
nvidia-smi --query-gpu=clocks.sm,temperature.gpu --format=csv
