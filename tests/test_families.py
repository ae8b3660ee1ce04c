"""Every model family behind one prompt interface, on faithful stand-ins of the advertised backbones:
tiny models of the real architectures (XLMRoberta, Bert, XGLM, Bloom, MT5; Llama, Mistral, Qwen2, Qwen3,
Gemma2, Gemma3), each with its own tokenizer class and special tokens (tests/tiny_models.py), train a
prompt, evaluate, save, reload and predict the same."""

from __future__ import annotations

import dataclasses
import shutil

import pandas as pd
import pytest
import torch
from conftest import single_token_words, with_label_words
from tiny_models import ALL, TOKENIZER_CLASS
from transformers import AutoConfig, AutoTokenizer

from xlprompt.analysis.neurons import ffn_modules
from xlprompt.data.contract import load_labels, load_split, write_labels
from xlprompt.data.encoding import encode_split
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.families import (
    ARCHITECTURES_BY_TYPE,
    architecture_of,
    embedding_scale,
    family_of,
    input_width,
)
from xlprompt.models.predict import evaluate_split, predict
from xlprompt.models.prompting import prompted_logits
from xlprompt.models.tasks import TaskSet
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import TrainConfig


def test_each_stand_in_loads_with_its_backbones_own_tokenizer_class(stand_ins):
    for kind, folder in stand_ins.items():
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert type(tokenizer).__name__ == TOKENIZER_CLASS[kind], kind
    bert = AutoTokenizer.from_pretrained(stand_ins["bert"])
    assert bert.bos_token_id is None
    assert bert.eos_token_id is None
    assert "token_type_ids" in bert.model_input_names
    bloom = AutoTokenizer.from_pretrained(stand_ins["bloom"])
    assert bloom("deke resa")["input_ids"] == bloom("deke resa", add_special_tokens=False)["input_ids"]
    for kind in ("llama", "mistral"):  # no pad token of their own: load_backbone pads with the end of sequence
        assert AutoTokenizer.from_pretrained(stand_ins[kind]).pad_token is None, kind
        tokenizer = load_backbone(stand_ins[kind])[1]
        assert tokenizer.pad_token_id == tokenizer.eos_token_id, kind
    assert AutoTokenizer.from_pretrained(stand_ins["qwen2"]).bos_token is None


@pytest.mark.parametrize("kind", list(ALL))
def test_the_records_special_tokens_are_what_the_stand_ins_tokenizer_writes(kind, stand_ins):
    """Architecture.tokens, read back from the real tokenizer class: text runs become A and B."""
    tokenizer = AutoTokenizer.from_pretrained(stand_ins[kind])

    def layout(*texts: str) -> str:
        ids = tokenizer(*texts)["input_ids"]
        runs = [tokenizer(text, add_special_tokens=False)["input_ids"] for text in texts]
        out, at = [], 0
        for run, name in zip(runs, "AB"):
            while ids[at : at + len(run)] != run:
                out.append(tokenizer.convert_ids_to_tokens(ids[at]))
                at += 1
            out.append(name)
            at += len(run)
        return " ".join(out + tokenizer.convert_ids_to_tokens(ids[at:]))

    record = ARCHITECTURES_BY_TYPE[AutoConfig.from_pretrained(stand_ins[kind]).model_type]
    assert (layout("the deke"), layout("a resa", "the mole")) == record.tokens


@pytest.mark.parametrize("kind", list(ALL))
def test_the_records_embedding_scale_is_the_models(kind, stand_ins):
    backbone, _ = load_backbone(stand_ins[kind])
    scale = {"1": 1.0, "sqrt(d)": input_width(backbone) ** 0.5}[architecture_of(backbone).embedding_scale]
    assert embedding_scale(backbone) == pytest.approx(scale)
    ids = torch.tensor([[3, 4]])
    table = backbone.get_input_embeddings().weight[ids]
    assert torch.allclose(backbone.get_input_embeddings()(ids), table * scale)


