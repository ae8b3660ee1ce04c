"""Method deep_prompt (P-tuning v2 / prefix tuning): key/value prefixes in every layer (or the configured
ones), the backbone frozen. Frozen means frozen; the artifact holds only the prefixes and rebuilds the
model exactly; xlprompt's injection gives PEFT's prefix tuning logits where PEFT reaches the family, and
PEFT's own forward on the exported adapter gives xlprompt's; where PEFT does not reach (mT5's encoder,
layer subsets, BERT's token types) the injection is checked against the model reading real tokens."""

from __future__ import annotations

import copy

import pytest
import torch
from conftest import single_token_words, train_killed_after_checkpoint, with_label_words
from peft import PeftModel, PrefixTuningConfig, get_peft_model, set_peft_model_state_dict
from safetensors.torch import load_file
from test_config import SCHEMA, mutate, paper, smoke
from test_methods import FAST, labelled_data
from tiny_models import ALL, LLM_FAMILY

from xlprompt.config import checks
from xlprompt.config.checks import validate_config
from xlprompt.data.contract import load_split
from xlprompt.data.encoding import encode_split
from xlprompt.methods import training as train_module
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.deep_prompt import PREFIX_KEY, DeepPrompt, DeepPromptedLM, attention_sites
from xlprompt.methods.peft_export import PREFIX_FOLDER, TASK_TYPES
from xlprompt.methods.training import PromptRun, check_together, train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.compute import switches_to_sdpa
from xlprompt.models.families import (
    HUB_MODEL_TYPES,
    HUB_PREFIX_LAYERS,
    MODEL_TYPES,
    PREFIX_ATTENTION,
    auto_class,
    family_of,
)
from xlprompt.models.prompting import PromptedLM
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import ConfigError, DeepPromptSettings, TrainConfig, trains_alone, trains_backbone
from xlprompt.stages.train_prompt import build_parser, parse_runs

DEEP = {**FAST, "lr": 0.05}  # the prefixes start at N(0, 1): a prompt's lr of 0.3 would only add noise


def test_deep_prompt_trains_alone_with_the_backbone_frozen():
    """It changes no backbone weight (the backbone stays in eval mode, as for spt), but its prefixes enter every
    layer, so it cannot share a backbone pass with input-level prompts: a job of its own."""
    assert trains_alone("deep_prompt")
    assert not trains_backbone("deep_prompt")
    cfg = TrainConfig(method="deep_prompt", prompt_length=4)
    assert cfg.trains
    assert cfg.trains_alone
    assert not cfg.trains_backbone
    assert all(trains_alone(m) for m in ("full_ft", "ltp", "lora", "bitfit"))
    assert not trains_alone("spt")
    with pytest.raises(ValueError, match="methods \\['deep_prompt'\\] change backbone weights or put prefixes"):
        check_together([PromptRun("d", TrainConfig(method="deep_prompt"), "a"), PromptRun("d", TrainConfig(), "b")])


def test_deep_prompt_settings_and_what_does_not_apply_to_it():
    assert DeepPromptSettings().layers == ()
    assert DeepPromptSettings(layers="all").layers == ()
    assert DeepPromptSettings(layers=[3, 1]).layers == (1, 3)
    assert TrainConfig(
        method="deep_prompt", deep_prompt={"layers": [0], "reparameterization": True}
    ).deep_prompt == DeepPromptSettings(reparameterization=True, layers=(0,))
    with pytest.raises(ValueError, match="duplicated values in \\[1, 1\\]"):
        DeepPromptSettings(layers=[1, 1])
    with pytest.raises(ValueError, match="reparam_hidden must be >= 1"):
        DeepPromptSettings(reparam_hidden=0)
    with pytest.raises(ValueError, match="no input-level prompt to reparameterise"):
        TrainConfig(method="deep_prompt", reparameterization=True)
    with pytest.raises(ValueError, match="position suffix does not apply"):
        TrainConfig(method="deep_prompt", position="suffix")
    with pytest.raises(ValueError, match="prompt_length must be >= 1 for method deep_prompt"):
        TrainConfig(method="deep_prompt", prompt_length=0)
    # The stage's flags: the block's keys under its name; layers takes numbers or the word all.
    parser = build_parser()
    args = ["--backbone", "b", "--data", "d", "--out", "o", "--method", "deep_prompt"]
    cfg = parse_runs(
        parser, parser.parse_args([*args, "--deep-prompt-layers", "0", "2", "--deep-prompt-reparameterization"])
    )[0].cfg
    assert cfg.deep_prompt == DeepPromptSettings(reparameterization=True, layers=(0, 2))
    assert parse_runs(parser, parser.parse_args([*args, "--deep-prompt-layers", "all"]))[0].cfg.deep_prompt.layers == ()


