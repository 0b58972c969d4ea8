"""Build, offline and in seconds, a random-weight Llama chat model and export it to ONNX.

The weights are random (seeded, so every build is identical) and the answers are
gibberish; what matters is that tests and the out-of-the-box default exercise the real
tokenizer, chat template, Optimum export, KV cache and generation code. The byte-level
BPE tokenizer is trained on a small text shipped in this package, so it can encode any
UTF-8 input. The PyTorch checkpoint is kept in ``checkpoint/`` so that tests and the
benchmark can compare the ONNX export against the model it came from.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Literal

from appliance.models.export import Progress, export_onnx
from appliance.models.manifest import Manifest, ModelSource, load_manifest, write_manifest

CHECKPOINT_DIR = "checkpoint"
BOS, EOS, IM_START, IM_END = "<|bos|>", "<|endoftext|>", "<|im_start|>", "<|im_end|>"

#: ChatML, the format most open chat models use; Jinja2, as in Hugging Face tokenizers.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@dataclass(frozen=True)
class TestModelSize:
    hidden: int
    layers: int
    heads: int
    kv_heads: int
    intermediate: int
    vocab: int
    #: Larger than Transformers' 0.02 so that logits are peaked: greedy choices then have
    #: clear margins and do not flip on float rounding between PyTorch and ONNX Runtime.
    init_std: float


SIZES: dict[str, TestModelSize] = {
    # ~0.2M parameters: builds and exports in a few seconds; for tests and the default.
    "tiny": TestModelSize(64, 2, 4, 2, 172, 1024, 0.25),
    # ~25M parameters: big enough for the benchmark's figures to mean something.
    "small": TestModelSize(512, 8, 8, 4, 1376, 2048, 0.08),
}
SizeName = Literal["tiny", "small"]


def _corpus() -> str:
    return resources.files("appliance.models").joinpath("corpus.txt").read_text("utf-8")


def train_tokenizer(out: Path, vocab_size: int) -> None:
    """Byte-level BPE trained on the shipped corpus, saved as a HF fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS, BOS, IM_START, IM_END],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = _corpus().splitlines()
    tok.train_from_iterator(lines * 4, trainer=trainer)
    fast = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=tok, bos_token=BOS, eos_token=EOS, pad_token=EOS,
        additional_special_tokens=[IM_START, IM_END],
    )
    fast.chat_template = CHAT_TEMPLATE
    fast.save_pretrained(str(out))


def build_checkpoint(out: Path, size: SizeName = "tiny", seed: int = 0) -> Path:
    """A seeded random-weight LlamaForCausalLM plus tokenizer, saved in ``out``."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    spec = SIZES[size]
    out.mkdir(parents=True, exist_ok=True)
    train_tokenizer(out, spec.vocab)
    tokenizer = PreTrainedTokenizerFast.from_pretrained(str(out))
    config = LlamaConfig(  # type: ignore[no-untyped-call]
        vocab_size=len(tokenizer),
        hidden_size=spec.hidden,
        intermediate_size=spec.intermediate,
        num_hidden_layers=spec.layers,
        num_attention_heads=spec.heads,
        num_key_value_heads=spec.kv_heads,
        max_position_embeddings=2048,
        initializer_range=spec.init_std,
        bos_token_id=tokenizer.convert_tokens_to_ids(BOS),
        eos_token_id=[tokenizer.convert_tokens_to_ids(EOS), tokenizer.convert_tokens_to_ids(IM_END)],
        pad_token_id=tokenizer.convert_tokens_to_ids(EOS),
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).eval()  # type: ignore[no-untyped-call]
    model.generation_config.do_sample = False
    model.save_pretrained(str(out))
    return out


def build_test_model(
    out: Path,
    *,
    size: SizeName = "tiny",
    name: str | None = None,
    seed: int = 0,
    progress: Progress = lambda _m: None,
) -> Manifest:
    """Build the checkpoint under ``out/checkpoint`` and export it to ONNX into ``out``."""
    progress(f"building a random-weight Llama ({size}) with a locally trained tokenizer ...")
    ckpt = build_checkpoint(out / CHECKPOINT_DIR, size=size, seed=seed)
    export_onnx(str(ckpt), out, task="chat", name=name or out.name, source_kind="test-model",
                progress=progress)
    manifest = load_manifest(out).model_copy(
        update={
            "stop_tokens": (IM_END,),
            "description": f"random-weight Llama ({size}, seed {seed}); answers are gibberish",
            "source": ModelSource(kind="test-model", id=size),
        }
    )
    write_manifest(out, manifest)
    (out / "test_model.json").write_text(json.dumps({"size": size, "seed": seed}), "utf-8")
    return manifest
