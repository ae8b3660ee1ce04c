"""Comparison methods that train part of the backbone next to the prompt: lora (through PEFT) and
bitfit. Frozen means frozen outside each method's trainable set; the artifact holds only what
trained, rebuilds the model exactly, and lora's adapter runs through PEFT's own code path."""

from __future__ import annotations

import copy
import re

import pytest
import torch
from conftest import single_token_words, train_killed_after_checkpoint, with_label_words
from safetensors.torch import load_file
from test_config import SCHEMA, mutate, paper, smoke
from tiny_models import ALL, LLM_FAMILY

from xlprompt.config.checks import validate_config
from xlprompt.data.contract import load_labels, load_split
from xlprompt.data.encoding import encode_split
from xlprompt.methods import training as train_module
from xlprompt.methods.adapters import LORA_FOLDER, bias_names, lora_targets
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.ltp import module_kind
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.families import ARCHITECTURES_BY_TYPE, LORA_MODULES, LORA_TARGETS, auto_class
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import BitFitSettings, ConfigError, LoraSettings, TrainConfig, trains_backbone

FAST = {
    "steps": 6,
    "batch_size": 8,
    "eval_every": 3,
    "checkpoint_every": 3,
    "lr": 0.3,
    "backbone_lr": 1e-2,
    "max_length": 48,
    "seed": 2,
}
TASK = {"xlm-roberta": "nli", "bert": "nli", "xglm": "nli", "bloom": "topic", "mt5": "nli"} | dict.fromkeys(
    LLM_FAMILY, "nli"
)  # nli: pairs


def labelled_data(kind: str, folder, world_dir, tmp_path):
    """The kind's task with label words its tokenizer reads as one token each."""
    _, tokenizer = load_backbone(folder)
    task = TASK[kind]
    n_labels = len(load_labels(world_dir / task).names)
    return with_label_words(
        world_dir / task, tmp_path / task, single_token_words(tokenizer, world_dir, ALL[kind], n_labels)
    ), tokenizer


def test_lora_and_bitfit_change_backbone_weights_so_they_train_a_job_each():
    assert trains_backbone("lora")
    assert trains_backbone("bitfit")
    assert TrainConfig(method="lora", prompt_length=0).trains_backbone
    assert TrainConfig(method="bitfit", prompt_length=0).trains
    with pytest.raises(ValueError, match="prompt_length must be >= 1 for method spt"):
        TrainConfig(method="spt", prompt_length=0)
    with pytest.raises(ValueError, match="lora rank must be >= 1"):
        LoraSettings(rank=0)


@pytest.mark.parametrize("kind", list(ALL))
def test_lora_modules_and_defaults_are_the_stand_ins_real_module_names(kind, stand_ins):
    """LORA_MODULES lists exactly the linear modules inside each architecture's layers (heads and
    embeddings aside); the default targets are among them and equal PEFT's own defaults where it has some."""
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as PEFT_DEFAULTS

    backbone, _ = load_backbone(stand_ins[kind])
    model_type = backbone.config.model_type
    linear = {
        name.split(".")[-1]
        for name, module in backbone.named_modules()
        if isinstance(module, torch.nn.Linear) and module_kind(name + ".weight") not in ("lm_head", "other")
    }
    assert linear == set(LORA_MODULES[model_type])
    assert set(LORA_TARGETS[model_type]) <= linear
    assert lora_targets(backbone, LoraSettings()) == list(LORA_TARGETS[model_type])
    if model_type in PEFT_DEFAULTS:
        assert list(LORA_TARGETS[model_type]) == PEFT_DEFAULTS[model_type]


