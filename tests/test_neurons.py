"""Activated neurons: the hook, ON and Jaccard against hand-computed vectors, layer windows."""

import math

import pytest
import torch
import torch.nn.functional as F

from xlprompt.analysis.neurons import (
    ffn_modules,
    layer_windows,
    overlap,
    prompt_alone_activations,
    record_ffn,
    top_neurons,
    windowed_overlap,
)
from xlprompt.models.backbone import load_backbone


def test_on_is_the_cosine_of_binary_vectors_and_jaccard_their_overlap_share():
    # active = value > 0: zeros and negative (GELU) values are inactive
    a = torch.tensor([0.3, 0.0, 2.0, 0.1, -0.2])  # active {0, 2, 3}
    b = torch.tensor([1.0, 0.5, -0.1, 4.0, 0.0])  # active {0, 1, 3}
    assert overlap(a, b, "on") == pytest.approx(2 / math.sqrt(3 * 3))
    assert overlap(a, b, "jaccard") == pytest.approx(2 / 4)
    assert overlap(a, torch.zeros(5)) == 0.0  # no active neuron: defined as no overlap
    with pytest.raises(ValueError, match="'on' or 'jaccard'"):
        overlap(a, b, "cosine")


@pytest.mark.parametrize(
    ("layers", "window", "expected"),
    [
        (12, 3, [(0, 3), (3, 6), (6, 9), (9, 12)]),
        (7, 3, [(0, 3), (3, 6), (6, 7)]),
        (2, 3, [(0, 2)]),
        (3, 1, [(0, 1), (1, 2), (2, 3)]),
    ],
)
def test_layer_windows_cover_every_layer_once(layers, window, expected):
    assert layer_windows(layers, window) == expected