@pytest.mark.parametrize("kind", list(ALL))
def test_a_text_and_a_pair_are_encoded_with_the_backbones_own_special_tokens(kind, stand_ins):
    tokenizer = AutoTokenizer.from_pretrained(stand_ins[kind])
    frame = pd.DataFrame(
        {"id": ["a", "b"], "text": ["the deke", "a resa"], "text_pair": [None, "the mole"], "label": [0, 1]}
    )
    data = encode_split(tokenizer, frame, 48, ALL[kind])
    text = tokenizer("the deke", add_special_tokens=False)["input_ids"]
    first = tokenizer("a resa", add_special_tokens=False)["input_ids"]
    second = tokenizer("the mole", add_special_tokens=False)["input_ids"]
    token = tokenizer.convert_tokens_to_ids
    # The layouts, written out by hand from each backbone's documented template.
    expected = {
        "xlm-roberta": (
            [token("<s>"), *text, token("<mask>"), token("</s>")],
            [token("<s>"), *first, token("</s>"), token("</s>"), *second, token("<mask>"), token("</s>")],
        ),
        "bert": (
            [token("[CLS]"), *text, token("[MASK]"), token("[SEP]")],
            [token("[CLS]"), *first, token("[SEP]"), *second, token("[MASK]"), token("[SEP]")],
        ),
        "xglm": ([token("</s>"), *text], [token("</s>"), *first, token("</s>"), token("</s>"), *second]),
        "bloom": (text, first + second),
        "mt5": ([*text, token("</s>")], [*first, token("</s>"), *second, token("</s>")]),
        "llama": (
            [token("<|begin_of_text|>"), *text],
            [token("<|begin_of_text|>"), *first, token("<|begin_of_text|>"), *second],
        ),
        "mistral": ([token("<s>"), *text], [token("<s>"), *first, token("<s>"), *second]),
        "qwen2": (text, first + second),
        "qwen3": (text, first + second),
        "gemma2": ([token("<bos>"), *text], [token("<bos>"), *first, token("<bos>"), *second]),
        "gemma3_text": ([token("<bos>"), *text], [token("<bos>"), *first, token("<bos>"), *second]),
    }[kind]
    assert data.input_ids == list(expected)
    if ALL[kind] == "masked_lm":  # read at the mask
        assert [row[i] for row, i in zip(data.input_ids, data.mask_index)] == [tokenizer.mask_token_id] * 2
    if kind == "bert":  # segment B (with [MASK] and the last [SEP]) is type 1, as the tokenizer types pairs
        assert data.token_type_ids == [[0] * len(expected[0]), [0] * (len(first) + 2) + [1] * (len(second) + 2)]
        pair = tokenizer("a resa", "the mole")
        assert pair["token_type_ids"] == [0] * (len(first) + 2) + [1] * (len(second) + 1)
    else:
        assert data.token_type_ids is None


def test_bert_reads_the_second_text_of_a_pair_with_its_token_type(stand_ins):
    """The prompted model passes token types to BERT: without a prompt its logits at [MASK] equal the
    backbone's own forward on the same ids and types (and differ from all-zero types)."""
    backbone, tokenizer = load_backbone(stand_ins["bert"])
    backbone.eval()
    frame = pd.DataFrame({"id": ["a"], "text": ["a resa"], "text_pair": ["the mole"], "label": [0]})
    batch = encode_split(tokenizer, frame, 48, "masked_lm").batch([0], tokenizer.pad_token_id)
    words = torch.tensor([5, 6, 7])
    with torch.no_grad():
        ours = prompted_logits(
            backbone,
            None,
            words,
            batch["input_ids"],
            batch["attention_mask"],
            batch["mask_index"],
            batch["token_type_ids"],
        )[0, 0]
        theirs = backbone(input_ids=batch["input_ids"], token_type_ids=batch["token_type_ids"]).logits
        untyped = backbone(input_ids=batch["input_ids"]).logits
    at = int(batch["mask_index"][0])
    torch.testing.assert_close(ours, theirs[0, at, words], atol=1e-5, rtol=1e-4)
    assert not torch.allclose(ours, untyped[0, at, words], atol=1e-4)