@pytest.mark.parametrize("kind", list(ALL))
def test_bitfit_takes_every_bias_outside_the_lm_head_and_refuses_a_model_without_biases(kind, stand_ins):
    backbone, _ = load_backbone(stand_ins[kind])
    every = [name for name, _ in backbone.named_parameters() if name.endswith(".bias")]
    why_not = ARCHITECTURES_BY_TYPE[backbone.config.model_type].no_biases
    if why_not:  # mT5, Llama, Mistral, Qwen3, Gemma: refused with the record's reason
        assert every == []
        with pytest.raises(ValueError, match=re.escape(f"bitfit trains only bias terms, and {why_not}")):
            bias_names(backbone)
        return
    names = bias_names(backbone)
    if kind == "qwen2":  # biases in q, k and v only; RMSNorm has none
        assert names == every
        assert {name.split(".")[-2] for name in names} == {"q_proj", "k_proj", "v_proj"}
        return
    assert names == [name for name in every if not name.startswith(("lm_head.", "cls."))]
    assert any(".query" in n or "q_proj" in n or "query_key_value" in n for n in names)  # attention
    assert any("LayerNorm" in n or "layer_norm" in n or "layernorm" in n for n in names)
    assert bias_names(backbone, BitFitSettings(lm_head=True)) == every


def capture_training(monkeypatch) -> dict:
    """Keep hold of the prompted model as training writes it, and of LoRA's matrices as they start."""
    seen: dict = {}
    write, attach = train_module.write_artifact, train_module.attach_lora

    def spy_write(out, model, *args, **kwargs):
        seen["model"] = model
        return write(out, model, *args, **kwargs)

    def spy_attach(backbone, settings):
        adapter = attach(backbone, settings)
        seen["lora_init"] = {n: p.detach().clone() for n, p in backbone.named_parameters() if "lora_" in n}
        return adapter

    monkeypatch.setattr(train_module, "write_artifact", spy_write)
    monkeypatch.setattr(train_module, "attach_lora", spy_attach)
    return seen


def original_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A LoRA-adapted backbone's own weights under their original names (PEFT keeps them as base_layer)."""
    return {name.replace(".base_layer.", "."): value for name, value in state.items() if "lora_" not in name}


CASES = [("lora", kind) for kind in ("xlm-roberta", "xglm", "bloom", "mt5", *LLM_FAMILY)] + [
    ("bitfit", kind) for kind in ("xlm-roberta", "xglm", "bloom", "qwen2")
]


