"""Su et al. 2022's activated neurons and cross-model projector as named options, each checked against the
authors' mechanism rebuilt on a tiny model (thunlp/Prompt-Transferability): ``neurons.layout: su2022``
against their RobertaEmbeddings.forward (Prompt-Transferability-1.0/model/modelling_roberta.py) fed their
activate_neuron input (formatter/activate_neuronPromptRobertaFormatter.py) and read as their
activate_neuron.py reads it; the projector's ``output_norm`` and ``activation`` against their
AE_1_layer_mutiple_100 and AE_1_layer_mutiple_100_paper (Prompt-Transferability-1.0/tools/projector.py)."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file
from test_config import SCHEMA, mutate, smoke
from torch import nn

from xlprompt.analysis.neurons import prompt_alone_activations
from xlprompt.config.checks import validate_config
from xlprompt.methods.projector import ProjectorConfig, PromptProjector, project_prompt, train_projector
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.runtime.settings import ConfigError, NeuronSettings, TrainConfig

LENGTH = 5
FAST = {"prompt_length": 4, "steps": 4, "batch_size": 8, "eval_every": 2, "lr": 0.3, "max_length": 48}


@pytest.fixture(scope="module")
def xlmr(backbone_dir):
    backbone, tokenizer = load_backbone(backbone_dir)
    backbone.requires_grad_(False)
    backbone.eval()
    return backbone, tokenizer


@pytest.fixture(scope="module")
def prompts(xlmr):
    """Two prompts (2, L, d) at the scale of the backbone's word embeddings."""
    backbone, _ = xlmr
    table = backbone.get_input_embeddings().weight
    return torch.randn(2, LENGTH, table.shape[1], generator=torch.Generator().manual_seed(0)) * table.std()


def intermediate_outputs(backbone, run) -> list[torch.Tensor]:
    """Every layer's ``intermediate`` output (B, S, ffn) while ``run()`` runs: what the authors hook."""
    outputs: list[torch.Tensor] = []
    layers = backbone.base_model.encoder.layer
    handles = [layer.intermediate.register_forward_hook(lambda _m, _a, out: outputs.append(out)) for layer in layers]
    try:
        with torch.no_grad():
            run()
    finally:
        for handle in handles:
            handle.remove()
    return outputs


def authors_activations(backbone, tokenizer, prompt: torch.Tensor, their_positions: bool = True) -> torch.Tensor:
    """Su et al.'s activated neurons of one prompt (L, d): (n_layers, ffn), their code rebuilt line by line.

    Input (activate_neuronPromptRobertaFormatter.process): ``prompt_prefix + encode("<s>")``, the prompt as ids
    -1..-L, padded with <pad> (attention mask 0) to a longer max_len. Embeddings (RobertaEmbeddings.forward):
    word embeddings of ids >= 0, the prompt's rows from the prompt table, ``prompt_emb[:, 0] = <mask>``'s
    embedding; their create_position_ids_from_input_ids counts only ids >= 0 that are not padding; the
    first L rows of the position embeddings set to 0 (their 100, their prompt length); token type 0;
    LayerNorm, no dropout. Encoder with their additive mask ``(1 - mask) * -10000``; the activations are
    ``encoder.layer[n].intermediate``'s output at position 0 (activate_neuron.py: ``outputs[:,:,:1,:]``).
    ``their_positions=False``: ordinary position ids for every token and no zeroing, for contrast.
    """
    emb = backbone.base_model.embeddings
    pad = backbone.config.pad_token_id
    length = prompt.shape[0]
    sent = tokenizer("<s>", add_special_tokens=False)["input_ids"]
    tokens = [-(i + 1) for i in range(length)] + sent
    input_ids = torch.tensor([tokens + [pad] * 3])
    attention = torch.tensor([[1] * len(tokens) + [0] * 3])

    real = (input_ids >= 0).int()
    word_embeds = emb.word_embeddings(input_ids * real) * real.unsqueeze(2)
    prompt_ids = -(input_ids + 1)
    in_prompt = (prompt_ids >= 0).int()
    prompt_emb = F.embedding(prompt_ids * in_prompt, prompt) * in_prompt.unsqueeze(2)
    prompt_emb[:, 0, :] = emb.word_embeddings(torch.tensor([tokenizer.mask_token_id]))
    inputs_embeds = word_embeds + prompt_emb

    counted = input_ids.ne(pad).int() * (real if their_positions else 1)
    position_ids = torch.cumsum(counted, dim=1) * counted + pad
    position_embeddings = emb.position_embeddings(position_ids)
    if their_positions:
        position_embeddings[:, :length, :] = 0
    token_type_embeddings = emb.token_type_embeddings(torch.zeros_like(input_ids))
    embeddings = emb.LayerNorm(inputs_embeds + position_embeddings + token_type_embeddings)

    mask = ((1.0 - attention.float()) * -10000.0)[:, None, None, :]  # (1, 1, 1, T), added to the scores
    outputs = intermediate_outputs(backbone, lambda: backbone.base_model.encoder(embeddings, attention_mask=mask))
    return torch.stack([out[0, 0] for out in outputs])


