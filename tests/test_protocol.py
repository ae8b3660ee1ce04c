"""The papers' protocols as named options: true few-shot model selection (Perez et al. 2021), the SPT
authors' full-vocabulary loss, and SPoT's init from the most frequent tokens."""

from __future__ import annotations

from collections import Counter

import pytest
import torch
from safetensors.torch import load_file

from xlprompt.data.contract import load_split
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.trainable import frequent_tokens
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.predict import predict
from xlprompt.models.prompting import label_loss
from xlprompt.models.tasks import TaskSet
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import TrainConfig

FAST = {"prompt_length": 4, "steps": 6, "batch_size": 8, "eval_every": 2, "lr": 0.3, "max_length": 48, "seed": 5}


def validation_labels(data_dir, ids: list[str]) -> Counter:
    frame = load_split(data_dir, "en", "validation").set_index("id")
    return Counter(int(frame.loc[i, "label"]) for i in ids)


@pytest.mark.parametrize(("selection", "per_class"), [("few_shot", 2), ("full_validation", None)])
def test_few_shot_selection_sees_as_many_validation_examples_per_class_as_training(
    selection, per_class, world_dir, backbone_dir, tmp_path
):
    out = tmp_path / selection
    summary = train_prompt(
        backbone_dir, world_dir / "topic", TrainConfig(**FAST, train_per_class=2, selection=selection), out
    )
    meta = read_json(out / "meta.json")
    seen = validation_labels(world_dir / "topic", meta["validation"]["ids"])
    everything = Counter(load_split(world_dir / "topic", "en", "validation")["label"].astype(int))
    assert seen == (Counter(dict.fromkeys(everything, per_class)) if per_class else everything)
    assert summary["validation_examples"] == sum(seen.values())
    assert meta["validation"]["selection"] == selection
    assert "validation" in meta["inputs_sha256"]  # the validation file is part of the checkpoint fingerprint


def test_the_few_shot_validation_sample_depends_on_the_seed_and_is_stratified(world_dir, backbone_dir, tmp_path):
    ids = {}
    for seed in (1, 2):
        train_prompt(
            backbone_dir,
            world_dir / "topic",
            TrainConfig(**{**FAST, "seed": seed, "steps": 2}, train_per_class=3),
            tmp_path / str(seed),
        )
        ids[seed] = read_json(tmp_path / str(seed) / "meta.json")["validation"]["ids"]
        assert set(validation_labels(world_dir / "topic", ids[seed]).values()) == {3}
    assert ids[1] != ids[2]


def test_last_step_selection_keeps_the_final_prompt(world_dir, backbone_dir, tmp_path):
    summary = train_prompt(
        backbone_dir, world_dir / "topic", TrainConfig(**FAST, selection="last_step"), tmp_path / "last"
    )
    rows = (tmp_path / "last" / "train_log.jsonl").read_text().splitlines()
    assert summary["best_step"] == FAST["steps"]
    assert len(rows) == FAST["steps"] // FAST["eval_every"]


def test_vocabulary_loss_is_the_gold_words_negative_log_probability_under_the_whole_vocabulary(
    world_dir, backbone_dir, tmp_path
):
    out = tmp_path / "vocab"
    summary = train_prompt(backbone_dir, world_dir / "topic", TrainConfig(**FAST, loss="vocabulary"), out)
    model, tokenizer = load_trained(out, backbone_dir)
    assert model.loss == "vocabulary"
    dev = TaskSet.load([world_dir / "topic"]).encode(tokenizer, "en", "validation", 48, family="masked_lm")
    batch = dev.batch(list(range(len(dev))), tokenizer.pad_token_id)
    with torch.no_grad():
        scores = model.score_batch(batch)
        # By hand: the backbone's full output at <mask> after the prompt, softmax over every token.
        embeds = torch.cat(
            [model.prompt().expand(len(dev), -1, -1), model.backbone.get_input_embeddings()(batch["input_ids"])], dim=1
        )
        mask = torch.cat([torch.ones(len(dev), 4, dtype=torch.long), batch["attention_mask"]], dim=1)
        logits = model.backbone(inputs_embeds=embeds, attention_mask=mask).logits
        at = logits[torch.arange(len(dev)), batch["mask_index"] + 4].log_softmax(-1)  # (N, V)
        gold = model.verbalizer_ids[batch["labels"]]
        by_hand = -at[torch.arange(len(dev)), gold].mean()
    torch.testing.assert_close(label_loss(scores, batch["labels"], "vocabulary"), by_hand, atol=1e-5, rtol=1e-5)
    # The loss model selection used is the same one, and it ranks labels as the label-word logits do.
    _, dev_loss = predict(model, dev, tokenizer.pad_token_id)
    assert dev_loss == pytest.approx(summary["best_dev_loss"], abs=1e-4)
    model.loss = "label_words"
    assert (
        predict(model, dev, tokenizer.pad_token_id)[0]
        == predict(load_trained(out, backbone_dir)[0], dev, tokenizer.pad_token_id)[0]
    )
    assert dev_loss > predict(model, dev, tokenizer.pad_token_id)[1]  # -log p over V exceeds the softmax over 3


def test_frequent_tokens_are_counted_over_the_training_text_without_special_tokens():
    rows = [[0, 7, 7, 5, 2], [0, 5, 7, 9, 2], [0, 9, 3, 2]]
    assert frequent_tokens(rows, {0, 2}, 3) == [7, 5, 9]  # 7 x3, 5 x2, 9 x2 (tie: lower id), 3 x1
    assert frequent_tokens(rows, {0, 2}, 10) == [7, 5, 9, 3]


def test_vocab_init_samples_among_the_most_frequent_training_tokens(world_dir, backbone_dir, tmp_path):
    out = tmp_path / "init"
    train_prompt(
        backbone_dir,
        world_dir / "topic",
        TrainConfig(**{**FAST, "prompt_length": 8}, method="untrained", init="vocab", vocab_top_k=3),
        out,
    )
    backbone, tokenizer = load_backbone(backbone_dir)
    train = TaskSet.load([world_dir / "topic"]).encode(tokenizer, "en", "train", 48, family="masked_lm")
    top = frequent_tokens(train.input_ids, set(tokenizer.all_special_ids), 3)
    with torch.no_grad():
        allowed = backbone.get_input_embeddings()(torch.tensor(top))  # (3, d)
    prompt = load_file(out / "prompt.safetensors")["prompt"]  # (8, d)
    assert all(any(torch.equal(row, candidate) for candidate in allowed) for row in prompt)