@pytest.mark.parametrize(("method", "kind"), CASES)
def test_method_changes_only_its_trainable_set_and_its_artifact_rebuilds_the_trained_model(
    method, kind, stand_ins, world_dir, tmp_path, monkeypatch
):
    folder = stand_ins[kind]
    data, tokenizer = labelled_data(kind, folder, world_dir, tmp_path)
    seen = capture_training(monkeypatch)
    cfg = TrainConfig(method=method, prompt_length=4, **FAST)
    summary = train_prompt(folder, data, cfg, tmp_path / method)
    trained = seen["model"]
    theta0 = load_file(folder / "model.safetensors")
    state = trained.backbone.state_dict()

    # Outside the trainable set: every entry of every original weight bit-identical.
    own = original_names(state)
    expected = set(bias_names(trained.backbone)) if method == "bitfit" else set()
    for name, before in theta0.items():
        if name in expected:
            continue
        assert torch.equal(own[name], before), name
    # The trainable set moved: bitfit's biases (but attention keys' biases: softmax ignores a shift shared by
    # all keys, so their gradient is exactly 0), LoRA's A and B (B starts at zero; A moves from step 2).
    if method == "bitfit":
        moved = [n for n in expected if not torch.equal(own[n], theta0[n])]
        still = sorted(expected - set(moved))
        assert all(n.endswith(("self.key.bias", "k_proj.bias")) for n in still), still
        assert len(moved) >= len(expected) - 1
    else:
        lora = {n: p for n, p in state.items() if "lora_" in n}
        assert lora
        assert set(lora) == set(seen["lora_init"])
        still = sorted(n for n in lora if torch.equal(lora[n], seen["lora_init"][n]))
        # mT5's decoder reads one position (the start token), whose self-attention weighs that position by 1
        # whatever its query: the query's gradient is exactly 0.
        assert all(n.startswith("decoder.block.0.layer.0.SelfAttention.q.") for n in still), still
        assert all(p.ne(0).any() for n, p in lora.items() if "lora_B" in n and n not in still)
    tensors = load_file(tmp_path / method / "prompt.safetensors")
    assert not torch.equal(tensors["prompt"], tensors["prompt_init"])  # the prompt trains too

    # Only what trained is in the artifact; meta.json says how much of a checkpoint and of the backbone it is.
    meta = read_json(tmp_path / method / "meta.json")
    if method == "bitfit":
        assert {k[len("bitfit.") :] for k in tensors if k.startswith("bitfit.")} == expected
        assert not (tmp_path / method / LORA_FOLDER).exists()
    else:
        assert not any(k.startswith("bitfit.") for k in tensors)
        assert {p.name for p in (tmp_path / method / LORA_FOLDER).iterdir()} >= {
            "adapter_config.json",
            "adapter_model.safetensors",
        }
        adapter = load_file(tmp_path / method / LORA_FOLDER / "adapter_model.safetensors")
        assert sum(t.numel() for t in adapter.values()) == sum(t.numel() for t in seen["lora_init"].values())
    files = [tmp_path / method / name for name in meta["files_sha256"]]
    assert meta["artifact_bytes"] == sum(f.stat().st_size for f in files)
    assert meta["artifact_share"] == meta["artifact_bytes"] / meta["full_checkpoint_bytes"] < 1
    backbone_trained = (
        sum(theta0[n].numel() for n in expected)
        if method == "bitfit"
        else sum(t.numel() for t in seen["lora_init"].values())
    )
    assert (
        meta["trainable_parameters"]
        == summary["trainable_parameters"]
        == 4 * trained.prompt.embedding.shape[1] + backbone_trained
    )
    assert meta["backbone_parameters"] == sum(
        p.numel() for n, p in trained.backbone.named_parameters() if "lora_" not in n
    )
    assert meta["trainable_share"] == pytest.approx(meta["trainable_parameters"] / meta["backbone_parameters"])
    assert meta["config"]["lora"]["rank"] == 8
    assert not meta["peft_export"]["exported"]

    # The reloaded artifact scores every test row exactly as the model did at the end of training.
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, ALL[kind])
    batch = test.batch(list(range(len(test))), tokenizer.pad_token_id)
    reloaded, _ = load_trained(tmp_path / method, folder)
    trained.eval()
    with torch.no_grad():
        assert torch.equal(reloaded.score_batch(batch), trained.score_batch(batch))
    # A shared backbone is never adapted in place: the artifact brings its own copy.
    shared = load_backbone(folder)
    assert load_trained(tmp_path / method, folder, shared=shared)[0].backbone is not shared[0]


def peft_logits(peft_model, kind: str, batch: dict[str, torch.Tensor], verbalizer: torch.Tensor) -> torch.Tensor:
    """Label logits (B, n_labels) from PEFT's forward on the token ids, read where xlprompt reads them."""
    rows = torch.arange(batch["input_ids"].shape[0])
    inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]}
    if "token_type_ids" in batch:
        inputs["token_type_ids"] = batch["token_type_ids"]  # BERT's pairs: segment B is type 1
    if ALL[kind] == "seq2seq":
        start = torch.full((len(rows), 1), peft_model.get_base_model().config.decoder_start_token_id)
        logits = peft_model(**inputs, decoder_input_ids=start).logits[:, 0]
    else:
        logits = peft_model(**inputs).logits
        logits = logits[rows, batch["mask_index"] - (1 if ALL[kind] == "causal_lm" else 0)]
    return logits[:, verbalizer]


LARGEST_DIFFERENCE: dict[str, float] = {}