def test_windowed_overlap_of_a_depth_that_is_not_a_multiple_of_the_window():
    a = torch.tensor([[1.0, 1.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])  # 4 layers x 2 neurons
    b = torch.tensor([[1.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]])
    values = windowed_overlap(a, b, window=3)
    assert set(values) == {"all", "1-3", "4"}
    # all: A = 6 active, B = 4, both = 3 -> 3 / sqrt(24)
    assert values["all"] == pytest.approx(3 / math.sqrt(24))
    # layers 1-3: A = 4, B = 4, both = 3; layer 4: A = 2, B = 0 -> 0
    assert values["1-3"] == pytest.approx(3 / 4)
    assert values["4"] == 0.0


def test_top_neurons_takes_the_largest_share_and_breaks_ties_by_position():
    activations = torch.tensor([[0.5, 2.0, 0.1, 2.0, 0.0], [1.0, 3.0, -1.0, 2.0, 0.2]])
    mask = top_neurons(activations, 0.3)  # 3 of 10: 3.0, then the first two 2.0s
    assert mask.tolist() == [[False, True, False, True, False], [False, True, False, False, False]]


def test_hook_records_exactly_the_ffn_output_of_each_layer(backbone_dir):
    backbone, tokenizer = load_backbone(backbone_dir)
    prompts = torch.randn(3, 4, backbone.config.hidden_size, generator=torch.Generator().manual_seed(0))
    inputs = {}
    layer = ffn_modules(backbone)[0]
    handle = layer.register_forward_pre_hook(lambda module, args: inputs.setdefault("x", args[0]))
    try:
        activations = prompt_alone_activations(backbone, tokenizer, prompts)
    finally:
        handle.remove()
    assert activations.shape == (3, backbone.config.num_hidden_layers, backbone.config.intermediate_size)
    # Explicit recomputation of layer 0's FFN: GELU(W x + b) at the <mask> slot (position L + 1).
    dense = layer.dense
    expected = F.gelu(inputs["x"][:, 5] @ dense.weight.T + dense.bias)
    assert torch.allclose(activations[:, 0], expected, atol=1e-6)
    # One batched pass gives each prompt's own activations.
    alone = prompt_alone_activations(backbone, tokenizer, prompts[1:2])
    assert torch.allclose(alone[0], activations[1], atol=1e-5)


def test_switched_off_neurons_are_zero_in_the_forward_pass(backbone_dir):
    backbone, tokenizer = load_backbone(backbone_dir)
    n_layers, ffn = backbone.config.num_hidden_layers, backbone.config.intermediate_size
    off = [torch.zeros(ffn, dtype=torch.bool) for _ in range(n_layers)]
    off[0][:5] = True
    ids = tokenizer("the cat", return_tensors="pt")["input_ids"]
    with torch.no_grad(), record_ffn(backbone, off) as outputs:
        switched = backbone(input_ids=ids).logits
    assert (outputs[0][..., :5] == 0).all()
    assert (outputs[0][..., 5:] != 0).any()
    with torch.no_grad():
        assert not torch.allclose(backbone(input_ids=ids).logits, switched), "switching neurons off changes the output"


def test_task_input_activations_average_the_prediction_positions(world_dir, backbone_dir, tmp_path):
    from xlprompt.analysis.neurons import task_input_activations
    from xlprompt.methods.artifacts import load_trained
    from xlprompt.methods.training import train_prompt
    from xlprompt.models.tasks import TaskSet
    from xlprompt.runtime.settings import TrainConfig

    train_prompt(
        backbone_dir,
        world_dir / "topic",
        TrainConfig(method="spt", prompt_length=4, steps=2, max_length=48),
        tmp_path / "p",
    )
    model, tokenizer = load_trained(tmp_path / "p", backbone_dir)
    data = TaskSet.load([world_dir / "topic"]).encode(tokenizer, "en", "validation", 48, family="masked_lm")
    mean = task_input_activations(model, data, tokenizer.pad_token_id, batch_size=5)  # batches of uneven size
    # By hand: one example at a time, activations at its <mask> (shifted by the prompt length).
    rows = []
    for i in range(len(data)):
        batch = data.batch([i], tokenizer.pad_token_id)
        with torch.no_grad(), record_ffn(model.backbone) as outputs:
            model(batch["input_ids"], batch["attention_mask"], batch["mask_index"])
        rows.append(torch.stack([out[0, batch["mask_index"][0] + 4] for out in outputs]))
    assert torch.allclose(mean, torch.stack(rows).mean(0), atol=1e-5)


def _tiny_family_models(vocab_size: int, pad_id: int):
    from transformers import (
        BloomConfig,
        BloomForCausalLM,
        MT5Config,
        MT5ForConditionalGeneration,
        XGLMConfig,
        XGLMForCausalLM,
    )

    torch.manual_seed(0)
    return {
        "xglm": XGLMForCausalLM(
            XGLMConfig(
                vocab_size=vocab_size,
                d_model=16,
                ffn_dim=32,
                num_layers=2,
                attention_heads=2,
                max_position_embeddings=64,
            )
        ),
        "bloom": BloomForCausalLM(BloomConfig(vocab_size=vocab_size, hidden_size=16, n_layer=3, n_head=2)),
        "mt5": MT5ForConditionalGeneration(
            MT5Config(
                vocab_size=vocab_size,
                d_model=16,
                d_ff=24,
                num_layers=2,
                num_decoder_layers=2,
                num_heads=2,
                d_kv=8,
                decoder_start_token_id=pad_id,
                pad_token_id=pad_id,
            )
        ),
    }


@pytest.mark.parametrize(("name", "layers", "ffn"), [("xglm", 2, 32), ("bloom", 3, 64), ("mt5", 2, 24)])
def test_activations_of_decoder_and_encoder_decoder_families(backbone_dir, name, layers, ffn):
    _, tokenizer = load_backbone(backbone_dir)
    model = _tiny_family_models(len(tokenizer), tokenizer.pad_token_id)[name]
    prompts = torch.randn(3, 4, 16, generator=torch.Generator().manual_seed(1))
    activations = prompt_alone_activations(model, tokenizer, prompts)
    assert activations.shape == (3, layers, ffn)
    assert torch.allclose(prompt_alone_activations(model, tokenizer, prompts[2:3])[0], activations[2], atol=1e-5)
    if name == "xglm":
        # Explicit recomputation of layer 0: GELU(fc1(x)) at the last position (L = 4 after <s>).
        layer = model.model.layers[0]
        seen = {}
        handle = layer.fc1.register_forward_pre_hook(lambda module, args: seen.setdefault("x", args[0]))
        try:
            prompt_alone_activations(model, tokenizer, prompts)
        finally:
            handle.remove()
        expected = F.gelu(seen["x"][:, 4] @ layer.fc1.weight.T + layer.fc1.bias)
        assert torch.allclose(activations[:, 0], expected, atol=1e-6)