@pytest.mark.parametrize("kind", list(ALL))
def test_every_family_trains_saves_and_reloads_to_the_same_predictions(kind, stand_ins, world_dir, tmp_path):
    folder = stand_ins[kind]
    backbone, tokenizer = load_backbone(folder)
    assert family_of(backbone) == ALL[kind]
    family = ALL[kind]
    data = with_label_words(world_dir / "nli", tmp_path / "nli", single_token_words(tokenizer, world_dir, family, 3))
    cfg = TrainConfig(
        method="spt",
        prompt_length=4,
        steps=8,
        batch_size=8,
        eval_every=4,
        lr=0.3,
        max_length=48,
        train_per_class=6,
        seed=1,
    )
    out = tmp_path / "prompt"
    summary = train_prompt(folder, data, cfg, out)
    meta = read_json(out / "meta.json")
    assert meta["family"] == family
    assert meta["verbalizers"]["nli"] == meta["verbalizer"]

    model, _ = load_trained(out, folder)
    prompt = model.prompt().detach()
    assert not torch.equal(prompt, torch.zeros_like(prompt))
    # The reloaded prompt reproduces the dev loss training recorded for the prompt it kept...
    dev = TaskSet.load([data]).encode(tokenizer, "en", "validation", 48, family=family)
    dev_loss, _ = evaluate_split(model, dev, tokenizer.pad_token_id)
    assert dev_loss == pytest.approx(summary["best_dev_loss"], abs=1e-4)
    # ...and a second reload predicts the test set (pairs: nli) identically.
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, family)
    first, _ = predict(model, test, tokenizer.pad_token_id)
    again, _ = predict(load_trained(out, folder)[0], test, tokenizer.pad_token_id)
    assert first == again
    assert len(first) == len(test)


@pytest.mark.parametrize("kind", list(ALL))
def test_a_padded_batch_scores_each_row_as_if_it_were_alone(kind, stand_ins, world_dir):
    """Prompt placement under padding: causal LMs get the prompt right after each row's own text."""
    backbone, tokenizer = load_backbone(stand_ins[kind])
    backbone.eval()
    frame = load_split(world_dir / "nli", "en", "test").iloc[:6]
    data = encode_split(tokenizer, frame, 48, ALL[kind])
    assert len({len(row) for row in data.input_ids}) > 1  # rows of different lengths: padding matters
    prompts = torch.randn(2, 3, 32, generator=torch.Generator().manual_seed(0)) * 0.1
    verbalizer = torch.tensor([5, 6, 7])
    with torch.no_grad():
        batch = data.batch(list(range(len(data))), tokenizer.pad_token_id)
        together = prompted_logits(
            backbone,
            prompts,
            verbalizer,
            batch["input_ids"],
            batch["attention_mask"],
            batch["mask_index"],
            batch.get("token_type_ids"),
        )
        for row in range(len(data)):
            alone = data.batch([row], tokenizer.pad_token_id)
            single = prompted_logits(
                backbone,
                prompts,
                verbalizer,
                alone["input_ids"],
                alone["attention_mask"],
                alone["mask_index"],
                alone.get("token_type_ids"),
            )
            torch.testing.assert_close(together[:, row], single[:, 0], atol=1e-5, rtol=1e-4)
        if ALL[kind] == "causal_lm":  # and the layout is text, then prompt, read at the last prompt vector
            ids = torch.tensor([data.input_ids[0]])
            embeds = torch.cat([backbone.get_input_embeddings()(ids), prompts[:1]], dim=1)
            hidden = backbone.base_model(inputs_embeds=embeds).last_hidden_state[0, -1]
            by_hand = backbone.get_output_embeddings()(hidden)[verbalizer]
            torch.testing.assert_close(together[0, 0], by_hand, atol=1e-5, rtol=1e-4)


