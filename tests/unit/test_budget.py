"""The memory budget counts what Ollama 0.32.15 counts: the GPUs left after CUDA_VISIBLE_DEVICES, each
less OLLAMA_GPU_OVERHEAD, for the VRAM-tiered default context (server/routes.go)."""
from dataclasses import replace

from ollama_deploy.lib.budget import (
    check_budget,
    default_context,
    default_context_vram,
    gpus_ollama_sees,
    overhead_problems,
)
from ollama_deploy.lib.modelshape import ModelInfo
from ollama_deploy.lib.plan import settings_from
from tests.unit.recorded import SEED003, gpus, machine

MIB = 2**20


def _dual(**data):
    hw = machine("dual_gpu", gpus=gpus(SEED003))
    return hw, settings_from(hw, data)


def test_only_the_visible_gpus_count_and_each_less_the_overhead():
    hw, s = _dual()
    both = sum(g.memory_total_mib for g in hw.gpus) * MIB
    assert default_context_vram(s, hw) == both
    hw, s = _dual(ollama_cuda_visible_devices="1", ollama_gpu_overhead=512 * MIB)
    assert [g.index for g in gpus_ollama_sees(s, hw.gpus)] == [1]
    assert default_context_vram(s, hw) == (hw.gpus[1].memory_total_mib - 512) * MIB


def test_minus_one_hides_every_gpu_and_uuids_name_them():
    hw, s = _dual(ollama_cuda_visible_devices="-1")
    assert gpus_ollama_sees(s, hw.gpus) == [] and default_context_vram(s, hw) == 0
    hw, s = _dual(ollama_cuda_visible_devices=f"{gpus(SEED003)[1].uuid},0")
    assert [g.index for g in gpus_ollama_sees(s, hw.gpus)] == [1, 0]


def test_an_overhead_above_a_gpus_memory_is_refused():
    # Go subtracts unsigned integers: the total would wrap around and pick the 262144-token tier.
    hw, s = _dual(ollama_gpu_overhead=7 * 1024 * MIB)  # more than the GTX 1060's 6 GB, less than the P4000
    (problem,) = overhead_problems(s, hw)
    assert problem.startswith("key ollama_gpu_overhead, value 7516192768: more than GPU 1's")
    assert "262144" in problem and default_context(default_context_vram(s, hw)) == 4096
    assert overhead_problems(_dual(ollama_gpu_overhead=512 * MIB)[1], hw) == []


def _model(weights_gib: float) -> ModelInfo:
    return ModelInfo(name="m", architecture="llama", weights_bytes=int(weights_gib * 2**30), block_count=2,
                     head_count=2, head_count_kv=(2, 2), embedding_length=64, key_length=32, value_length=32,
                     context_length=4096)


def test_a_model_too_big_for_one_gpu_fits_across_both_without_spread():
    # 80% of the P4000's 8 GiB is 6.4 GiB, of both 11.2 GiB: Ollama puts a 7 GiB model across both
    # by itself (server/sched.go), so nothing is refused and OLLAMA_SCHED_SPREAD stays unset.
    hw, s = _dual()
    assert s.ollama_sched_spread is None
    assert check_budget(s, hw, {"m": _model(7)}) == []
    (problem,) = check_budget(s, hw, {"m": _model(12)})
    assert "all GPUs together 11.2 GiB" in problem and "sched_spread" not in problem


def test_an_embedding_model_is_budgeted_with_one_slot():
    # Ollama loads embedding models with parallel=1 (sched.go), so 4 slots would over-count its KV.
    hw, s = _dual(ollama_num_parallel=4, ollama_context_length=4096)
    big_kv = replace(_model(1), block_count=1000, head_count_kv=(8,) * 1000, context_length=8192)
    (problem,) = check_budget(s, hw, {"m": big_kv})
    assert "x 4 parallel" in problem
    assert check_budget(s, hw, {"m": replace(big_kv, embedding=True)}) == []