@pytest.mark.parametrize("kind", list(ALL))
def test_lora_adapter_loaded_by_peft_gives_xlprompts_logits(kind, stand_ins, world_dir, tmp_path):
    """Without a prompt (prompt_length 0, so that PEFT alone reproduces the model): the artifact's lora/
    loaded with PeftModel.from_pretrained on a fresh backbone, run on the token ids through PEFT's
    forward, gives xlprompt's label logits on every test row."""
    folder = stand_ins[kind]
    data, tokenizer = labelled_data(kind, folder, world_dir, tmp_path)
    out = tmp_path / "lora"
    train_prompt(folder, data, TrainConfig(method="lora", prompt_length=0, **FAST), out)
    assert not load_file(out / "prompt.safetensors")["prompt"].numel()
    config = read_json(out / LORA_FOLDER / "adapter_config.json")
    assert config["peft_type"] == "LORA"
    assert sorted(config["target_modules"]) == sorted(LORA_TARGETS[load_backbone(folder)[0].config.model_type])

    from peft import PeftModel

    peft_model = PeftModel.from_pretrained(auto_class(ALL[kind]).from_pretrained(folder), str(out / LORA_FOLDER))
    peft_model.eval()
    ours, _ = load_trained(out, folder)
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, ALL[kind])
    batch = test.batch(list(range(len(test))), tokenizer.pad_token_id)
    with torch.no_grad():
        mine = ours.score_batch(batch)
        theirs = peft_logits(peft_model, kind, batch, ours.verbalizer_ids)
    LARGEST_DIFFERENCE[kind] = (theirs - mine).abs().max().item()
    print(f"{kind}: largest |PEFT - xlprompt| label logit difference {LARGEST_DIFFERENCE[kind]:.3g}")
    torch.testing.assert_close(theirs, mine, atol=1e-5, rtol=0)
    assert theirs.argmax(-1).tolist() == mine.argmax(-1).tolist()
    # ...and the adapter matters: the backbone without it scores differently.
    with torch.no_grad(), peft_model.disable_adapter():
        assert not torch.allclose(peft_logits(peft_model, kind, batch, ours.verbalizer_ids), mine, atol=1e-6)


# Config checks: the schema refuses unknown keys of the method blocks; the checks refuse a method where it
# cannot apply, naming why, before any job.
BAD = [
    (
        "lora-unknown-key",
        mutate("lora", {"rank": 4, "scaling": 2}),
        r"lora: unknown key\(s\) \['scaling'\]; allowed: \['alpha', 'dropout', 'rank', 'target_modules'\]",
    ),
    ("lora-rank-zero", mutate("lora", {"rank": 0}), r"lora.rank: 0 must be >= 1"),
    (
        "lora-target-not-a-module",
        mutate("lora", {"target_modules": ["q_proj"]}),
        r"lora.target_modules: \['q_proj'\] are not linear modules of the layers of xlm-roberta \(the generated "
        r"backbone\); allowed: \['query', 'key', 'value', 'dense'\]",
    ),
    ("bitfit-unknown-key", mutate("bitfit", {"lm_heads": True}), r"bitfit: unknown key\(s\) \['lm_heads'\]"),
    (
        "variant-of-lora-with-an-unknown-key",
        mutate("variants", {"lora_r4": {"method": "lora", "rank": 4}}),
        r"variants.lora_r4: unknown key\(s\) \['rank'\]",
    ),
]