def test_a_masked_lm_refuses_label_words_of_several_tokens(stand_ins):
    from xlprompt.models.tasks import word_ids

    tokenizer = AutoTokenizer.from_pretrained(stand_ins["xlm-roberta"])
    assert len(word_ids(tokenizer, ["alpha"], "labels.json", "causal_lm")[0]) > 1  # spelled in pieces
    with pytest.raises(
        ValueError,
        match=r"verbalizer word 'alpha' is \d+ tokens for this tokenizer; "
        r"a masked LM reads one token at <mask>",
    ):
        word_ids(tokenizer, ["alpha", "beta"], "labels.json", "masked_lm")


@pytest.mark.parametrize("kind", ["xglm", "bloom", "mt5"])
def test_multi_token_words_score_the_sum_of_their_tokens_log_probabilities(kind, stand_ins, world_dir):
    backbone, tokenizer = load_backbone(stand_ins[kind])
    backbone.eval()
    data = encode_split(tokenizer, load_split(world_dir / "topic", "en", "test").iloc[:4], 48, ALL[kind])
    batch = data.batch(list(range(len(data))), tokenizer.pad_token_id)
    prompts = torch.randn(1, 3, 32, generator=torch.Generator().manual_seed(1)) * 0.1
    args = (batch["input_ids"], batch["attention_mask"], batch["mask_index"])
    with torch.no_grad():
        # One-token words through the multi-token path rank labels exactly as the fast path does.
        fast = prompted_logits(backbone, prompts, torch.tensor([5, 6, 7]), *args)
        slow = prompted_logits(backbone, prompts, torch.tensor([[5, -1], [6, -1], [7, -1]]), *args)
        torch.testing.assert_close(fast.softmax(-1), slow.softmax(-1), atol=1e-5, rtol=1e-4)
        # A two-token word: log p(a | input) + log p(b | input, a), by hand for the first row.
        words = torch.tensor([[8, 9], [10, -1]])
        scores = prompted_logits(backbone, prompts, words, *args)[0, 0]
        ids = torch.tensor([data.input_ids[0]])
        if ALL[kind] == "causal_lm":
            embeds = torch.cat(
                [
                    backbone.get_input_embeddings()(ids),
                    prompts[:1],
                    backbone.get_input_embeddings()(torch.tensor([[8]])),
                ],
                dim=1,
            )
            hidden = backbone.base_model(inputs_embeds=embeds).last_hidden_state[0]
            log_probs = backbone.get_output_embeddings()(hidden[-2:]).log_softmax(-1)  # predicts 8, then 9
            first_word = log_probs[0, 8] + log_probs[1, 9]
            second_word = log_probs[0, 10]
        else:
            embeds = torch.cat([prompts[:1], backbone.get_input_embeddings()(ids)], dim=1)
            start = backbone.config.decoder_start_token_id
            out = backbone(inputs_embeds=embeds, decoder_input_ids=torch.tensor([[start, 8]])).logits[0].log_softmax(-1)
            first_word, second_word = out[0, 8] + out[1, 9], out[0, 10]
        torch.testing.assert_close(scores, torch.stack([first_word, second_word]), atol=1e-4, rtol=1e-4)