def test_the_tiny_backbone_is_xlm_r_with_roberta_positions(xlmr):
    """What the rebuilt mechanism relies on: XLM-R's embedding layer, <s> and <mask> as single tokens, and the
    position ids of a text starting at padding_idx + 1 (so <s>, their first counted token, gets padding_idx + 1)."""
    backbone, tokenizer = xlmr
    assert backbone.config.model_type == "xlm-roberta"
    assert tokenizer("<s>", add_special_tokens=False)["input_ids"] == [tokenizer.cls_token_id]
    assert tokenizer.convert_ids_to_tokens(tokenizer.mask_token_id) == "<mask>"
    ids = torch.tensor([[tokenizer.cls_token_id, tokenizer.mask_token_id]])
    assert backbone.base_model.embeddings.create_position_ids_from_input_ids(
        ids, backbone.config.pad_token_id
    ).tolist() == [[backbone.config.pad_token_id + 1, backbone.config.pad_token_id + 2]]


def test_su2022_layout_gives_the_authors_activations(xlmr, prompts):
    backbone, tokenizer = xlmr
    ours = prompt_alone_activations(backbone, tokenizer, prompts, layout="su2022")  # (P, layers, ffn)
    assert ours.shape == (2, backbone.config.num_hidden_layers, backbone.config.intermediate_size)
    for i in range(len(prompts)):
        torch.testing.assert_close(ours[i], authors_activations(backbone, tokenizer, prompts[i]))
    # The comparison sees the mechanism: with ordinary positions for the prompt, the values differ.
    assert not torch.allclose(ours[0], authors_activations(backbone, tokenizer, prompts[0], their_positions=False))