@pytest.mark.parametrize(("change", "message"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_method_settings_are_rejected_with_a_clear_message(change, message):
    cfg = change(copy.deepcopy(smoke()))
    cfg["methods"] = ["spt", "lora", "bitfit"]
    with pytest.raises(ConfigError, match=message):
        validate_config(cfg, SCHEMA)


def test_bitfit_on_mt5_is_refused_with_the_reason():
    cfg = paper()
    cfg["backbone"]["hub"], cfg["methods"] = "google/mt5-base", ["spt", "lora", "bitfit"]
    with pytest.raises(
        ConfigError,
        match=r"methods: bitfit trains only bias terms, and mT5's attention, feed-forward "
        r"and layer norms have no bias terms \(backbone mt5 \(google/mt5-base\)\): "
        r"nothing would train; use lora, ltp or full_ft",
    ):
        validate_config(cfg, SCHEMA)
    cfg["variants"], cfg["methods"] = {"bias_only": {"method": "bitfit"}}, ["spt", "bias_only"]  # under another name
    with pytest.raises(ConfigError, match="bitfit trains only bias terms"):
        validate_config(cfg, SCHEMA)


def test_lora_and_bitfit_pass_the_checks_where_they_apply():
    """Every pinned Hub backbone takes lora with its default targets; bitfit those with biases (not mT5, Llama,
    Mistral, Qwen3, Gemma: test_a_model_without_biases_refuses_bitfit_in_the_checks); overrides and variants too."""
    from xlprompt.models.families import HUB_MODEL_TYPES, NO_BIASES

    for hub, model_type in HUB_MODEL_TYPES.items():
        cfg = paper()
        cfg["backbone"]["hub"] = hub
        cfg["methods"] = ["spt", "lora", "lora_wide"] + ([] if model_type in NO_BIASES else ["bitfit"])
        cfg["variants"] = {"lora_wide": {"method": "lora", "reparameterization": True}}
        cfg["lora"] = {"rank": 4, "alpha": 8, "dropout": 0.1, "target_modules": list(LORA_MODULES[model_type])}
        cfg["method_overrides"] = {"lora": {"backbone_lr": 5e-4}, "bitfit": {"backbone_lr": 1e-3}}
        validate_config(cfg, SCHEMA)


def test_a_model_without_biases_refuses_bitfit_in_the_checks():
    """Before any download: each pinned Hub backbone without bias terms, with the reason its record gives."""
    from xlprompt.models.families import HUB_MODEL_TYPES, NO_BIASES

    refused = {hub: model_type for hub, model_type in HUB_MODEL_TYPES.items() if model_type in NO_BIASES}
    assert set(refused.values()) == {"mt5", "llama", "mistral", "qwen3", "gemma2", "gemma3_text"}
    for hub, model_type in refused.items():
        cfg = paper()
        cfg["backbone"]["hub"], cfg["methods"] = hub, ["spt", "bitfit"]
        with pytest.raises(ConfigError, match=re.escape(f"{NO_BIASES[model_type]} (backbone {model_type} ({hub}))")):
            validate_config(cfg, SCHEMA)


@pytest.mark.parametrize("method", ["lora", "bitfit"])
def test_a_killed_run_resumes_from_its_checkpoint_to_the_same_artifact(
    method, world_dir, backbone_dir, tmp_path, monkeypatch
):
    """The trained backbone entries (LoRA's matrices, the biases) are checkpointed with the prompt."""
    cfg = TrainConfig(method=method, prompt_length=4, **{**FAST, "steps": 9})
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "straight")

    train_killed_after_checkpoint(
        monkeypatch, 6, backbone_dir, world_dir / "topic", cfg, tmp_path / "resumed", tmp_path / "ckpt"
    )
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "resumed", tmp_path / "ckpt")
    files = ["prompt.safetensors"] + ([f"{LORA_FOLDER}/adapter_model.safetensors"] if method == "lora" else [])
    for name in files:
        a, b = load_file(tmp_path / "straight" / name), load_file(tmp_path / "resumed" / name)
        assert a.keys() == b.keys(), name
        assert all(torch.equal(a[k], b[k]) for k in a), name


def test_every_method_records_what_it_stores_and_trains_against_the_full_model(stand_ins, world_dir, tmp_path):
    """The same fields for the methods it compares with: spt stores and trains its prompt only; full_ft
    stores a whole checkpoint (backbone/) and trains every weight."""
    folder = stand_ins["xlm-roberta"]
    data, _ = labelled_data("xlm-roberta", folder, world_dir, tmp_path)
    metas = {}
    for method in ("spt", "full_ft"):
        train_prompt(
            folder, data, TrainConfig(method=method, prompt_length=4, **{**FAST, "steps": 2}), tmp_path / method
        )
        metas[method] = read_json(tmp_path / method / "meta.json")
    prompt = 4 * load_backbone(folder)[0].config.hidden_size
    assert metas["spt"]["trainable_parameters"] == prompt
    assert metas["spt"]["artifact_share"] < 0.1 < 1 < metas["full_ft"]["artifact_share"]
    assert "backbone/model.safetensors" in metas["full_ft"]["files_sha256"]
    assert metas["full_ft"]["trainable_parameters"] == metas["full_ft"]["backbone_parameters"] + prompt