def deeper(kind: str, folder, out, layers: int = 2):
    """The stand-in with ``layers`` layers (mT5: in its encoder and in its decoder), random, saved to ``out``."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(folder)
    if kind == "mt5":
        config.num_layers = config.num_decoder_layers = layers
    else:
        config.num_hidden_layers = layers
    torch.manual_seed(1)
    auto_class(ALL[kind]).from_config(config).save_pretrained(out)
    AutoTokenizer.from_pretrained(folder).save_pretrained(out)
    return out


def all_test_rows(kind: str, data, tokenizer) -> dict[str, torch.Tensor]:
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, ALL[kind])
    return test.batch(list(range(len(test))), tokenizer.pad_token_id)


def capture(monkeypatch) -> dict:
    """The prompted model as training builds it (its initial prefixes) and as it writes the artifact; the
    backbone's mode at every training step."""
    seen: dict = {"backbone_training": []}
    build, write, step = train_module.build_prompted, train_module.write_artifact, train_module.train_step

    def spy_build(*args, **kwargs):
        model = build(*args, **kwargs)
        seen["init"] = {n: p.detach().clone() for n, p in model.named_parameters() if n.startswith("deep.")}
        return model

    def spy_write(out, model, *args, **kwargs):
        seen["model"] = model
        return write(out, model, *args, **kwargs)

    def spy_step(model, *args, **kwargs):
        seen["backbone_training"].append(model.backbone.training)
        return step(model, *args, **kwargs)

    monkeypatch.setattr(train_module, "build_prompted", spy_build)
    monkeypatch.setattr(train_module, "write_artifact", spy_write)
    monkeypatch.setattr(train_module, "train_step", spy_step)
    return seen


def peft_label_logits(peft_model, kind: str, batch: dict[str, torch.Tensor], verbalizer: torch.Tensor) -> torch.Tensor:
    """Label logits (B, n_labels) from PEFT's own forward on the token ids, read where xlprompt reads.
    Prefixes add no output positions: the mask (masked LM) or the last text token (causal LM) is read."""
    rows = torch.arange(batch["input_ids"].shape[0])
    logits = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    return logits[rows, batch["mask_index"] - (1 if ALL[kind] == "causal_lm" else 0)][:, verbalizer]


# kind, task, settings: every family; pairs (nli) where the stand-in reads them, BERT's typed pairs too
CASES = {
    "xlm-roberta": ("xlm-roberta", "nli", {}),
    "xlm-roberta-reparameterised": ("xlm-roberta", "nli", {"reparameterization": True, "reparam_hidden": 16}),
    "bert-pairs": ("bert", "nli", {}),
    "bert": ("bert", "topic", {}),
    "xglm": ("xglm", "nli", {}),
    "bloom": ("bloom", "topic", {}),
    "mt5": ("mt5", "nli", {}),
    "xlm-roberta-layer-1-of-2": ("xlm-roberta", "nli", {"layers": [1]}),
    "mt5-decoder-only": ("mt5", "nli", {"layers": [2, 3]}),
    # Today's decoder LLMs: grouped-query attention (prefixes of num_key_value_heads heads), rotary positions
    **{kind: (kind, "nli", {}) for kind in LLM_FAMILY},
    "llama-layer-1-of-2": ("llama", "nli", {"layers": [1]}),
}
# PEFT's format holds them
EXPORTED = {"xlm-roberta", "xlm-roberta-reparameterised", "bert", "xglm", "bloom", *LLM_FAMILY}


