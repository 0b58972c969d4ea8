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
import functools
import os
import statistics
import tempfile
import time
from pathlib import Path

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


class TorchSide:
    """Transformers PyTorch ``generate()``: one prompt, or 8 prompts batched (left-padded)."""

    def __init__(self, checkpoint: Path, device: str) -> None:
        from transformers import LlamaForCausalLM

        self.device = device
        self.model = LlamaForCausalLM.from_pretrained(str(checkpoint)).eval().to(device)
        self.model.generation_config.eos_token_id = None

    def run(self, batch: list[list[int]], new: int) -> float:
        import torch

        width = max(len(p) for p in batch)
        ids = torch.tensor([[0] * (width - len(p)) + p for p in batch], device=self.device)
        mask = torch.tensor([[0] * (width - len(p)) + [1] * len(p) for p in batch],
                            device=self.device)
        if self.device == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        with torch.no_grad():
            out = self.model.generate(ids, attention_mask=mask, max_new_tokens=new,
                                      min_new_tokens=new, do_sample=False, pad_token_id=0)
        if self.device == "cuda":
            torch.cuda.synchronize()
        assert out.shape[1] - width == new
        return time.perf_counter() - t

    def round(self, prompts: list[list[int]], tokens: int, i: int) -> dict[str, float]:
        p = prompts[i % len(prompts)]
        return {
            "tok_s_1": tokens / self.run([p], tokens),
            "tok_s_8": tokens * len(prompts) / self.run(prompts, tokens),
            "ttft_1_ms": self.run([p], 1) * 1000,
            "ttft_8_ms": self.run(prompts, 1) * 1000,
        }


