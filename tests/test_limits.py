"""Limits checked before compute: position tables per architecture, and what each family cannot do.

Tiny models of the real architectures, built from configs: the limit the check computes is exactly
where the model's own forward pass stops working (or, without a table, there is none).
"""

from __future__ import annotations

import json

import pytest
import torch
from conftest import single_token_words, with_label_words
from tiny_models import FAMILY
from transformers import (
    AutoTokenizer,
    BertConfig,
    BertModel,
    BloomConfig,
    BloomModel,
    MT5Config,
    MT5EncoderModel,
    RobertaConfig,
    RobertaModel,
    XGLMConfig,
    XGLMModel,
    XLMRobertaConfig,
    XLMRobertaModel,
)

from xlprompt.data.hub import HUB_BACKBONES
from xlprompt.models.families import HUB_MODEL_TYPES, MODEL_TYPES
from xlprompt.models.limits import check_folder_positions, check_positions, position_limit

SMALL = {"vocab_size": 50, "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32}
TABLED = {
    "xlm-roberta": lambda: XLMRobertaModel(XLMRobertaConfig(**SMALL, max_position_embeddings=12, pad_token_id=1)),
    "roberta": lambda: RobertaModel(RobertaConfig(**SMALL, max_position_embeddings=12, pad_token_id=1)),
    "bert": lambda: BertModel(BertConfig(**SMALL, max_position_embeddings=12)),
}
UNLIMITED = {
    "bloom": lambda: BloomModel(BloomConfig(vocab_size=50, hidden_size=16, n_layer=1, n_head=2)),
    "mt5": lambda: MT5EncoderModel(MT5Config(vocab_size=50, d_model=16, d_ff=32, d_kv=8, num_layers=1, num_heads=2)),
}


def run(model, tokens: int) -> None:
    model.eval()
    with torch.no_grad():  # inputs_embeds, as the prompted model feeds them
        model(
            inputs_embeds=torch.zeros(
                1, tokens, model.config.hidden_size if hasattr(model.config, "hidden_size") else model.config.d_model
            )
        )


@pytest.mark.parametrize(("kind", "limit"), [("xlm-roberta", 10), ("roberta", 10), ("bert", 12)])
def test_the_limit_is_where_a_learned_position_table_ends(kind, limit):
    model = TABLED[kind]()
    assert position_limit(model) == limit  # XLM-R/RoBERTa: 12 rows less padding_idx + 1
    run(model, limit)
    with pytest.raises((IndexError, RuntimeError)):
        run(model, limit + 1)
    check_positions(model, limit - 4, 4)
    with pytest.raises(
        ValueError,
        match=rf"max_length {limit - 3} \+ prompt length 4 = {limit + 1} tokens, more than "
        rf"the {limit} positions of this {kind} backbone \(max_position_embeddings 12\)",
    ):
        check_positions(model, limit - 3, 4)


def test_xglm_is_limited_to_the_positions_it_was_trained_on():
    """Sinusoidal positions (offset 2 inside the module) extend without an error: the trained length is the limit."""
    model = XGLMModel(
        XGLMConfig(vocab_size=50, d_model=16, ffn_dim=32, num_layers=1, attention_heads=2, max_position_embeddings=12)
    )
    table = model.embed_positions.weights.shape[0]
    run(model, 12)
    assert model.embed_positions.weights.shape[0] == table == 12 + 2  # room for 12 tokens as built
    run(model, 13)
    assert model.embed_positions.weights.shape[0] > table  # regrown silently: positions it never saw
    assert position_limit(model) == 12
    with pytest.raises(ValueError, match="13 tokens, more than the 12 positions of this xglm backbone"):
        check_positions(model, 9, 4)


@pytest.mark.parametrize("kind", list(UNLIMITED))
def test_alibi_and_relative_positions_have_no_limit(kind):
    model = UNLIMITED[kind]()
    assert position_limit(model) is None
    run(model, 600)
    check_positions(model, 100_000, 100)


def test_a_model_folder_is_checked_from_its_config(tmp_path):
    TABLED["xlm-roberta"]().save_pretrained(tmp_path)
    check_folder_positions(tmp_path, 6, 4)
    with pytest.raises(ValueError, match="11 tokens, more than the 10 positions"):
        check_folder_positions(tmp_path, 7, 4)
    check_folder_positions(tmp_path / "missing", 7, 4)  # left to the loader, which names what is missing


def test_every_pinned_hub_backbone_has_a_known_family():
    assert set(HUB_MODEL_TYPES) == set(HUB_BACKBONES)
    assert set(HUB_MODEL_TYPES.values()) <= set(MODEL_TYPES)


@pytest.fixture(scope="module")
def tiny_models(stand_ins):
    return stand_ins


@pytest.mark.parametrize(
    ("kind", "position"),
    [("xlm-roberta", ""), ("bert", ""), ("xglm", "suffix"), ("xglm", "prefix"), ("bloom", ""), ("mt5", "")],
)
def test_task_mode_activations_are_read_where_each_family_predicts_the_label(
    kind, position, tiny_models, world_dir, tmp_path
):
    """ON's mode task on every family: activations at the mask slot (masked LMs), at the last position
    before the label word (causal, prompt after or before the text), at the first decoder position
    (mT5), equal to a forward pass laid out by hand; and the stage runs in both modes."""
    from xlprompt.analysis.activations import collect
    from xlprompt.analysis.neurons import record_ffn, task_input_activations
    from xlprompt.methods.artifacts import load_trained
    from xlprompt.methods.training import train_prompt
    from xlprompt.models.tasks import TaskSet
    from xlprompt.runtime.settings import TrainConfig

    prompt, root = tmp_path / "prompt", tmp_path / "data"
    tokenizer = AutoTokenizer.from_pretrained(tiny_models[kind])
    nli = with_label_words(world_dir / "nli", root / "nli", single_token_words(tokenizer, world_dir, FAMILY[kind], 3))
    train_prompt(
        tiny_models[kind],
        nli,
        TrainConfig(prompt_length=4, steps=2, batch_size=4, eval_every=2, max_length=48, position=position),
        prompt,
    )
    model, tokenizer = load_trained(prompt, tiny_models[kind])
    data = TaskSet.load([nli]).encode(tokenizer, "en", "validation", 48, family=FAMILY[kind]).head(1)
    ours = task_input_activations(model, data, tokenizer.pad_token_id)  # (layers, ffn)

    backbone, vectors = model.backbone, model.prompt().detach().unsqueeze(0)  # (1, L, d)
    ids = torch.tensor([data.input_ids[0]])
    text = backbone.get_input_embeddings()(ids)
    types = {"token_type_ids": torch.tensor([[0] * 4 + data.token_type_ids[0]])} if data.token_type_ids else {}
    with torch.no_grad(), record_ffn(backbone) as outputs:
        if FAMILY[kind] == "seq2seq":
            backbone(inputs_embeds=torch.cat([vectors, text], 1), decoder_input_ids=torch.tensor([[0]]))
            at = 0
        elif model.position == "suffix":
            backbone.base_model(inputs_embeds=torch.cat([text, vectors], 1))
            at = ids.shape[1] + 4 - 1
        else:
            backbone.base_model(inputs_embeds=torch.cat([vectors, text], 1), **types)
            at = 4 + (data.mask_index[0] if FAMILY[kind] == "masked_lm" else ids.shape[1] - 1)
    torch.testing.assert_close(ours, torch.stack([out[0, at] for out in outputs]), atol=1e-5, rtol=1e-4)
    for mode in ("alone", "task"):
        assert collect(tiny_models[kind], [("nli", prompt)], mode=mode, data_root=root)


def test_train_prompt_stage_checks_the_position_table_before_loading(backbone_dir, world_dir, tmp_path):
    """The tiny backbone has 48 + 16 + 2 position rows: 64 tokens of prompt and text."""
    from xlprompt.stages import train_prompt

    with pytest.raises(ValueError, match=r"max_length 61 \+ prompt length 4 = 65 tokens, more than the 64 positions"):
        train_prompt.main(
            [
                "--backbone",
                str(backbone_dir),
                "--data",
                str(world_dir / "topic"),
                "--out",
                str(tmp_path / "prompt"),
                "--max-length",
                "61",
                "--prompt-length",
                "4",
                "--steps",
                "1",
            ]
        )
    assert not (tmp_path / "prompt").exists()


def test_finetuning_cuts_texts_at_the_position_table_rather_than_failing(backbone_dir, world_dir, tmp_path):
    """LTP's fine-tuning has no prompt: a max_length beyond the table is cut to it (64 of 66 rows)."""
    from xlprompt.stages import finetune_mlm

    finetune_mlm.main(
        [
            "--backbone",
            str(backbone_dir),
            "--text",
            str(world_dir / "corpus" / "en.txt"),
            "--out",
            str(tmp_path / "mlm"),
            "--steps",
            "1",
            "--batch-size",
            "4",
            "--max-length",
            "100",
        ]
    )
    assert json.loads((tmp_path / "mlm" / "meta.json").read_text())["config"]["max_length"] == 64