@pytest.mark.parametrize("case", list(CASES))
def test_deep_prompt_changes_only_its_prefixes_and_its_artifact_rebuilds_the_trained_model(
    case, stand_ins, world_dir, tmp_path, monkeypatch
):
    kind, task, settings = CASES[case]
    folder = stand_ins[kind] if "layers" not in settings else deeper(kind, stand_ins[kind], tmp_path / "deeper")
    _, tokenizer = load_backbone(folder)
    data = with_label_words(world_dir / task, tmp_path / task, single_token_words(tokenizer, world_dir, ALL[kind], 3))
    seen = capture(monkeypatch)
    cfg = TrainConfig(method="deep_prompt", prompt_length=4, deep_prompt=settings, **DEEP)
    summary = train_prompt(folder, data, cfg, tmp_path / "deep")
    trained = seen["model"]
    assert isinstance(trained, DeepPromptedLM)
    assert trained.prompt is None

    # Frozen means frozen: every backbone entry bit-identical, its dropout on at every step (training.dropout's
    # default, as for every method).
    theta0 = load_file(folder / "model.safetensors")
    state = trained.backbone.state_dict()
    assert all(torch.equal(state[name], before) for name, before in theta0.items())
    assert seen["backbone_training"]
    assert all(seen["backbone_training"])
    # The prefixes (and their MLP) moved.
    now = {n: p.detach() for n, p in trained.named_parameters() if n.startswith("deep.")}
    assert now.keys() == seen["init"].keys()
    assert all(not torch.equal(now[n], seen["init"][n]) for n in now)
    assert all(not p.requires_grad for p in trained.backbone.parameters())

    # Only the prefixes are in the artifact: PEFT's adapter, or prompt.safetensors; meta.json says which.
    out = tmp_path / "deep"
    meta = read_json(out / "meta.json")
    deep = trained.deep
    n_layers = len(attention_sites(trained.backbone))
    assert deep.layers == (settings.get("layers") or list(range(n_layers)))
    with torch.no_grad():
        prefixes = deep.prefixes()  # (L, layers x 2 x width)
    assert prefixes.shape == (4, len(deep.layers) * 2 * deep.width)
    tensors = load_file(out / "prompt.safetensors")
    assert tensors["prompt"].numel() == 0
    assert meta["peft_export"]["exported"] == (case in EXPORTED), meta["peft_export"]
    if case in EXPORTED:
        assert set(tensors) == {"prompt"}
        assert meta["peft_export"]["folder"] == PREFIX_FOLDER
        stored = load_file(out / PREFIX_FOLDER / "adapter_model.safetensors")
        assert set(stored) == {"prompt_embeddings"}
        assert torch.equal(stored["prompt_embeddings"], prefixes)
        config = read_json(out / PREFIX_FOLDER / "adapter_config.json")
        assert config["peft_type"] == "PREFIX_TUNING"
        assert config["num_layers"] == n_layers
        assert not config["prefix_projection"]  # stored after the MLP: predicting needs none
    else:
        assert set(tensors) == {"prompt", PREFIX_KEY}
        assert torch.equal(tensors[PREFIX_KEY], prefixes)
        assert not (out / PREFIX_FOLDER).exists()
    assert meta["deep_prompt"]["layers"] == deep.layers
    assert meta["deep_prompt"]["prefix_length"] == 4
    assert ("MLP" in meta["deep_prompt"]["reparameterization"]) == bool(settings.get("reparameterization"))
    files = [out / name for name in meta["files_sha256"]]
    assert meta["artifact_bytes"] == sum(f.stat().st_size for f in files)
    assert meta["artifact_share"] == meta["artifact_bytes"] / meta["full_checkpoint_bytes"] < 0.1
    expected = sum(t.numel() for t in seen["init"].values())
    if not settings.get("reparameterization"):
        assert expected == prefixes.numel()
    assert meta["trainable_parameters"] == summary["trainable_parameters"] == expected
    assert meta["backbone_parameters"] == sum(p.numel() for p in trained.backbone.parameters())
    assert meta["trainable_share"] == pytest.approx(expected / meta["backbone_parameters"])

    # The reloaded artifact scores every test row exactly as the model did at the end of training, also
    # on a backbone shared with other prompts, which it leaves as it was.
    batch = all_test_rows(kind, data, tokenizer)
    trained.eval()
    with torch.no_grad():
        at_end = trained.score_batch(batch)
        assert torch.equal(load_trained(out, folder)[0].score_batch(batch), at_end)
        shared = load_backbone(folder)
        reloaded = load_trained(out, folder, shared=shared)[0]
        assert reloaded.backbone is shared[0]
        assert torch.equal(reloaded.score_batch(batch), at_end)
        assert not any(m._forward_pre_hooks for m in shared[0].modules())
        plain = PromptedLM.forward(
            reloaded, batch["input_ids"], batch["attention_mask"], batch["mask_index"], batch.get("token_type_ids")
        )
        assert not torch.allclose(plain, at_end)  # the prefixes matter

    # PEFT's own code path on the exported adapter gives the same logits.
    if case in EXPORTED:
        peft_model = PeftModel.from_pretrained(
            auto_class(ALL[kind]).from_pretrained(folder, attn_implementation="eager"), str(out / PREFIX_FOLDER)
        )
        peft_model.eval()
        with torch.no_grad():
            theirs = peft_label_logits(peft_model, kind, batch, trained.verbalizer_ids)
        print(f"{case}: largest |PEFT - xlprompt| label logit difference {(theirs - at_end).abs().max().item():.3g}")
        torch.testing.assert_close(theirs, at_end, atol=1e-5, rtol=0)
        assert theirs.argmax(-1).tolist() == at_end.argmax(-1).tolist()


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert", "xglm", "bloom", "mt5-decoder", *LLM_FAMILY])
def test_xlprompts_injection_gives_peft_prefix_tuning_logits_on_the_same_parameters(
    kind, stand_ins, world_dir, tmp_path
):
    """Random prefixes in PEFT's PrefixEncoder and in xlprompt's DeepPrompt, the same numbers: PEFT's forward
    (past_key_values in every layer) and xlprompt's injection give the same logits at every real position.
    mT5: PEFT prefixes only the decoder (layers [1] here, the decoder's block); BERT: one text, no types."""
    name = kind.removesuffix("-decoder")
    folder = stand_ins[name]
    backbone, tokenizer = load_backbone(folder)
    data, _ = labelled_data(name, folder, world_dir, tmp_path)
    batch = all_test_rows(name, data, tokenizer)  # token ids and mask only: PEFT's forward drops token types
    settings = DeepPromptSettings(layers=(1,) if kind == "mt5-decoder" else ())
    torch.manual_seed(5)
    deep = DeepPrompt(backbone, 5, settings)
    with torch.no_grad():
        deep.encoder.embedding.weight.mul_(0.5)
    family = family_of(backbone)
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if family == "seq2seq":
        inputs["decoder_input_ids"] = torch.full((len(batch["input_ids"]), 2), backbone.config.decoder_start_token_id)
    with torch.no_grad():
        with deep.injected():
            ours = backbone(**inputs).logits
        plain = backbone(**inputs).logits
        peft_model = get_peft_model(
            backbone,
            PrefixTuningConfig(
                task_type=TASK_TYPES[family],
                num_virtual_tokens=5,
                token_dim=deep.width,
                num_layers=len(deep.layers),
                num_attention_heads=deep.heads,
            ),
        )
        set_peft_model_state_dict(peft_model, {"prompt_embeddings": deep.prefixes()})
        peft_model.eval()
        theirs = peft_model(**inputs).logits
    real = inputs["attention_mask"].bool() if family != "seq2seq" else torch.ones(ours.shape[:2], dtype=torch.bool)
    difference = (ours - theirs)[real].abs().max().item()
    print(f"{kind}: largest |PEFT - xlprompt| logit difference {difference:.3g}")
    assert difference < 1e-5
    assert (ours - plain)[real].abs().max() > 1e-3  # and the prefixes do something