def test_su2022_layout_zeroes_the_prompt_positions_whatever_the_padding_row_holds(xlmr, prompts):
    """Their prompt rows get position id padding_idx, whose row an nn.Embedding(padding_idx=...) keeps at zero
    while it trains; they set the rows to zero all the same, and so does layout su2022: a backbone whose
    padding row is not zero gives the authors' values too."""
    backbone, tokenizer = xlmr
    backbone = copy.deepcopy(backbone)
    table = backbone.base_model.embeddings.position_embeddings.weight
    assert torch.count_nonzero(table[backbone.config.pad_token_id]) == 0
    with torch.no_grad():
        table[backbone.config.pad_token_id] = torch.randn(table.shape[1], generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(
        prompt_alone_activations(backbone, tokenizer, prompts[:1], layout="su2022")[0],
        authors_activations(backbone, tokenizer, prompts[0]),
    )


def test_su2022_layout_never_reads_the_first_prompt_vector(xlmr, prompts):
    """The authors overwrite prompt slot 0 with <mask>: P_1 does not reach the model; it does in layout xlprompt."""
    backbone, tokenizer = xlmr
    changed = prompts.clone()
    changed[:, 0] = torch.randn(changed.shape[-1], generator=torch.Generator().manual_seed(3))
    assert torch.equal(
        prompt_alone_activations(backbone, tokenizer, prompts, layout="su2022"),
        prompt_alone_activations(backbone, tokenizer, changed, layout="su2022"),
    )
    assert not torch.allclose(
        prompt_alone_activations(backbone, tokenizer, prompts), prompt_alone_activations(backbone, tokenizer, changed)
    )


def test_xlprompt_layout_reads_the_mask_of_the_trained_layout(xlmr, prompts):
    """The default is unchanged: ``[P] <s> <mask> </s>`` with ordinary positions, read at <mask> (position L + 1)."""
    backbone, tokenizer = xlmr
    assert NeuronSettings().layout == "xlprompt"
    ids = torch.tensor([tokenizer.cls_token_id, tokenizer.mask_token_id, tokenizer.sep_token_id])
    embeds = torch.cat([prompts, backbone.get_input_embeddings()(ids).expand(len(prompts), -1, -1)], dim=1)
    outputs = intermediate_outputs(backbone, lambda: backbone.base_model(inputs_embeds=embeds))
    at_mask = torch.stack([out[:, LENGTH + 1] for out in outputs], dim=1)  # (P, layers, ffn)
    default = prompt_alone_activations(backbone, tokenizer, prompts)
    torch.testing.assert_close(default, at_mask)
    assert torch.equal(prompt_alone_activations(backbone, tokenizer, prompts, layout="xlprompt"), default)
    assert not torch.allclose(default, torch.stack([out[:, 0] for out in outputs], dim=1))  # not slot 0
    assert not torch.allclose(default, prompt_alone_activations(backbone, tokenizer, prompts, layout="su2022"))


def test_su2022_layout_refuses_a_backbone_without_robertas_embeddings(stand_ins):
    backbone, tokenizer = load_backbone(stand_ins["bert"])
    prompts = torch.zeros(1, LENGTH, backbone.config.hidden_size)
    with pytest.raises(ValueError, match=r"neurons.layout su2022: .*'bert' \(masked_lm\): use layout xlprompt"):
        prompt_alone_activations(backbone, tokenizer, prompts, layout="su2022")
    with pytest.raises(ValueError, match=r"neurons.layout must be one of \('xlprompt', 'su2022'\), got 'foo'"):
        prompt_alone_activations(backbone, tokenizer, prompts, layout="foo")
    with pytest.raises(ValueError, match="layout su2022 lays out a prompt fed alone; mode task"):
        NeuronSettings(mode="task", layout="su2022")


@pytest.fixture(scope="module")
def source_prompt(world_dir, backbone_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("su2022") / "topic"
    train_prompt(backbone_dir, world_dir / "topic", TrainConfig(method="spt", **FAST), out)
    return out


def test_the_stage_writes_su2022_activations_and_records_the_layout(xlmr, backbone_dir, source_prompt, tmp_path):
    from xlprompt.stages import prompt_activations

    backbone, tokenizer = xlmr
    out = tmp_path / "activations.safetensors"
    prompt_activations.main(
        [
            "--backbone",
            str(backbone_dir),
            "--prompts",
            f"topic={source_prompt}",
            "--layout",
            "su2022",
            "--out",
            str(out),
        ]
    )
    with safe_open(out, "pt") as handle:
        assert handle.metadata() == {"mode": "alone", "layout": "su2022"}
    prompt = load_file(source_prompt / "prompt.safetensors")["prompt"]
    expected = prompt_alone_activations(backbone, tokenizer, prompt.unsqueeze(0), layout="su2022")[0]
    torch.testing.assert_close(load_file(out)["topic/L4/seed0"], expected)


# ---------------------------------------------------------------------------------------
# The cross-model projector
# ---------------------------------------------------------------------------------------


class AuthorsProjector(nn.Module):
    """Their AE_1_layer_mutiple_100 (and, with Tanh, AE_1_layer_mutiple_100_paper), for a prompt of ``length``
    tokens (their 100): encoder, activation, decoder, reshape to (batch, length, dim_2 / length), LayerNorm."""

    def __init__(self, dim_0: int, dim_1: int, dim_2: int, length: int, activation: nn.Module) -> None:
        super().__init__()
        self.encoder = nn.Linear(dim_0, dim_1)
        self.decoder = nn.Linear(dim_1, dim_2)
        self.length, self.dim = length, dim_2 // length
        self.layer_norm = nn.LayerNorm(self.dim)  # eps 1e-05: torch's default, as both of theirs
        self.activation = activation

    def forward(self, features: torch.Tensor) -> torch.Tensor:  # (batch, dim_0) -> (batch, dim_2)
        decoded = self.decoder(self.activation(self.encoder(features)))
        decoded = self.layer_norm(decoded.reshape(features.shape[0], self.length, self.dim))
        return decoded.reshape(features.shape[0], self.length * self.dim)


@pytest.mark.parametrize(("activation", "authors_activation"), [("leaky_relu", nn.LeakyReLU), ("tanh", nn.Tanh)])
def test_the_projector_with_output_norm_is_the_authors(activation, authors_activation):
    length, source_dim, target_dim, hidden = 4, 6, 5, 11
    projector = PromptProjector(length, source_dim, target_dim, hidden, activation, output_norm=True)
    assert (projector.net[0].in_features, projector.net[0].out_features) == (length * source_dim, hidden)
    assert (projector.net[2].in_features, projector.net[2].out_features) == (hidden, length * target_dim)
    assert isinstance(projector.net[1], authors_activation)
    assert projector.norm is not None
    assert projector.norm.normalized_shape == (target_dim,)
    theirs = AuthorsProjector(length * source_dim, hidden, length * target_dim, length, authors_activation())
    theirs.load_state_dict(
        {
            "encoder.weight": projector.net[0].weight,
            "encoder.bias": projector.net[0].bias,
            "decoder.weight": projector.net[2].weight,
            "decoder.bias": projector.net[2].bias,
            "layer_norm.weight": projector.norm.weight,
            "layer_norm.bias": projector.norm.bias,
        }
    )
    prompt = torch.randn(length, source_dim, generator=torch.Generator().manual_seed(1)) * 3
    with torch.no_grad():
        ours = projector(prompt)
        assert ours.shape == (length, target_dim)
        torch.testing.assert_close(ours, theirs(prompt.reshape(1, -1)).view(length, target_dim))
        # At initialisation (gain 1, bias 0) each projected token is normalised: mean 0, variance 1 (v / (v + eps)
        # for a token of variance v before the norm, eps 1e-5).
        before = projector.net(prompt.reshape(-1)).view(length, target_dim).var(dim=1, unbiased=False)
        torch.testing.assert_close(ours.mean(dim=1), torch.zeros(length), atol=1e-5, rtol=0)
        torch.testing.assert_close(ours.var(dim=1, unbiased=False), before / (before + 1e-5))
        torch.testing.assert_close(ours.var(dim=1, unbiased=False), torch.ones(length), atol=1e-2, rtol=0)


def test_the_default_projector_is_unchanged():
    config = ProjectorConfig()
    assert (config.hidden, config.activation, config.output_norm) == (768, "leaky_relu", False)
    projector = PromptProjector(4, 6, 5, 11)
    assert projector.norm is None
    assert isinstance(projector.net[1], nn.LeakyReLU)
    assert set(projector.state_dict()) == {"net.0.weight", "net.0.bias", "net.2.weight", "net.2.bias"}
    with pytest.raises(ValueError, match="projector activation must be one of"):
        ProjectorConfig(activation="relu")


def test_a_trained_projector_records_its_settings_and_maps_other_prompts_alike(
    world_dir, backbone_dir, source_prompt, tmp_path
):
    """train_projector writes activation and output_norm into meta.json; project_prompt rebuilds that projector."""
    from xlprompt.runtime.io import read_json

    out = tmp_path / "projector"
    cfg = ProjectorConfig(
        hidden=8, activation="tanh", output_norm=True, steps=2, batch_size=8, eval_every=1, max_length=48
    )
    train_projector(source_prompt, backbone_dir, [world_dir / "topic"], cfg, out)
    config = read_json(out / "meta.json")["config"]
    assert (config["hidden"], config["activation"], config["output_norm"]) == (8, "tanh", True)
    weights = load_file(out / "projector.safetensors")
    assert {"norm.weight", "norm.bias"} <= set(weights)
    project_prompt(out, source_prompt, backbone_dir, tmp_path / "projected")
    projector = PromptProjector(
        4, weights["net.0.weight"].shape[1] // 4, weights["norm.weight"].shape[0], 8, "tanh", True
    )
    projector.load_state_dict(weights)
    with torch.no_grad():
        expected = projector(load_file(source_prompt / "prompt.safetensors")["prompt"])
    torch.testing.assert_close(load_file(tmp_path / "projected" / "prompt.safetensors")["prompt"], expected)
    assert read_json(tmp_path / "projected" / "meta.json")["config"]["activation"] == "tanh"


# ---------------------------------------------------------------------------------------
# The config: bad values stop before any job, naming the key
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            mutate("neurons", {"layout": "foo"}),
            r"neurons.layout: 'foo' is not allowed; allowed: \['xlprompt', 'su2022'\]",
        ),
        (mutate("spot.cross_model.hidden", 0), r"spot.cross_model.hidden: 0 must be >= 1"),
        (
            mutate("spot.cross_model.activation", "relu"),
            r"spot.cross_model.activation: 'relu' is not allowed; allowed: \['leaky_relu', 'tanh'\]",
        ),
        (mutate("spot.cross_model.output_norm", "yes"), r"spot.cross_model.output_norm: 'yes' is not of type boolean"),
        (
            mutate("neurons", {"layout": "su2022", "mode": "task"}),
            r"neurons.layout: su2022 lays out a prompt fed alone; neurons.mode task",
        ),
    ],
)
def test_bad_su2022_settings_are_rejected_naming_the_key(change, message):
    with pytest.raises(ConfigError, match=message):
        validate_config(change(copy.deepcopy(smoke())), SCHEMA)


def test_su2022_layout_is_refused_for_a_backbone_of_another_type():
    cfg = mutate("neurons", {"layout": "su2022"})(copy.deepcopy(smoke()))
    validate_config(copy.deepcopy(cfg), SCHEMA)  # the generated backbone is XLM-R
    cfg["backbone"] = {"name": "xglm-564m", "hub": "facebook/xglm-564M"}
    with pytest.raises(
        ConfigError, match=r"neurons.layout: su2022 .* is 'xglm'; allowed: \['xlm-roberta', 'roberta'\]"
    ):
        validate_config(cfg, SCHEMA)