def test_multi_token_label_words_train_and_evaluate_with_the_same_scores(stand_ins, world_dir, tmp_path):
    """The SPT paper's code trains on a word's last sub-token and evaluates on its first; here both
    use the word's log-likelihood, so the reloaded prompt reproduces training's dev loss."""
    folder = stand_ins["xglm"]
    tokenizer = AutoTokenizer.from_pretrained(folder)
    data = with_label_words(world_dir / "topic", tmp_path / "topic", ["alpha", "beta", "gamma"])
    cfg = TrainConfig(
        method="spt",
        prompt_length=4,
        steps=6,
        batch_size=8,
        eval_every=3,
        lr=0.3,
        max_length=48,
        train_per_class=6,
        seed=2,
    )
    summary = train_prompt(folder, data, cfg, tmp_path / "prompt")
    model, _ = load_trained(tmp_path / "prompt", folder)
    assert model.verbalizer_ids.dim() == 2  # several tokens per word
    dev = TaskSet.load([data]).encode(tokenizer, "en", "validation", 48, family="causal_lm")
    dev_loss, _ = evaluate_split(model, dev, tokenizer.pad_token_id)
    assert dev_loss == pytest.approx(summary["best_dev_loss"], abs=1e-4)


def test_an_unsupported_architecture_is_named(tmp_path):
    from transformers import GPT2Config

    with pytest.raises(ValueError, match=r"model type 'gpt2' is not supported; supported: \['bert', 'bloom'"):
        family_of(GPT2Config())


def test_a_language_with_its_own_label_words_is_read_with_them(backbone_dir, world_dir, tmp_path):
    """labels.json's verbalizers_by_language: training reads the training language's words,
    evaluation each language's own (here rev's words are en's, permuted)."""
    from xlprompt.analysis.prompt_metrics import evaluate_prompts
    from xlprompt.models.tasks import word_ids

    tokenizer = AutoTokenizer.from_pretrained(backbone_dir)
    data = tmp_path / "topic"
    shutil.copytree(world_dir / "topic", data)
    labels = load_labels(data)
    words = labels.verbalizer("masked_lm")
    permuted = words[1:] + words[:1]
    write_labels(data, type(labels)(labels.task, labels.names, labels.verbalizers, {"rev": {"masked_lm": permuted}}))
    cfg = TrainConfig(method="spt", prompt_length=4, steps=4, batch_size=8, eval_every=2, max_length=48, seed=3)
    train_prompt(backbone_dir, data, cfg, tmp_path / "prompt")
    document = evaluate_prompts([tmp_path / "prompt"], backbone_dir, data, ["en", "rev"])[0]
    accuracy = {row["lang"]: row["accuracy"] for row in document["rows"]}

    model, _ = load_trained(tmp_path / "prompt", backbone_dir)
    for lang, lang_words in (("en", words), ("rev", permuted)):
        model.verbalizer_ids = torch.tensor([ids[0] for ids in word_ids(tokenizer, lang_words, "x", "masked_lm")])
        test = encode_split(tokenizer, load_split(data, lang, "test"), 48, "masked_lm")
        preds, _ = predict(model, test, tokenizer.pad_token_id)
        assert accuracy[lang] == pytest.approx(sum(p == g for p, g in zip(preds, test.labels)) / len(test)), lang


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"family": "encoder"}, "family must be one of"),
        ({"positions": "rotary"}, "positions must be one of"),
        ({"lora_targets": ("q_proj",)}, r"LoRA targets \('q_proj',\) outside"),
    ],
)
def test_an_architecture_record_with_an_unknown_value_is_refused(change, message):
    xlmr = ARCHITECTURES_BY_TYPE["xlm-roberta"]
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(xlmr, **change)


@pytest.mark.parametrize("kind", list(ALL))
def test_each_stand_ins_record_names_its_own_modules(kind, stand_ins):
    """The record of each stand-in's model type: its family, one FFN hook per layer, every LoRA module."""
    backbone, _ = load_backbone(stand_ins[kind])
    record = architecture_of(backbone)
    assert record.family == ALL[kind]
    layers = backbone.config.num_hidden_layers if kind != "mt5" else backbone.config.num_decoder_layers
    assert len(ffn_modules(backbone)) == layers
    names = {name.split(".")[-1] for name, module in backbone.named_modules() if isinstance(module, torch.nn.Linear)}
    assert set(record.lora_modules) <= names
