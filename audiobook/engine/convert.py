"""Real weights for the torch backend with no hub: the bundled int8 ONNX export turned back into a KModel.

The bundled ``kokoro-v1.0.int8.onnx`` (see ``bundled.py``) is Kokoro-82M v1.0 exported from PyTorch, optimised
by ONNX Runtime and dynamically quantized. Its initializers keep their module paths, either as names
(``decoder.decoder.encode.conv1.bias``) or in the name of the node that reads them
(``/decoder/decoder/encode/conv1/Conv_quant``), so every weight of ``KModel`` can be found and rebuilt:

* int8/uint8 weights are dequantized to float32, ``(q - zero_point) * scale``: per tensor for ``ConvInteger``,
  per output column for ``MatMulInteger`` (the matrix is stored transposed), per direction for
  ``DynamicQuantizeLSTM``, per tensor for the quantized embedding ``Gather`` + ``DequantizeLinear``;
* weight-normed convolutions were folded to one weight ``w = g * v / |v|`` at export: they are stored back as
  ``weight_v = w`` and ``weight_g = |w|`` (norm over every dimension but the first, as ``weight_norm``
  computes it), so kokoro's own modules rebuild ``w``;
* LSTM gates go from ONNX's order (input, output, forget, cell) to torch's (input, forget, cell, output), and
  ONNX's one bias per direction splits into torch's ``bias_ih`` and ``bias_hh``.

What cannot come back exactly, and why:

* The weights are the int8 grid's values, not Kokoro's original float32 ones: quantization threw away the
  rest. The converted model speaks like the int8 one, not like ``hexgrad/Kokoro-82M``'s ``.pth``.
* ``bert.pooler`` is not in the graph (kokoro never uses ALBERT's pooled output, so the export pruned it): it is
  set to zeros, and nothing reads it.
* The instance norms of the AdaIN layers carry no affine parameters in the graph (the export normalises without
  them, and Kokoro was trained without them): they are set to the identity, weight 1 and bias 0.
* The graph holds no random operator: the decoder's source noise is zero there, while kokoro's torch code draws
  it, so the two paths differ in the noise of unvoiced sounds even with identical weights.

The result is a model directory (``config.json`` with Kokoro-82M v1.0's published architecture and the bundled
vocab, one ``.pth``, ``voices/*.pt``), converted once and cached beside the assembled ONNX file, keyed by the
ONNX file's sha256, so ``TorchBackend`` loads it like any local model.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import ModelError
from . import bundled

log = logging.getLogger(__name__)

WEIGHTS_NAME = "kokoro-v1_0-from-int8.pth"
KOKORO_V1_CONFIG = {
    "istftnet": {
        "upsample_kernel_sizes": [20, 12],
        "upsample_rates": [10, 6],
        "gen_istft_hop_size": 5,
        "gen_istft_n_fft": 20,
        "resblock_dilation_sizes": [[1, 3, 5], [1, 3, 5], [1, 3, 5]],
        "resblock_kernel_sizes": [3, 7, 11],
        "upsample_initial_channel": 512,
    },
    "dim_in": 64,
    "dropout": 0.2,
    "hidden_dim": 512,
    "max_conv_dim": 512,
    "max_dur": 50,
    "multispeaker": True,
    "n_layer": 3,
    "n_mels": 80,
    "n_token": 178,
    "style_dim": 128,
    "text_encoder_kernel_size": 5,
    "plbert": {
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 2048,
        "max_position_embeddings": 512,
        "num_hidden_layers": 12,
        "dropout": 0.1,
    },
}
"""Kokoro-82M v1.0's published architecture (its ``config.json`` less the vocab). Every number is checked
against the shapes in the ONNX graph during conversion."""

COMPONENTS = ("bert", "bert_encoder", "predictor", "text_encoder", "decoder")
"""KModel's top-level modules: the keys of kokoro's weights file."""

_LSTM_GATES = [0, 2, 3, 1]
"""Torch's gate blocks (input, forget, cell, output) picked from ONNX's (input, output, forget, cell)."""
_PREDICTOR_METHOD_SCOPES = {"F0", "N", "F0_proj", "N_proj", "shared"}
"""Modules kokoro calls from ``ProsodyPredictor.F0Ntrain``, a method: their node scopes lack ``predictor``."""


def model_dir() -> Path:
    """The converted bundled model as a kokoro model directory; converted on first use, then cached.

    Several processes may convert at once: each builds a private directory and renames it into place; the
    first rename wins and the others discard their copy (the contents are identical).
    """
    out = bundled.cache_dir() / f"kokoro-v1.0-torch-{bundled.MODEL_SHA256[:16]}"
    if (out / WEIGHTS_NAME).is_file():
        return out
    onnx_path = bundled.model_path()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        log.info("converting the bundled int8 ONNX model into torch weights (once): %s", out)
        write_model_dir(onnx_path, tmp, bundled.vocab(), bundled.voices())
        try:
            os.rename(tmp, out)
        except OSError:
            if not (out / WEIGHTS_NAME).is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def write_model_dir(onnx_path: Path, dest: Path, vocab: dict[str, int], voices: dict[str, np.ndarray]) -> None:
    """Write ``config.json``, the converted weights and ``voices/*.pt`` into ``dest``."""
    import torch

    from ..atomic import write_atomic

    config = {
        **KOKORO_V1_CONFIG,
        "vocab": vocab,
        "converted_from": {"onnx": onnx_path.name, "sha256": bundled.MODEL_SHA256},
    }
    state = convert(onnx_path, config)
    (dest / "voices").mkdir(parents=True, exist_ok=True)
    write_atomic(dest / "config.json", json.dumps(config, ensure_ascii=False, indent=1).encode("utf-8"))
    for name, pack in voices.items():
        write_atomic(dest / "voices" / f"{name}.pt", _torch_bytes(torch.from_numpy(np.ascontiguousarray(pack))))
    write_atomic(dest / WEIGHTS_NAME, _torch_bytes(state))  # last: its presence marks a complete directory


def convert(onnx_path: Path, config: dict) -> dict[str, dict]:
    """KModel weights ``{component: state_dict}`` from an int8 Kokoro ONNX export; ``ModelError`` if any weight
    cannot be found or has the wrong shape for ``config``."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError as e:
        raise ModelError(
            "converting the bundled model for the torch backend needs the onnx package: "
            "pip install 'audiobook[offline]'"
        ) from e
    import torch

    graph = onnx.load(str(onnx_path)).graph
    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    template = _template_shapes(config)
    found: dict[str, np.ndarray] = {}
    for key, value in _named_parameters(arrays, template):
        found[key] = value
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    for node in graph.node:
        for key, value in _node_parameters(node, arrays, consumers, template):
            if key in found and not np.array_equal(found[key], value):
                raise ModelError(f"{onnx_path.name}: two different values for {key}")
            found[key] = value
    for key, shape in template.items():
        if key not in found and _identity_affine(key):
            found[key] = np.ones(shape, np.float32) if key.endswith(".weight") else np.zeros(shape, np.float32)
        elif key not in found and key.startswith("bert.pooler."):
            found[key] = np.zeros(shape, np.float32)
    missing = sorted(set(template) - set(found))
    if missing:
        raise ModelError(f"{onnx_path.name}: no weights found for {len(missing)} parameters, e.g. {missing[:5]}")
    state: dict[str, dict] = {component: {} for component in COMPONENTS}
    for key, shape in template.items():
        value = np.asarray(found[key], dtype=np.float32)
        if value.shape != shape:
            raise ModelError(f"{onnx_path.name}: {key} has shape {value.shape}; the architecture wants {shape}")
        component, _, rest = key.partition(".")
        state[component][rest] = torch.from_numpy(np.array(value, dtype=np.float32, copy=True))
    return state


def _template_shapes(config: dict) -> dict[str, tuple[int, ...]]:
    """Every KModel parameter name and shape for ``config``, from a model built on the meta device."""
    import warnings

    import torch
    from kokoro import KModel

    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.pth"
        torch.save({}, empty)
        with warnings.catch_warnings(), torch.device("meta"):
            warnings.filterwarnings("ignore", category=FutureWarning, message=".*weight_norm")
            warnings.filterwarnings("ignore", category=UserWarning, message="dropout option")
            model = KModel(repo_id="hexgrad/Kokoro-82M", config=config, model=str(empty))
    return {key: tuple(value.shape) for key, value in model.state_dict().items()}


def _named_parameters(
    arrays: dict[str, np.ndarray], template: dict[str, tuple[int, ...]]
) -> Iterator[tuple[str, np.ndarray]]:
    """Float initializers that keep their parameter's name: biases, layer norms, Snake alphas, ..."""
    for name, value in arrays.items():
        key = _parameter_key(name)
        if key in template and value.dtype == np.float32:
            yield key, value


def _parameter_key(onnx_name: str) -> str:
    """``decoder.decoder.x`` -> ``decoder.x``; ``encoder.x`` -> ``x`` (the export wrapped KModel in two parts)."""
    if onnx_name.startswith("decoder.decoder."):
        return "decoder." + onnx_name[len("decoder.decoder.") :]
    if onnx_name.startswith("encoder."):
        return onnx_name[len("encoder.") :]
    return onnx_name


def _node_parameters(
    node,
    arrays: dict[str, np.ndarray],
    consumers: dict[str, list],  # noqa: ANN001 - NodeProto
    template: dict[str, tuple[int, ...]],
) -> Iterator[tuple[str, np.ndarray]]:
    """The parameters a weight-reading node holds, dequantized and named as KModel names them."""
    op = node.op_type
    weight_input = 0 if op == "Gather" else 1
    if len(node.input) <= weight_input or node.input[weight_input] not in arrays:
        return
    if op not in {"Gather", "MatMulInteger", "MatMul", "ConvInteger", "Conv", "ConvTranspose", "DynamicQuantizeLSTM"}:
        return
    module = _module_path(node.name, template)
    if module is None:
        # Attention products and shape arithmetic read no parameters; the export's inverse STFT is a fixed
        # basis (kokoro builds its own from n_fft and the window).
        if op in {"Gather", "MatMul"} or "/stft/" in node.name:
            return
        raise ModelError(f"cannot place the weights of ONNX node {node.name} ({op}) in kokoro's KModel")
    inputs = [arrays.get(name) for name in node.input]
    if op == "Gather":
        dequantize = [n for n in consumers.get(node.output[0], []) if n.op_type == "DequantizeLinear"]
        if not dequantize:
            raise ModelError(f"the quantized embedding read by ONNX node {node.name} is never dequantized")
        scale, zero_point = (arrays[name] for name in dequantize[0].input[1:3])
        yield f"{module}.weight", _dequantize(inputs[0], zero_point, scale)
    elif op == "MatMulInteger":
        base = node.input[1][: -len("_quantized")]
        yield f"{module}.weight", _dequantize(inputs[1], inputs[3], arrays[base + "_scale"]).T
    elif op == "MatMul":
        yield f"{module}.weight", inputs[1].T
    elif op == "ConvInteger":
        base = node.input[1][: -len("_quantized")]
        yield from _conv_weight(module, _dequantize(inputs[1], inputs[3], arrays[base + "_scale"]), template)
    elif op in {"Conv", "ConvTranspose"}:
        yield from _conv_weight(module, inputs[1], template)
    else:
        yield from _lstm_weights(module, node, arrays)


def _module_path(node_name: str, template: dict[str, tuple[int, ...]]) -> str | None:
    """The KModel module a node belongs to, from its scope, e.g. ``/encoder/text_encoder/cnn.0/cnn.0.0/Conv``
    -> ``text_encoder.cnn.0.0``; ``None`` when the scope names no module with parameters."""
    parts = node_name.strip("/").split("/")[:-1]
    if parts[:2] == ["decoder", "decoder"]:
        parts = ["decoder", *parts[2:]]
    elif parts[:1] == ["encoder"]:
        parts = parts[1:]
        if parts and parts[0].split(".")[0] in _PREDICTOR_METHOD_SCOPES:
            parts = ["predictor", *parts]
    else:
        return None
    for candidate in (parts, [re.sub(r"_\d+$", "", part) for part in parts]):  # repeated calls: query_1
        path: list[str] = []
        for part in candidate:  # a child's scope repeats its parent's: cnn.0 / cnn.0.0
            if path and part.startswith(path[-1] + "."):
                path[-1] = part
            else:
                path.append(part)
        module = ".".join(path)
        if any(key.startswith(module + ".") for key in template):
            return module
    return None


def _dequantize(quantized: np.ndarray, zero_point: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """``(q - zero_point) * scale`` in float32; per-column scales and zero points broadcast on the last axis."""
    return (quantized.astype(np.int32) - np.asarray(zero_point).astype(np.int32)).astype(np.float32) * np.asarray(
        scale, dtype=np.float32
    )


def _conv_weight(
    module: str, weight: np.ndarray, template: dict[str, tuple[int, ...]]
) -> Iterator[tuple[str, np.ndarray]]:
    """A plain ``weight``, or ``weight_g`` and ``weight_v`` for a weight-normed module (norm over dims > 0)."""
    if f"{module}.weight_v" in template:
        norm = np.sqrt(np.sum(weight.astype(np.float64) ** 2, axis=tuple(range(1, weight.ndim)), keepdims=True))
        # A channel that quantized to all zeros has no direction: weight_norm would divide 0 by 0. Any direction
        # with g = 0 rebuilds the zero channel.
        direction = np.where(norm > 0, weight, np.float32(1.0))
        yield f"{module}.weight_g", norm.astype(np.float32)
        yield f"{module}.weight_v", direction.astype(np.float32)
    else:
        yield f"{module}.weight", weight


def _lstm_weights(module: str, node, arrays: dict[str, np.ndarray]) -> Iterator[tuple[str, np.ndarray]]:  # noqa: ANN001
    """A bidirectional ``DynamicQuantizeLSTM`` as torch's ``weight_ih/hh`` and ``bias_ih/hh`` per direction."""
    w, r, b = (arrays[name] for name in node.input[1:4])
    w_scale, w_zero, r_scale, r_zero = (arrays[name] for name in node.input[8:12])
    hidden = r.shape[1]
    for direction, suffix in enumerate(("_l0", "_l0_reverse")):
        weight_ih = _dequantize(w[direction], w_zero[direction], w_scale[direction]).T
        weight_hh = _dequantize(r[direction], r_zero[direction], r_scale[direction]).T
        yield f"{module}.weight_ih{suffix}", _torch_gates(weight_ih, hidden)
        yield f"{module}.weight_hh{suffix}", _torch_gates(weight_hh, hidden)
        yield f"{module}.bias_ih{suffix}", _torch_gates(b[direction, : 4 * hidden], hidden)
        yield f"{module}.bias_hh{suffix}", _torch_gates(b[direction, 4 * hidden :], hidden)


def _torch_gates(value: np.ndarray, hidden: int) -> np.ndarray:
    blocks = value.reshape(4, hidden, *value.shape[1:])
    return blocks[_LSTM_GATES].reshape(value.shape)


def _identity_affine(key: str) -> bool:
    """An AdaIN instance norm's affine parameter: not in the graph, the identity in Kokoro."""
    return re.search(r"\.norm\.(weight|bias)$", key) is not None


def float_onnx_path() -> Path:
    """The bundled int8 graph with its weights dequantized to float32 (about 330 MB); built on first use.

    The same graph, with each quantized operator replaced by its float one: ``ConvInteger`` -> ``Conv``,
    ``MatMulInteger`` -> ``MatMul``, ``DynamicQuantizeLSTM`` -> ``LSTM``, quantized ``Gather`` -> ``Gather``.
    Activations are no longer quantized either. The CPU benchmark compares it with the int8 graph.
    """
    out = bundled.cache_dir() / f"kokoro-v1.0-float-{bundled.TIMED_MODEL_SHA256[:16]}.onnx"
    if out.is_file():
        return out
    import onnx

    from ..atomic import write_atomic

    model = onnx.load(str(bundled.model_path()))
    dequantize_graph(model.graph)
    log.info("writing the dequantized float32 ONNX graph (once): %s", out)
    write_atomic(out, model.SerializeToString())
    return out


def dequantize_graph(graph) -> None:  # noqa: ANN001 - onnx.GraphProto, changed in place
    """Replace every quantized operator of an ONNX Runtime dynamically quantized graph by its float version."""
    from onnx import helper, numpy_helper

    arrays = {init.name: numpy_helper.to_array(init) for init in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    new_arrays: dict[str, np.ndarray] = {}
    replaced: dict[int, object] = {}  # id(first node of a pattern) -> its float node
    dropped: set[int] = set()

    def float_weight(name: str, value: np.ndarray) -> str:
        new_arrays[name + "_float"] = value.astype(np.float32)
        return name + "_float"

    def only_consumer(name: str, op_type: str):  # noqa: ANN202
        found = consumers.get(name, [])
        if len(found) != 1 or found[0].op_type != op_type:
            raise ModelError(f"unexpected quantized pattern after {name}: {[n.op_type for n in found]}")
        return found[0]

    for node in graph.node:
        op = node.op_type
        if op in {"ConvInteger", "MatMulInteger"}:
            if node.input[1] not in arrays:
                raise ModelError(f"{node.name}: quantized weights that are not constant")
            source = producers[node.input[0]].input[0]  # the float input of DynamicQuantizeLinear
            base = node.input[1][: -len("_quantized")]
            weight = _dequantize(arrays[node.input[1]], arrays[node.input[3]], arrays[base + "_scale"])
            chain = [node]
            if op == "ConvInteger" and consumers[node.output[0]][0].op_type == "Add":
                chain.append(only_consumer(node.output[0], "Add"))
            chain.append(only_consumer(chain[-1].output[0], "Cast"))
            chain.append(only_consumer(chain[-1].output[0], "Mul"))
            inputs = [source, float_weight(base, weight)]
            if len(chain) == 4:
                inputs.append(_float_bias(chain[1], producers, arrays))
            float_op = "Conv" if op == "ConvInteger" else "MatMul"
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute} if float_op == "Conv" else {}
            replaced[id(node)] = helper.make_node(
                float_op, inputs, [chain[-1].output[0]], name=node.name + "_float", **attributes
            )
            dropped.update(id(n) for n in chain[1:])
        elif op == "DynamicQuantizeLSTM":
            w_scale, w_zero, r_scale, r_zero = (arrays[name] for name in node.input[8:12])
            w = np.stack(
                [_dequantize(q, z, s).T for q, z, s in zip(arrays[node.input[1]], w_zero, w_scale, strict=True)]
            )
            r = np.stack(
                [_dequantize(q, z, s).T for q, z, s in zip(arrays[node.input[2]], r_zero, r_scale, strict=True)]
            )
            inputs = [node.input[0], float_weight(node.input[1], w), float_weight(node.input[2], r), *node.input[3:8]]
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            replaced[id(node)] = helper.make_node(
                "LSTM", inputs, list(node.output), name=node.name + "_float", **attributes
            )
        elif op == "Gather" and node.input[0] in arrays and node.input[0].endswith("_quantized"):
            dequantize = only_consumer(node.output[0], "DequantizeLinear")
            scale, zero_point = (arrays[name] for name in dequantize.input[1:3])
            weight = float_weight(node.input[0], _dequantize(arrays[node.input[0]], zero_point, scale))
            attributes = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            replaced[id(node)] = helper.make_node(
                "Gather", [weight, node.input[1]], [dequantize.output[0]], name=node.name + "_float", **attributes
            )
            dropped.add(id(dequantize))
    nodes = [replaced.get(id(node), node) for node in graph.node if id(node) not in dropped]
    del graph.node[:]
    graph.node.extend(_live_nodes(nodes, {out.name for out in graph.output}))
    graph.initializer.extend(numpy_helper.from_array(value, name) for name, value in new_arrays.items())
    used = {name for node in graph.node for name in node.input}
    kept = [init for init in graph.initializer if init.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)


def _float_bias(bias_add, producers: dict, arrays: dict[str, np.ndarray]) -> str:  # noqa: ANN001
    """The float bias initializer that ONNX Runtime quantizes at run time in front of a ``ConvInteger``'s Add."""
    pending = [name for name in bias_add.input if name in producers]
    while pending:
        node = producers[pending.pop()]
        for name in node.input:
            if name in arrays and arrays[name].dtype == np.float32 and name.endswith(".bias"):
                return name
            if name in producers:
                pending.append(name)
    raise ModelError(f"no float bias found for {bias_add.name}")


def _live_nodes(nodes: list, outputs: set[str]) -> list:
    """``nodes`` without those whose results nothing reads (the dead quantization arithmetic)."""
    needed = set(outputs)
    live = []
    for node in reversed(nodes):
        if any(out in needed for out in node.output):
            live.append(node)
            needed.update(name for name in node.input if name)
    return live[::-1]


def _torch_bytes(obj: object) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()
