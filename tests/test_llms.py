"""Today's decoder LLMs (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3) on faithful stand-ins: what the
tests of every family (test_families, test_methods, test_ltp) do not already cover for them: the prompt
before the text, the unfrozen backbone, ON on a gated MLP, label words as they follow a text, and
deep_prompt's prefixes sized for grouped-query attention."""

from __future__ import annotations

import pytest
import torch
from conftest import single_token_words, with_label_words
from tiny_models import LLM_FAMILY

from xlprompt.analysis.neurons import prompt_alone_activations, record_ffn
from xlprompt.data.contract import load_split
from xlprompt.data.encoding import encode_split
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.deep_prompt import attention_sites, prefix_kind
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.families import label_word_text
from xlprompt.models.predict import predict
from xlprompt.runtime.settings import TrainConfig

KINDS = list(LLM_FAMILY)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("method", "position"), [("spt", "prefix"), ("full_ft", "")])
def test_the_prompt_before_the_text_and_the_unfrozen_backbone_train_and_reload(
    kind, method, position, stand_ins, world_dir, tmp_path
):
    folder = stand_ins[kind]
    backbone, tokenizer = load_backbone(folder)
    data = with_label_words(
        world_dir / "nli", tmp_path / "nli", single_token_words(tokenizer, world_dir, "causal_lm", 3)
    )
    cfg = TrainConfig(
        method=method,
        position=position,
        prompt_length=4,
        steps=4,
        batch_size=8,
        eval_every=2,
        lr=0.3,
        backbone_lr=1e-3,
        max_length=48,
        train_per_class=4,
        seed=1,
    )
    train_prompt(folder, data, cfg, tmp_path / method)
    model, _ = load_trained(tmp_path / method, folder)
    if method == "full_ft":  # the backbone moved
        before = dict(backbone.named_parameters())
        assert any(not torch.equal(p, before[n]) for n, p in model.backbone.named_parameters())
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, "causal_lm")
    first, _ = predict(model, test, tokenizer.pad_token_id)
    assert first == predict(load_trained(tmp_path / method, folder)[0], test, tokenizer.pad_token_id)[0]


@pytest.mark.parametrize("kind", KINDS)
def test_on_reads_the_input_of_down_proj_and_switching_a_neuron_off_zeroes_its_column(kind, stand_ins):
    """A gated MLP's neurons: act(gate_proj x) * up_proj x, recomputed here from the MLP's input x."""
    backbone, tokenizer = load_backbone(stand_ins[kind])
    backbone.eval()
    prompts = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(0))
    mlp = backbone.model.layers[1].mlp
    seen: dict[str, torch.Tensor] = {}
    handles = [
        mlp.register_forward_pre_hook(lambda _m, args: seen.__setitem__("x", args[0])),
        mlp.register_forward_hook(lambda _m, _a, out: seen.__setitem__("out", out)),
    ]
    try:
        activations = prompt_alone_activations(backbone, tokenizer, prompts)
        x = seen["x"]
        by_hand = mlp.act_fn(mlp.gate_proj(x)) * mlp.up_proj(x)
        position = x.shape[1] - 1  # the last prompt vector predicts the label
        assert activations.shape == (2, 2, 64)
        torch.testing.assert_close(activations[:, 1], by_hand[:, position], atol=1e-6, rtol=1e-5)
        assert (activations > 0).any()  # SwiGLU/GeGLU values take both signs
        assert (activations < 0).any()

        off = [torch.zeros(64, dtype=torch.bool), torch.arange(64) < 16]
        embeds = backbone.get_input_embeddings()(torch.tensor([[5, 6, 7]]))
        with torch.no_grad(), record_ffn(backbone, switch_off=off) as outputs:
            backbone.model(inputs_embeds=embeds)
        kept = (mlp.act_fn(mlp.gate_proj(seen["x"])) * mlp.up_proj(seen["x"])).masked_fill(off[1], 0.0)
        torch.testing.assert_close(outputs[1], kept)
        torch.testing.assert_close(seen["out"], mlp.down_proj(kept))
    finally:
        for handle in handles:
            handle.remove()


@pytest.mark.parametrize("kind", KINDS)
def test_a_label_word_is_the_tokens_it_has_after_a_text(kind, stand_ins, world_dir):
    """The label is read as the next token after the prompt: " word" alone tokenizes as it does after a text
    (no leading word-boundary piece of its own, as Metaspace's "first" scheme would add to a first word)."""
    _, tokenizer = load_backbone(stand_ins[kind])
    for word in [*single_token_words(tokenizer, world_dir, "causal_lm", 3), "deke"]:
        alone = tokenizer(label_word_text(word, "causal_lm"), add_special_tokens=False)["input_ids"]
        context = tokenizer("a", add_special_tokens=False)["input_ids"]
        after = tokenizer("a" + label_word_text(word, "causal_lm"), add_special_tokens=False)["input_ids"]
        assert after == context + alone, (word, tokenizer.convert_ids_to_tokens(after))


@pytest.mark.parametrize("kind", KINDS)
def test_deep_prompt_prefixes_each_layers_key_value_heads(kind, stand_ins):
    """Grouped-query attention caches num_key_value_heads heads: a prefix has that many (2 here, of 4 query
    heads), as PEFT's prefix tuning sizes it (tests/test_deep_prompt.py checks both forwards agree)."""
    backbone, _ = load_backbone(stand_ins[kind])
    assert prefix_kind(backbone) == "decoder_llm"
    sites = attention_sites(backbone)
    assert len(sites) == backbone.config.num_hidden_layers
    assert {(site.heads, site.head_dim) for site in sites} == {(2, 8)}
    assert backbone.config.num_attention_heads == 4
