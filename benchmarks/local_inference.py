"""Local inference: the appliance's ONNX Runtime path against Transformers PyTorch generate().

Builds (offline, cached) random-weight Llama models with ``build-test-model`` and, for
each, measures on the same prompts and the same number of greedy tokens:

- decode tokens/s of one request, and aggregate tokens/s of 8 concurrent requests,
  for the appliance path (TextModel: KV cache + batching scheduler, driven through
  asyncio like the server does) and for PyTorch ``generate()`` (8 prompts batched with
  left padding, its strongest form);
- time to first token (TTFT) at 1 and 8 concurrent requests.

EOS is disabled on both sides so every request generates exactly ``--tokens`` tokens.

    .venv/bin/python benchmarks/local_inference.py [--sizes tiny small] [--tokens 128]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

PROMPTS = [
    "The quarterly report shows that revenue",
    "Hello! How can I help you today?",
    "A high-risk AI system must be registered and",
    "Guten Tag! Wie geht es Ihnen? Mein Name ist Anna",
    "Personal data such as names and addresses",
    "Policies decide whether a request may leave",
    "Code: def add(a, b): return a + b",
    "What is the capital of France? The capital",
]


def param_count(checkpoint: Path) -> int:
    from transformers import LlamaForCausalLM

    return sum(p.numel() for p in LlamaForCausalLM.from_pretrained(str(checkpoint)).parameters())


def bench_pytorch(checkpoint: Path, prompts: list[list[int]], tokens: int, device: str) -> dict[str, float]:
    import torch
    from transformers import LlamaForCausalLM

    model = LlamaForCausalLM.from_pretrained(str(checkpoint)).eval().to(device)
    kw: dict[str, Any] = {"do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    model.generation_config.eos_token_id = None

    def run(batch: list[list[int]], new: int) -> float:
        width = max(len(p) for p in batch)
        ids = torch.tensor([[0] * (width - len(p)) + p for p in batch], device=device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch], device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            out = model.generate(ids, attention_mask=mask, max_new_tokens=new, min_new_tokens=new, **kw)
        if device == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] - width == new
        return time.perf_counter() - t

    run(prompts[:1], 4)  # warm-up
    single = statistics.median(run([p], tokens) for p in prompts[:3])
    ttft1 = statistics.median(run([p], 1) for p in prompts[:3])
    batch = run(prompts, tokens)
    ttft8 = run(prompts, 1)
    return {
        "tok_s_1": tokens / single,
        "tok_s_8": tokens * len(prompts) / batch,
        "ttft_1_ms": ttft1 * 1000,
        "ttft_8_ms": ttft8 * 1000,
    }


async def bench_onnx(model_dir: Path, prompts: list[list[int]], tokens: int, providers: list[str]) -> dict[str, float]:
    from appliance.providers.local.engine import Job, TextModel, load_model
    from appliance.providers.local.sampling import SamplingParams
    from appliance.providers.local.scheduler import Finished, TextDelta

    model = load_model(model_dir, providers, max_batch_size=8, intra_op_threads=None)
    assert isinstance(model, TextModel)
    model.lm.eos_ids = set()
    model.stop_token_ids = frozenset()
    where = model.lm.session.get_providers()[0]

    async def one(prompt: list[int], new: int, start: float) -> tuple[float, float, int]:
        first = 0.0
        count = 0
        async for _, event in model.generate([Job(0, prompt, new, SamplingParams(0.0), ())]):
            if isinstance(event, TextDelta) and not first:
                first = time.perf_counter() - start
            if isinstance(event, Finished):
                count = event.completion_tokens
        return first or (time.perf_counter() - start), time.perf_counter() - start, count

    async def concurrent(batch: list[list[int]], new: int) -> tuple[float, float, int]:
        start = time.perf_counter()
        results = await asyncio.gather(*(one(p, new, start) for p in batch))
        return (statistics.mean(r[0] for r in results), time.perf_counter() - start,
                sum(r[2] for r in results))

    try:
        await concurrent(prompts[:1], 4)  # warm-up
        singles = [await concurrent([p], tokens) for p in prompts[:3]]
        single = statistics.median(s[1] for s in singles)
        assert all(s[2] == tokens for s in singles)
        ttft1 = statistics.median(s[0] for s in singles)
        ttft8, batch_time, produced = await concurrent(prompts, tokens)
        assert produced == tokens * len(prompts)
        return {
            "tok_s_1": tokens / single,
            "tok_s_8": produced / batch_time,
            "ttft_1_ms": ttft1 * 1000,
            "ttft_8_ms": ttft8 * 1000,
            "peak_batch": float(model.scheduler.peak_batch),
            "where": where,  # type: ignore[dict-item]
        }
    finally:
        model.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    parser.add_argument("--tokens", type=int, default=128, help="generated tokens per request")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "appliance-bench-models")
    parser.add_argument("--cuda", action="store_true", help="CUDA provider and torch on cuda")
    args = parser.parse_args()

    from appliance.providers.local.engine import TextModel, load_model
    from appliance.testing.models import ensure_test_chat_model

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if args.cuda else ["CPUExecutionProvider"]
    device = "cuda" if args.cuda else "cpu"
    for size in args.sizes:
        t = time.perf_counter()
        model_dir = ensure_test_chat_model(args.cache, size=size)  # type: ignore[arg-type]
        built = time.perf_counter() - t
        probe = load_model(model_dir, ["CPUExecutionProvider"], max_batch_size=1, intra_op_threads=None)
        assert isinstance(probe, TextModel)
        prompts = [probe.completion_prompt(p) for p in PROMPTS]
        probe.close()
        params = param_count(model_dir / "checkpoint")
        print(f"\n== random Llama '{size}': {params / 1e6:.1f}M parameters, "
              f"{args.tokens} greedy tokens per request, prompts {min(map(len, prompts))}-"
              f"{max(map(len, prompts))} tokens (model ready in {built:.1f} s)")
        torch_r = bench_pytorch(model_dir / "checkpoint", prompts, args.tokens, device)
        onnx_r = asyncio.run(bench_onnx(model_dir, prompts, args.tokens, providers))
        print(f"   ONNX Runtime ran on: {onnx_r['where']}; peak batch {int(onnx_r['peak_batch'])}")
        print(f"   {'metric':<28}{'PyTorch generate':>18}{'appliance ONNX':>16}{'ratio':>8}")
        for key, label in [("tok_s_1", "decode tok/s, 1 request"), ("tok_s_8", "aggregate tok/s, 8 conc."),
                           ("ttft_1_ms", "TTFT ms, 1 request"), ("ttft_8_ms", "TTFT ms, 8 conc. (mean)")]:
            a, b = torch_r[key], float(onnx_r[key])
            ratio = b / a if key.startswith("tok") else a / b
            print(f"   {label:<28}{a:>18.1f}{b:>16.1f}{ratio:>7.2f}x")
        print(f"   ONNX aggregate at 8 / single: {float(onnx_r['tok_s_8']) / float(onnx_r['tok_s_1']):.2f}x "
              f"(PyTorch: {torch_r['tok_s_8'] / torch_r['tok_s_1']:.2f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
