"""The hand-built ONNX graph that serving runs: one call ranks the whole catalogue for B users.

It computes :mod:`training.scoring`'s two-stage score exactly:

* inputs (float32 unless noted): ``user_rank`` [B, R] (interaction factors p'), ``user_mf`` [B, D],
  ``user_bias`` [B, 1], ``user_deep`` [B, U] (the deep branch's user-side inputs; U may be 0),
  ``exclude`` [B, N] (additive: 0 for candidates, -inf to skip), ``candidates`` and ``k`` (int64 [1]);
* ``scores`` [B, N]: stage 1 for every movie, logit + gamma * (b_i + w_mf * p.q);
* ``logits`` [B, N]: the interaction head's logits p'.q' + c alone (the reasons' softmax; artifacts exported
  before 2026-12-07 lack this output, and the engine recovers the logits from ``scores``);
* TopK(candidates) of the masked stage 1, then the full rating of those candidates
  (mu + b_u + b_i + w_mf * p.q + w_deep * f, the deep branch's first layer split into a per-request
  user part and a precomputed item part [N, H0], BatchNorm folded, Dropout dropped);
* ``top_scores`` / ``top_items`` / ``top_ratings`` [B, k]: TopK(k) of stage 1 + gamma * (mu + b_u + w_deep * f)
  over the candidates, with the winners' predicted ratings.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from contract import CATALOGUE_INPUTS, CATALOGUE_OUTPUTS
from training.scoring import ServingWeights

OPSET = 17
IR_VERSION = 8  # onnx 1.23 writes IR 14 by default, which onnxruntime 1.31 refuses (max 13)


def build(w: ServingWeights) -> onnx.ModelProto:
    """The catalogue graph for ``w``."""
    f32 = TensorProto.FLOAT
    n, r = w.item_rank.shape
    d = w.item_mf.shape[1]
    u = w.deep_user_kernel.shape[0] if w.has_deep else 0
    inits: list[onnx.TensorProto] = []
    nodes: list[onnx.NodeProto] = []

    def const(name: str, value) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(value), name))
        return name

    def node(op: str, inputs: list[str], output: str | list[str], **attrs) -> str:
        outs = [output] if isinstance(output, str) else output
        nodes.append(helper.make_node(op, inputs, outs, **attrs))
        return outs[0]

    f = np.float32
    const("axis_last", np.array([-1], np.int64))
    const("axis_1", np.array([1], np.int64))
    # Stage 1 over the whole catalogue: the interaction head's logits p'.q' + c (an output of their own: the reasons
    # take the user's softmax from them) plus the rating head's gamma * (w_mf * p.q + b_i); two MatMuls reading
    # the same [R + D, N] weights as one would.
    node("MatMul", ["user_rank", const("item_rank_t", w.item_rank.T.astype(f))], "logits_raw")
    node("Add", ["logits_raw", const("item_rank_bias", w.item_rank_bias.astype(f))], "logits")
    node("Mul", ["user_mf", const("gamma_mf", f(w.gamma * w.mf_weight))], "user_mf_scaled")
    node("MatMul", ["user_mf_scaled", const("item_mf_t", w.item_mf.T.astype(f))], "mf_raw")
    node("Add", ["mf_raw", const("gamma_item_bias", (w.gamma * w.item_bias).astype(f))], "mf_part")
    node("Add", ["logits", "mf_part"], "scores")
    node("Add", ["scores", "exclude"], "masked")
    node("TopK", ["masked", "candidates"], ["cand_scores", "cand_items"], axis=-1, largest=1, sorted=0)

    # Full rating of the candidates.
    node("Gather", [const("item_bias", w.item_bias.astype(f)), "cand_items"], "cand_b", axis=0)
    node("Add", ["cand_b", "user_bias"], "cand_bb")
    rating = node("Add", ["cand_bb", const("mu", f(w.mu))], "cand_base")
    if w.mf_weight:
        node("Gather", [const("item_mf", w.item_mf.astype(f)), "cand_items"], "cand_q", axis=0)
        node("Unsqueeze", ["user_mf", "axis_1"], "user_mf_b")
        node("Mul", ["cand_q", "user_mf_b"], "cand_pq")
        node("ReduceSum", ["cand_pq", "axis_last"], "cand_dot", keepdims=0)
        node("Mul", ["cand_dot", const("mf_weight", f(w.mf_weight))], "cand_mf")
        rating = node("Add", [rating, "cand_mf"], "cand_rating_mf")
    deep_term = None
    if w.has_deep:
        node("MatMul", ["user_deep", const("deep_user_kernel", w.deep_user_kernel.astype(f))], "h_user")
        node("Unsqueeze", ["h_user", "axis_1"], "h_user_b")
        node("Gather", [const("deep_item_part", w.item_deep_part()), "cand_items"], "h_item", axis=0)
        node("Add", ["h_item", "h_user_b"], "h0_pre")
        h = node("Relu", ["h0_pre"], "h0")
        for i, layer in enumerate(w.deep_layers, start=1):
            node("MatMul", [h, const(f"deep_kernel_{i}", layer.kernel.astype(f))], f"h{i}_mm")
            h = node("Add", [f"h{i}_mm", const(f"deep_bias_{i}", layer.bias.astype(f))], f"h{i}_pre")
            if layer.relu:
                h = node("Relu", [h], f"h{i}")
        node("Squeeze", [h, "axis_last"], "deep_out")
        deep_term = node("Mul", ["deep_out", const("deep_weight", f(w.deep_weight))], "cand_deep")
        rating = node("Add", [rating, deep_term], "cand_rating")
    # Stage 2: stage 1 + gamma * (mu + b_u + w_deep * f) = stage 1 + gamma * (rating - b_i - w_mf * p.q).
    node("Add", ["user_bias", const("mu_2", f(w.mu))], "user_const")
    extra = "user_const" if deep_term is None else node("Add", ["user_const", deep_term], "cand_extra")
    node("Mul", [extra, const("gamma", f(w.gamma))], "cand_extra_scaled")
    node("Add", ["cand_scores", "cand_extra_scaled"], "cand_final")
    node("TopK", ["cand_final", "k"], ["top_scores", "top_pos"], axis=-1, largest=1, sorted=1)
    node("GatherElements", ["cand_items", "top_pos"], "top_items", axis=1)
    node("GatherElements", [rating, "top_pos"], "top_ratings", axis=1)

    inputs = [
        helper.make_tensor_value_info("user_rank", f32, ["batch", r]),
        helper.make_tensor_value_info("user_mf", f32, ["batch", d]),
        helper.make_tensor_value_info("user_bias", f32, ["batch", 1]),
        helper.make_tensor_value_info("user_deep", f32, ["batch", u]),
        helper.make_tensor_value_info("exclude", f32, ["batch", n]),
        helper.make_tensor_value_info("candidates", TensorProto.INT64, [1]),
        helper.make_tensor_value_info("k", TensorProto.INT64, [1]),
    ]
    outputs = [
        helper.make_tensor_value_info("scores", f32, ["batch", n]),
        helper.make_tensor_value_info("top_scores", f32, ["batch", "k"]),
        helper.make_tensor_value_info("top_items", TensorProto.INT64, ["batch", "k"]),
        helper.make_tensor_value_info("top_ratings", f32, ["batch", "k"]),
        helper.make_tensor_value_info("logits", f32, ["batch", n]),
    ]
    if tuple(v.name for v in inputs) != CATALOGUE_INPUTS or tuple(v.name for v in outputs) != CATALOGUE_OUTPUTS:
        raise ValueError("the catalogue graph's inputs or outputs differ from contract's")
    graph = helper.make_graph(nodes, "catalogue", inputs, outputs, initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="model_export")
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model