@pytest.mark.parametrize("kind", ["xlm-roberta", "bert", "xglm", "bloom", "mt5", "llama", "gemma2"])
def test_the_injection_gives_the_same_logits_with_the_attention_kernels_a_gpu_uses(
    kind, stand_ins, world_dir, tmp_path
):
    """On a GPU, compute.place switches backbones built on transformers' attention interface to SDPA (the
    CPU loads them with eager attention); the prefixes enter through the module's cache and the mask, so
    both kernels must read them alike. The same switch, made here on the CPU, gives the same logits."""
    folder = stand_ins[kind]
    backbone, tokenizer = load_backbone(folder)
    data, _ = labelled_data(kind, folder, world_dir, tmp_path)
    batch = all_test_rows(kind, data, tokenizer)
    torch.manual_seed(5)
    model = DeepPromptedLM(backbone, DeepPrompt(backbone, 5, DeepPromptSettings()), [[5], [6]]).eval()
    args = (batch["input_ids"], batch["attention_mask"], batch["mask_index"], batch.get("token_type_ids"))
    # A row alone has no padding: SDPA then gets no mask from transformers (causality left to is_causal).
    real = int(batch["attention_mask"][0].sum())
    ids, mask, read_at, types = args
    alone = (ids[:1, :real], mask[:1, :real], read_at[:1], types[:1, :real] if types is not None else None)
    with torch.no_grad():
        eager, eager_alone = model(*args), model(*alone)
        switches = switches_to_sdpa(backbone)
        if switches:
            backbone.set_attn_implementation("sdpa")
        sdpa, sdpa_alone = model(*args), model(*alone)
    assert (eager_alone - sdpa_alone).abs().max().item() < 1e-5
    assert (eager_alone - eager[:1]).abs().max().item() < 1e-5  # and alone as in the padded batch
    assert backbone.config._attn_implementation == ("sdpa" if switches else "eager")
    # XGLM, BLOOM, mT5 and Gemma 2 (no SDPA in transformers 5) stay eager
    assert switches == (kind in ("xlm-roberta", "bert", "llama"))
    assert (eager - sdpa).abs().max().item() < 1e-5