class OnnxSide:
    """The appliance path: TextModel (KV cache, batching scheduler) driven through asyncio."""

    def __init__(self, model_dir: Path, providers: list[str], threads: int | None) -> None:
        from appliance.providers.local.engine import TextModel, load_model

        model = load_model(model_dir, providers, max_batch_size=8, intra_op_threads=threads)
        assert isinstance(model, TextModel)
        model.lm.eos_ids = set()
        model.stop_token_ids = frozenset()
        self.model = model
        self.where = model.lm.session.get_providers()[0]

    async def _one(self, prompt: list[int], new: int, start: float) -> tuple[float, int]:
        from appliance.providers.local.engine import Job
        from appliance.providers.local.sampling import SamplingParams
        from appliance.providers.local.scheduler import Finished, TextDelta

        first, count = 0.0, 0
        async for _, event in self.model.generate([Job(0, prompt, new, SamplingParams(0.0), ())]):
            if isinstance(event, TextDelta) and not first:
                first = time.perf_counter() - start
            if isinstance(event, Finished):
                count = event.completion_tokens
        return first or (time.perf_counter() - start), count

    async def _concurrent(self, batch: list[list[int]], new: int) -> tuple[float, float, int]:
        start = time.perf_counter()
        results = await asyncio.gather(*(self._one(p, new, start) for p in batch))
        return (statistics.mean(r[0] for r in results), time.perf_counter() - start,
                sum(r[1] for r in results))

    def round(self, prompts: list[list[int]], tokens: int, i: int) -> dict[str, float]:
        async def measure() -> dict[str, float]:
            ttft1, t1, n1 = await self._concurrent([prompts[i % len(prompts)]], tokens)
            ttft8, t8, n8 = await self._concurrent(prompts, tokens)
            assert n1 == tokens and n8 == tokens * len(prompts)
            return {"tok_s_1": n1 / t1, "tok_s_8": n8 / t8,
                    "ttft_1_ms": ttft1 * 1000, "ttft_8_ms": ttft8 * 1000}

        return asyncio.run(measure())

    def close(self) -> None:
        self.model.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", default=["tiny", "small"], choices=["tiny", "small"])
    parser.add_argument("--tokens", type=int, default=128, help="generated tokens per request")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "appliance-bench-models")
    parser.add_argument("--cuda", action="store_true", help="CUDA provider and torch on cuda")
    parser.add_argument("--threads", type=int, default=None, help="intra-op threads, both engines")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved measurement rounds")
    parser.add_argument("--int8", action="store_true",
                        help="also measure the int8 copy (`appliance models quantize --int8`)")
    args = parser.parse_args()

    from appliance.models.build_cache import build_once
    from appliance.models.quantize import quantize_int8
    from appliance.testing.models import ensure_test_chat_model

    providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if args.cuda else ["CPUExecutionProvider"]
    device = "cuda" if args.cuda else "cpu"
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    print(f"host: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
          f"threads per engine: {args.threads or 'library default'}; {args.rounds} interleaved rounds")
    for size in args.sizes:
        t = time.perf_counter()
        model_dir = ensure_test_chat_model(args.cache, size=size)
        built = time.perf_counter() - t
        onnx = OnnxSide(model_dir, providers, args.threads)
        prompts = [onnx.model.completion_prompt(p) for p in PROMPTS]
        params = param_count(model_dir / "checkpoint")
        print(f"\n== random Llama '{size}': {params / 1e6:.1f}M parameters, "
              f"{args.tokens} greedy tokens per request, prompts {min(map(len, prompts))}-"
              f"{max(map(len, prompts))} tokens (model ready in {built:.1f} s)")
        torch_side = TorchSide(model_dir / "checkpoint", device)
        torch_side.run(prompts[:1], 4)
        onnx.round(prompts[:1], 4, 0)  # warm-up both
        int8 = None
        if args.int8:
            int8_dir = build_once(model_dir.parent / f"{model_dir.name}-int8",
                                  functools.partial(quantize_int8, model_dir))
            int8 = OnnxSide(int8_dir, providers, args.threads)
            int8.round(prompts[:1], 4, 0)
        torch_rounds, onnx_rounds, int8_rounds = [], [], []
        for i in range(args.rounds):  # interleaved, so that load changes hit every side
            torch_rounds.append(torch_side.round(prompts, args.tokens, i))
            onnx_rounds.append(onnx.round(prompts, args.tokens, i))
            if int8 is not None:
                int8_rounds.append(int8.round(prompts, args.tokens, i))
        torch_r = {k: statistics.median(r[k] for r in torch_rounds) for k in torch_rounds[0]}
        onnx_r = {k: statistics.median(r[k] for r in onnx_rounds) for k in onnx_rounds[0]}
        int8_r = ({k: statistics.median(r[k] for r in int8_rounds) for k in int8_rounds[0]}
                  if int8_rounds else None)
        print(f"   ONNX Runtime ran on: {onnx.where}; peak batch {onnx.model.scheduler.peak_batch}")
        onnx.close()
        if int8 is not None:
            int8.close()
        extra = f"{'ONNX int8':>12}{'ratio':>8}" if int8_r else ""
        print(f"   {'metric (median)':<28}{'PyTorch generate':>18}{'appliance ONNX':>16}{'ratio':>8}"
              + extra)
        for key, label in [("tok_s_1", "decode tok/s, 1 request"),
                           ("tok_s_8", "aggregate tok/s, 8 conc."),
                           ("ttft_1_ms", "TTFT ms, 1 request"),
                           ("ttft_8_ms", "TTFT ms, 8 conc. (mean)")]:
            a, b = torch_r[key], onnx_r[key]
            ratio = b / a if key.startswith("tok") else a / b
            line = f"   {label:<28}{a:>18.1f}{b:>16.1f}{ratio:>7.2f}x"
            if int8_r:
                c = int8_r[key]
                line += f"{c:>12.1f}{(c / a if key.startswith('tok') else a / c):>7.2f}x"
            print(line)
        print(f"   aggregate at 8 concurrent / single: ONNX {onnx_r['tok_s_8'] / onnx_r['tok_s_1']:.2f}x, "
              f"PyTorch {torch_r['tok_s_8'] / torch_r['tok_s_1']:.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