@pytest.mark.parametrize("kind", ["xglm", "bloom", "mt5", *LLM_FAMILY])
def test_a_prefix_of_real_tokens_keys_and_values_reproduces_reading_those_tokens_first(kind, stand_ins, tmp_path):
    """A causal stack's keys and values of its first tokens do not depend on what follows: used as prefixes, they
    must give the logits of the text read after those tokens (positions, ALiBi and T5's relative bias included;
    rotary: the cached keys are rotated at positions 0..L-1 and the text's at L.., as a prefix of L places them).
    Independent of PEFT; mT5: its decoder's (layers of the decoder only), two layers deep."""
    folder = deeper(kind, stand_ins[kind], tmp_path / "deeper")
    backbone, tokenizer = load_backbone(folder)
    context = torch.tensor([[7, 11, 13, 17]])  # (1, L) any tokens
    text = tokenizer(["the cat sat on the mat and more", "a dog"], padding=True, return_tensors="pt")
    sites = attention_sites(backbone)
    layers = tuple(range(len(sites) // 2, len(sites))) if kind == "mt5" else ()
    # The context's per-layer keys and values, as each layer's cache receives them.
    from transformers import DynamicCache, EncoderDecoderCache

    with torch.no_grad():
        if kind == "mt5":
            encoder = backbone.encoder(input_ids=text["input_ids"][:1], attention_mask=text["attention_mask"][:1])
            cache = DynamicCache(config=backbone.config)
            both = EncoderDecoderCache(cache, DynamicCache(config=backbone.config))
            backbone.decoder(
                input_ids=context,
                encoder_hidden_states=encoder.last_hidden_state,
                encoder_attention_mask=text["attention_mask"][:1],
                cache=both,
                use_cache=True,
            )
        else:
            cache = backbone.base_model(input_ids=context, use_cache=True).cache
        chosen = [sites[i] for i in (layers or range(len(sites)))]
        grid = torch.stack(
            [
                torch.stack([cache.layers[j].keys[0], cache.layers[j].values[0]])  # (2, H, L, hd)
                for j in range(len(chosen))
            ]
        )  # (n, 2, H, L, hd)
        stored = grid.permute(3, 0, 1, 2, 4).reshape(context.shape[1], -1)  # (L, n x 2 x H x hd)
        deep = DeepPrompt(backbone, context.shape[1], DeepPromptSettings(layers=layers), stored=stored)
        if kind == "mt5":  # one text row: the decoder reads [context; tokens] against that row's encoding
            decoder = torch.tensor([[backbone.config.decoder_start_token_id, 21, 22]])
            ids, mask = text["input_ids"][:1], text["attention_mask"][:1]
            with deep.injected():
                ours = backbone(input_ids=ids, attention_mask=mask, decoder_input_ids=decoder).logits
            full = backbone(
                input_ids=ids, attention_mask=mask, decoder_input_ids=torch.cat([context, decoder], dim=1)
            ).logits[:, context.shape[1] :]
            real = torch.ones(ours.shape[:2], dtype=torch.bool)
        else:
            with deep.injected():
                ours = backbone(input_ids=text["input_ids"], attention_mask=text["attention_mask"]).logits
            rows = len(text["input_ids"])
            full = backbone(
                input_ids=torch.cat([context.expand(rows, -1), text["input_ids"]], dim=1),
                attention_mask=torch.cat(
                    [torch.ones(rows, context.shape[1], dtype=torch.long), text["attention_mask"]], dim=1
                ),
            ).logits[:, context.shape[1] :]
            real = text["attention_mask"].bool()
    difference = (ours - full)[real].abs().max().item()
    print(f"{kind}: largest |prefix of real tokens - tokens read first| logit difference {difference:.3g}")
    assert difference < 1e-5


@pytest.mark.parametrize("kind", ["xlm-roberta", "mt5"])
def test_only_the_configured_layers_attend_to_a_prefix(kind, stand_ins, tmp_path):
    """The attention weights' key length: L + S in prefixed layers, S elsewhere (mT5: its encoder's blocks,
    then its decoder's, two each)."""
    folder = deeper(kind, stand_ins[kind], tmp_path / "deeper")
    backbone, tokenizer = load_backbone(folder)
    text = tokenizer(["the cat sat on the mat and more", "a dog"], padding=True, return_tensors="pt")
    layers = (1, 2) if kind == "mt5" else (1,)
    torch.manual_seed(0)
    deep = DeepPrompt(backbone, 3, DeepPromptSettings(layers=layers))
    with torch.no_grad(), deep.injected():
        if kind == "mt5":
            out = backbone(**text, decoder_input_ids=torch.zeros(2, 1, dtype=torch.long), output_attentions=True)
            attentions = list(out.encoder_attentions) + list(out.decoder_attentions)
        else:
            attentions = list(backbone(**text, output_attentions=True).attentions)
    keys = [a.shape[-1] for a in attentions]
    queries = [a.shape[-2] for a in attentions]
    assert keys == [q + 3 if i in layers else q for i, q in enumerate(queries)], (keys, queries)


def test_a_killed_deep_prompt_run_resumes_from_its_checkpoint_to_the_same_artifact(
    world_dir, backbone_dir, tmp_path, monkeypatch
):
    cfg = TrainConfig(
        method="deep_prompt",
        prompt_length=4,
        deep_prompt={"reparameterization": True, "reparam_hidden": 8},
        **{**DEEP, "steps": 9},
    )
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "straight")

    train_killed_after_checkpoint(
        monkeypatch, 6, backbone_dir, world_dir / "topic", cfg, tmp_path / "resumed", tmp_path / "ckpt"
    )
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "resumed", tmp_path / "ckpt")
    name = f"{PREFIX_FOLDER}/adapter_model.safetensors"
    a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "resumed" / name)
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_deep_prompt_evaluated_with_other_prompts_scores_as_alone_and_leaves_theirs_as_they_are(
    stand_ins, world_dir, tmp_path
):
    """The evaluate stage shares one backbone between the prompts of a task: the deep prompt's prefixes enter only
    its own passes (before the input-level prompts' stacked ones here), and it needs the positions of its prefixes."""
    from xlprompt.analysis.prompt_metrics import evaluate_prompts

    folder = stand_ins["xlm-roberta"]
    data, _ = labelled_data("xlm-roberta", folder, world_dir, tmp_path)
    prompts = []
    for method in ("deep_prompt", "spt", "untrained"):
        train_prompt(
            folder, data, TrainConfig(method=method, prompt_length=4, **{**DEEP, "steps": 3}), tmp_path / method
        )
        prompts.append(tmp_path / method)
    together = evaluate_prompts(prompts, folder, data, None)
    assert [doc["method"] for doc in together] == ["deep_prompt", "spt", "untrained"]
    assert together[0]["rows"] == evaluate_prompts(prompts[:1], folder, data, None)[0]["rows"]
    # spt and untrained run stacked in one pass, with or without the deep prompt before them.
    assert [doc["rows"] for doc in together[1:]] == [
        doc["rows"] for doc in evaluate_prompts(prompts[1:], folder, data, None)
    ]


# Config checks: unknown keys, layers the backbone lacks, a family whose attention takes no prefix: refused before
# any job, naming why.
BAD = [
    (
        "unknown-key",
        mutate("deep_prompt", {"prefix_length": 8}),
        r"deep_prompt: unknown key\(s\) \['prefix_length'\]; allowed: \['layers', 'reparam_hidden', "
        r"'reparameterization'\]",
    ),
    (
        "layers-not-all-or-a-list",
        mutate("deep_prompt", {"layers": "some"}),
        r"deep_prompt.layers: 'some' is not allowed; allowed: all \(default\), or a list of distinct layers",
    ),
    (
        "negative-layer",
        mutate("deep_prompt", {"layers": [-1]}),
        r"deep_prompt.layers: \[-1\] is not allowed; allowed: all",
    ),
    ("hidden-zero", mutate("deep_prompt", {"reparam_hidden": 0}), r"deep_prompt.reparam_hidden: 0 must be >= 1"),
    (
        "layer-beyond-the-backbone",
        mutate("deep_prompt", {"layers": [0, 1]}),
        r"deep_prompt.layers: \[1\] outside the 1 layers of xlm-roberta \(the generated backbone\); "
        r"allowed: 0..0, or all",
    ),
    (
        "variant-of-deep-prompt",
        mutate("variants", {"deep_r": {"method": "deep_prompt"}}),
        r"variants.deep_r.method: 'deep_prompt' cannot be varied",
    ),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_deep_prompt_settings_are_rejected_with_a_clear_message(change, message):
    cfg = change(copy.deepcopy(smoke()))
    cfg["methods"] = ["spt", "deep_prompt"]
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg, SCHEMA)


def test_deep_prompt_on_mt5_counts_the_encoders_and_the_decoders_layers():
    cfg = paper()
    cfg["backbone"]["hub"], cfg["methods"] = "google/mt5-base", ["spt", "deep_prompt"]
    cfg["deep_prompt"] = {"layers": [0, 12, 23]}
    validate_config(cfg, SCHEMA)
    cfg["deep_prompt"] = {"layers": [24]}
    with pytest.raises(
        ConfigError,
        match=r"deep_prompt.layers: \[24\] outside the 24 layers of mt5 \(google/mt5-base\) "
        r"\(the encoder's blocks, then the decoder's\); allowed: 0..23, or all",
    ):
        validate_config(cfg, SCHEMA)


def test_a_backbone_whose_attention_takes_no_prefix_is_refused_with_the_reason(monkeypatch):
    monkeypatch.setattr(checks, "PREFIX_ATTENTION", {k: v for k, v in checks.PREFIX_ATTENTION.items() if k != "bloom"})
    cfg = paper()
    cfg["backbone"]["hub"], cfg["methods"] = "bigscience/bloom-560m", ["spt", "deep_prompt"]
    with pytest.raises(
        ConfigError,
        match=r"methods: deep_prompt puts key/value prefixes into every layer's "
        r"self-attention, and the attention of bloom \(bigscience/bloom-560m\) takes "
        r"none in xlprompt",
    ):
        validate_config(cfg, SCHEMA)
    cfg["methods"] = ["spt", "lora"]  # other methods are unaffected
    validate_config(cfg, SCHEMA)


def test_deep_prompt_passes_the_checks_where_it_applies():
    assert set(HUB_PREFIX_LAYERS) == set(HUB_MODEL_TYPES)  # every pinned Hub backbone's depth is known
    assert set(MODEL_TYPES) == set(PREFIX_ATTENTION)  # every supported model type takes prefixes
    for hub in HUB_MODEL_TYPES:
        cfg = paper()
        cfg["backbone"]["hub"], cfg["methods"] = hub, ["spt", "deep_prompt"]
        cfg["deep_prompt"] = {"reparameterization": True, "reparam_hidden": 64, "layers": [0, 1]}
        cfg["method_overrides"] = {"deep_prompt": {"lr": 5e-3}}
        validate_config(cfg, SCHEMA)
    cfg = smoke()
    cfg["methods"], cfg["deep_prompt"] = ["spt", "deep_prompt"], {"layers": "all"}
    cfg["prompt"].update(reparameterization=True, position="prefix")  # the input prompt's: not deep_prompt's
    validate_config(cfg, SCHEMA)
