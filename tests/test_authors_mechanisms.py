"""The papers' protocols as named options, each checked against the authors' own mechanism rebuilt on a tiny
model: the SPT authors' prompt in XGLM's unscaled embedding space and their reparameterization's trainable set
(fredxlpy/cross_lingual_prompt_tuning, src/prompt.py and src/training.py, transformers 4.26.1), HF Trainer's
gradient clipping, and the backbone's dropout while training."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from datasets import Dataset
from torch import nn

from xlprompt.data.contract import load_split, split_path
from xlprompt.data.encoding import encode_split, run_encoding, text_length
from xlprompt.methods.trainable import build_prompted, parameter_groups
from xlprompt.methods.training import train_prompt, train_step, validation_per_class
from xlprompt.models.backbone import load_backbone
from xlprompt.models.families import embedding_scale
from xlprompt.models.prompting import PromptedLM, SoftPrompt
from xlprompt.models.tasks import TaskSet
from xlprompt.runtime.settings import TrainConfig

LENGTH = 3


class AuthorsSoftPrompt(nn.Module):
    """The SPT authors' SoftPrompt, rebuilt: it replaces the input embedding module, looks tokens up in the
    word embedding table (unscaled: XGLM 4.26.1 scaled the module's output afterwards), and overwrites the
    rows of the prompt token with its own vectors (through the MLP when reparameterised). Its own parameter
    comes first in ``model.parameters()``, then the table's, then the MLP's: what their index-based freezing
    relies on."""

    def __init__(self, table: nn.Embedding, prompt_token: int, dim: int, hidden: int = 0) -> None:
        super().__init__()
        self.wte = table
        self.prompt_token = prompt_token
        self.weight = nn.Parameter(torch.empty(LENGTH, dim).uniform_(-0.5, 0.5))
        self.mlp = (
            nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim), nn.LayerNorm(dim))
            if hidden
            else None
        )

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        embedded = F.embedding(tokens, self.wte.weight)  # the unscaled lookup
        learned = self.mlp(self.weight) if self.mlp is not None else self.weight
        rows = [
            embedded[i].index_put((torch.where(tokens[i] == self.prompt_token)[0],), learned)
            for i in range(len(tokens))
        ]
        return torch.stack(rows)


@pytest.fixture
def xglm(stand_ins):
    backbone, tokenizer = load_backbone(stand_ins["xglm"])
    backbone.requires_grad_(False)
    backbone.eval()
    return backbone, tokenizer


def authors_label_logits(backbone, prompt: AuthorsSoftPrompt, ids: torch.Tensor, label_ids: list[int]) -> torch.Tensor:
    """The authors' forward: their embedding output times XGLM's embed_scale (what XGLM 4.26.1 applied after
    embed_tokens), read at the last prompt position, the label words' logits."""
    embeds = prompt(ids) * embedding_scale(backbone)
    hidden = backbone.base_model(inputs_embeds=embeds).last_hidden_state  # (1, T, d)
    return backbone.get_output_embeddings()(hidden[:, -1])[:, label_ids]  # (1, n_labels)


def test_xglm_scales_its_embeddings_by_sqrt_d(xglm):
    backbone, _ = xglm
    assert backbone.config.scale_embedding
    assert embedding_scale(backbone) == pytest.approx(math.sqrt(backbone.config.d_model))
    assert embedding_scale(backbone) > 1


def test_a_raw_space_prompt_gives_the_authors_logits_and_moves_as_far_per_step(xglm):
    """The authors' path (prompt rows overwritten in the unscaled lookup, then x embed_scale) against xlprompt
    with prompt.space raw: the same logits, and one AdamW step at their lr 5e-3 moves the prompt the model
    reads by the same amount: embed_scale times as far as a prompt kept in the model's space moves."""
    backbone, tokenizer = xglm
    scale = embedding_scale(backbone)
    text = tokenizer("the cat sees the dog", add_special_tokens=False)["input_ids"]
    label_ids = tokenizer(" cat dog bird", add_special_tokens=False)["input_ids"][:3]
    prompt_token = tokenizer.pad_token_id  # any id: the authors' rows are overwritten
    authors = AuthorsSoftPrompt(backbone.get_input_embeddings(), prompt_token, backbone.config.d_model)
    ids = torch.tensor([[*text, *[prompt_token] * LENGTH]])  # text, then the prompt (the suffix layout)

    def xlprompt_model(space: str) -> PromptedLM:
        cfg = TrainConfig(prompt_length=LENGTH, init="uniform", space=space, loss="label_words")
        model = build_prompted(backbone, tokenizer, cfg, label_ids)
        assert isinstance(model.prompt, SoftPrompt)
        with torch.no_grad():  # the same parameter values in the same (raw) numbers
            model.prompt.embedding.copy_(authors.weight)
        model.prompt.embedding.requires_grad_(True)
        return model

    raw = xlprompt_model("raw")
    batch = {
        "input_ids": torch.tensor([text]),
        "attention_mask": torch.ones(1, len(text), dtype=torch.long),
        "mask_index": torch.tensor([len(text)]),  # a causal LM's: where the text ends, the prompt goes
    }
    theirs = authors_label_logits(backbone, authors, ids, label_ids)
    ours = raw.score_batch(batch)
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)

    def step(parameter: nn.Parameter, logits: torch.Tensor) -> None:
        optimizer = torch.optim.AdamW([parameter], lr=5e-3, weight_decay=0.0)
        F.cross_entropy(logits, torch.tensor([1])).backward()
        optimizer.step()

    before = authors.weight.detach().clone()
    step(authors.weight, theirs)
    theirs_moved = (authors.weight.detach() - before) * scale  # in the space the model reads
    read_before = raw.prompt_vectors().detach().clone()
    step(raw.prompt.embedding, ours)
    ours_moved = raw.prompt_vectors().detach() - read_before
    torch.testing.assert_close(ours_moved, theirs_moved, rtol=1e-4, atol=1e-6)

    model_space = xlprompt_model("model")
    read_before = model_space.prompt_vectors().detach().clone()
    step(model_space.prompt.embedding, model_space.score_batch(batch))
    moved = (model_space.prompt_vectors().detach() - read_before).abs().mean()
    assert ours_moved.abs().mean() / moved == pytest.approx(scale, rel=0.05)  # Adam's first step: about lr each


@pytest.mark.parametrize("norm_affine", [False, True])
def test_the_reparameterised_prompt_trains_what_the_authors_index_rule_unfreezes(xglm, norm_affine):
    """Their rule: freeze parameters[1:], unfreeze parameters[2:6] (src/training.py). On XGLM that is the
    prompt and the MLP's two Linear layers; the LayerNorm keeps gain 1 and bias 0. prompt.reparam_norm_affine
    false trains exactly that set and gives the same prompt; true (the default) trains the LayerNorm too."""
    backbone, tokenizer = xglm
    dim, hidden = backbone.config.d_model, 8
    authors = AuthorsSoftPrompt(backbone.get_input_embeddings(), 0, dim, hidden)
    original = backbone.get_input_embeddings()
    backbone.set_input_embeddings(authors)
    try:
        parameters = list(backbone.parameters())
        names = {id(p): name for name, p in backbone.named_parameters()}
        unfrozen = [names[id(p)] for p in parameters[:1] + parameters[2:6]]
    finally:
        backbone.set_input_embeddings(original)
    assert unfrozen == [
        "model.embed_tokens.weight",
        "model.embed_tokens.mlp.0.weight",
        "model.embed_tokens.mlp.0.bias",
        "model.embed_tokens.mlp.2.weight",
        "model.embed_tokens.mlp.2.bias",
    ]

    cfg = TrainConfig(
        prompt_length=LENGTH, init="uniform", reparameterization=True, reparam_hidden=hidden,
        reparam_norm_affine=norm_affine, space="raw",
    )  # fmt: skip
    model = build_prompted(backbone, tokenizer, cfg, [4, 5])
    trained = {id(p) for group in parameter_groups(model, cfg, {}) for p in group["params"]}
    ours = [name for name, p in model.named_parameters() if id(p) in trained]
    expected = ["prompt.embedding", "prompt.reparam.0.weight", "prompt.reparam.0.bias"]
    expected += ["prompt.reparam.2.weight", "prompt.reparam.2.bias"]
    assert ours == expected + (["prompt.reparam.3.weight", "prompt.reparam.3.bias"] if norm_affine else [])

    assert isinstance(model.prompt, SoftPrompt)
    assert model.prompt.reparam is not None
    assert authors.mlp is not None
    with torch.no_grad():  # their values in our modules: the same prompt reaches the model
        model.prompt.embedding.copy_(authors.weight)
        for i in (0, 2):
            model.prompt.reparam[i].load_state_dict(authors.mlp[i].state_dict())
    torch.testing.assert_close(model.prompt_vectors(), authors.mlp(authors.weight) * embedding_scale(backbone))


def test_clipping_scales_the_gradient_as_torch_clip_grad_norm_does(backbone_dir):
    """HF Trainer clips with torch.nn.utils.clip_grad_norm_ over the trained parameters before each step: the
    gradient the step uses is the unclipped one scaled down to max_grad_norm, or left as it is below it."""
    backbone, tokenizer = load_backbone(backbone_dir)
    cfg = TrainConfig(prompt_length=LENGTH, init="uniform", seed=3)
    ids = torch.tensor([tokenizer("a b c")["input_ids"]])
    mask = ids.clone()
    mask[0, -2] = tokenizer.mask_token_id
    batch = {"input_ids": mask, "attention_mask": torch.ones_like(ids), "mask_index": torch.tensor([ids.shape[1] - 2])}
    batch["labels"] = torch.tensor([1])

    def stepped(max_norm: float) -> torch.Tensor:
        """The gradient the step used (train_step clips it before the step, and it stays in .grad)."""
        model = build_prompted(backbone, tokenizer, cfg, [4, 5])
        model.eval()
        assert isinstance(model.prompt, SoftPrompt)
        train_step(model, torch.optim.SGD([model.prompt.embedding], lr=1.0), batch, max_grad_norm=max_norm)
        assert model.prompt.embedding.grad is not None
        return model.prompt.embedding.grad.clone()

    unclipped = stepped(0.0)
    norm = float(unclipped.norm())
    limit = norm / 10
    # torch's documented rule: a gradient of norm n above max_norm is multiplied by max_norm / (n + 1e-6)
    torch.testing.assert_close(stepped(limit), unclipped * (limit / (norm + 1e-6)), rtol=1e-5, atol=1e-12)
    torch.testing.assert_close(stepped(float(unclipped.norm()) * 2), unclipped)  # under the limit: untouched


@pytest.mark.parametrize(
    ("method", "dropout", "train_mode"),
    [
        ("spt", "when_training_backbone", False),
        ("full_ft", "when_training_backbone", True),
        ("spt", "always", True),
        ("full_ft", "never", False),
    ],
)
def test_the_backbone_trains_in_the_mode_training_dropout_names(
    method, dropout, train_mode, world_dir, backbone_dir, tmp_path, monkeypatch
):
    """Train mode during the training steps as training.dropout says; eval mode while validating."""
    seen: list[tuple[bool, bool]] = []  # (backbone in train mode, gradients on) at each forward
    score_batch = PromptedLM.score_batch

    def recording(self, batch):
        seen.append((self.backbone.training, torch.is_grad_enabled()))
        return score_batch(self, batch)

    monkeypatch.setattr(PromptedLM, "score_batch", recording)
    cfg = TrainConfig(
        method=method, prompt_length=LENGTH, steps=2, batch_size=4, eval_every=2, max_length=48, dropout=dropout
    )
    train_prompt(backbone_dir, world_dir / "topic", cfg, tmp_path / "out")
    steps = [mode for mode, grad in seen if grad]
    validations = [mode for mode, grad in seen if not grad]
    assert steps == [train_mode, train_mode]
    assert validations
    assert not any(validations)


def authors_population(embeddings: torch.Tensor, population_size: int, length: int, seed: int) -> torch.Tensor:
    """Lester et al.'s and SPoT's init, rebuilt (google-research/prompt-tuning, prompts.from_sample_of_embeddings):
    ``length`` rows drawn without replacement from the first ``population_size`` rows of the embedding table."""
    index = torch.randperm(population_size, generator=torch.Generator().manual_seed(seed))[:length]
    return embeddings[index]


def test_init_from_the_models_vocabulary_draws_as_lester_et_al_from_its_first_ids(stand_ins):
    """mT5's SentencePiece vocabulary is ordered by frequency, as T5's is: prompt.vocab_source model draws
    from exactly the authors' population, the first vocab_top_k ids, without replacement."""
    backbone, tokenizer = load_backbone(stand_ins["mt5"])
    top_k, length = 40, 12
    cfg = TrainConfig(prompt_length=length, init="vocab", vocab_source="model", vocab_top_k=top_k, seed=4)
    model = build_prompted(backbone, tokenizer, cfg, [4, 5], train_rows=[[7, 7, 7]])  # the text is not read
    table = backbone.get_input_embeddings().weight.detach()
    rows = model.prompt_vectors().detach()
    drawn = [int(torch.where((table == row).all(dim=1))[0][0]) for row in rows]
    assert len(set(drawn)) == length  # without replacement
    assert set(drawn) <= set(range(top_k))  # from the authors' population
    population = {tuple(row.tolist()) for row in authors_population(table, top_k, top_k, seed=0)}
    assert {tuple(row.tolist()) for row in rows} <= population
    task = build_prompted(backbone, tokenizer, TrainConfig(**{**cfg.__dict__, "vocab_source": "task"}), [4, 5],
                          train_rows=[[7, 7, 7]])  # fmt: skip
    assert torch.equal(task.prompt_vectors().detach(), table[7].expand(length, -1))  # the text's only token


def test_a_unigram_vocabulary_is_ordered_by_its_scores_and_others_by_id(stand_ins):
    from xlprompt.methods.trainable import model_frequent_tokens

    for kind in ("mt5", "xlm-roberta", "bloom", "bert"):
        _, tokenizer = load_backbone(stand_ins[kind])
        model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
        top = model_frequent_tokens(tokenizer, 30)
        if model["type"] == "Unigram":
            scores = [score for _, score in model["vocab"]]
            assert [scores[t] for t in top] == sorted(scores, reverse=True)[:30], kind
        else:
            assert top == list(range(30)), kind


def test_euclidean_similarity_is_su_et_als():
    """Their EuclideanDistances, rebuilt: 1 / (1 + Frobenius norm of the flattened prompts' difference)."""
    from xlprompt.analysis.spot import euclidean, euclidean_sim

    generator = torch.Generator().manual_seed(0)
    first, second = torch.randn(5, 8, generator=generator), torch.randn(5, 8, generator=generator)
    theirs = float(1 / (1 + torch.norm(first.reshape(-1) - second.reshape(-1), p="fro")))
    assert euclidean_sim(first, second) == pytest.approx(theirs, rel=1e-6)
    assert euclidean_sim(first, first) == 1.0
    closer = second * 0.5 + first * 0.5  # nearer to first: more similar, a smaller distance
    assert euclidean_sim(first, closer) > euclidean_sim(first, second)
    assert euclidean(first, closer) < euclidean(first, second)


def authors_tokenization(tokenizer, texts: list[str], length: int, max_length: int) -> list[list[int]]:
    """The SPT authors' call (src/preprocessing.py), padding dropped: each text against `[PROMPT]*L </s>`
    under one max_length, only the text cut, no special tokens added. (Their `additional_special_tokens[0]`
    is the `[PROMPT]` they added; transformers 5 keeps it under its name only.)"""
    encoded = tokenizer(
        texts,
        ["[PROMPT]" * length + tokenizer.eos_token] * len(texts),
        padding="max_length",
        max_length=max_length,
        truncation="only_first",
        add_special_tokens=False,
    )
    return [
        [i for i, keep in zip(ids, mask) if keep] for ids, mask in zip(encoded["input_ids"], encoded["attention_mask"])
    ]


def test_the_total_budget_cuts_each_text_where_the_authors_tokenization_does(stand_ins, world_dir):
    _, tokenizer = load_backbone(stand_ins["xglm"])
    _, theirs = load_backbone(stand_ins["xglm"])
    theirs.add_special_tokens({"additional_special_tokens": ["[PROMPT]"]})  # as their train_prompt does
    prompt_id = theirs.convert_tokens_to_ids("[PROMPT]")
    frame = load_split(world_dir / "topic", "en", "test").head(40)
    length, max_length = 10, 61  # 50 text tokens: the tiny tokenizer reads these texts as 33 to 72
    cut = text_length(max_length, "total", length, "causal_lm")
    ours = encode_split(tokenizer, frame, cut, "causal_lm", special_tokens=False).input_ids
    authors = authors_tokenization(theirs, list(frame["text"]), length, max_length)
    assert [row[: row.index(prompt_id)] for row in authors] == ours
    assert all(row[-length - 1 :] == [prompt_id] * length + [theirs.eos_token_id] for row in authors)
    cut_rows = [row for row in ours if len(row) == cut]
    assert cut_rows  # some texts cut at the budget
    assert len(cut_rows) < len(ours)  # and some shorter
    # The text budget's default layout differs: XGLM's own </s> in front, and max_length for the text alone.
    default = encode_split(tokenizer, frame, max_length, "causal_lm").input_ids
    assert all(row[0] == tokenizer.eos_token_id for row in default)
    assert max(len(row) for row in default) == max_length


def test_the_total_budget_of_a_masked_lm_holds_prompt_text_and_specials(stand_ins, world_dir):
    _, tokenizer = load_backbone(stand_ins["xlm-roberta"])
    frame = load_split(world_dir / "nli", "en", "test").head(40)
    length, max_length = 12, 24
    encoded = encode_split(tokenizer, frame, text_length(max_length, "total", length, "masked_lm"), "masked_lm")
    assert max(len(row) for row in encoded.input_ids) + length == max_length
    assert all(
        row[0] == tokenizer.bos_token_id and row[-2:] == [tokenizer.mask_token_id, tokenizer.eos_token_id]
        for row in encoded.input_ids
    )
    # deep_prompt's prefixes take no input position: the text keeps the whole budget
    assert run_encoding(
        {"method": "deep_prompt", "prompt_length": 12, "max_length": 24, "length_budget": "total"}, "masked_lm"
    ) == (24, True)
    assert run_encoding({"method": "spt", "prompt_length": 12, "max_length": 24}, "causal_lm") == (24, True)


def authors_validation(frame: pd.DataFrame, train_per_class: int, n_labels: int) -> pd.DataFrame:
    """The SPT authors' validation set (src/training.py): undersampled to balanced classes, then for every
    few-shot size but 32 a stratified sample of ceil(n / 4) per class (``datasets``' train_test_split)."""
    frame = frame.copy()
    smallest = frame["label"].value_counts().min()
    # Their `groupby('label').apply(lambda x: x.sample(min_samples))`; pandas 3 leaves the key column out of
    # what apply sees, and GroupBy.sample draws the same per class.
    frame = frame.groupby("label").sample(smallest).reset_index(drop=True)
    if train_per_class != 32:
        dataset = Dataset.from_pandas(frame[["id", "label"]]).class_encode_column("label")
        per_class = int(np.ceil(train_per_class / 4))
        frame = dataset.train_test_split(train_size=n_labels * per_class, stratify_by_column="label")[
            "train"
        ].to_pandas()
    return frame


@pytest.mark.parametrize("train_per_class", [32, 10])
def test_a_balanced_validation_sample_has_the_authors_class_counts(stand_ins, world_dir, tmp_path, train_per_class):
    data = tmp_path / "topic"
    shutil.copytree(world_dir / "topic", data)
    path = split_path(data, "en", "validation")
    frame = pd.read_parquet(path)
    labels = sorted(frame["label"].unique())
    # An unbalanced split of 20, 17, 14, ... rows per class (the world's rows repeated under new ids).
    rows = [
        frame[frame["label"] == label].sample(20 - 3 * k, replace=True, random_state=k)
        for k, label in enumerate(labels)
    ]
    unbalanced = pd.concat(rows, ignore_index=True)
    unbalanced["id"] = [f"row{i}" for i in range(len(unbalanced))]
    unbalanced.to_parquet(path)
    unbalanced = load_split(data, "en", "validation")
    assert unbalanced["label"].value_counts().nunique() > 1
    _, tokenizer = load_backbone(stand_ins["xglm"])
    # The paper config's setting for 32 per class, and the per-size key the authors' rule asks for otherwise.
    cfg = TrainConfig(
        train_per_class=train_per_class,
        selection="full_validation",
        balance_validation=True,
        validation_per_class=0 if train_per_class == 32 else math.ceil(train_per_class / 4),
    )
    rows = TaskSet.load([data]).encode(
        tokenizer, "en", "validation", 64, validation_per_class(cfg), cfg.seed, family="causal_lm", balanced=True
    )
    ours = pd.Series(rows.labels).value_counts().sort_index()
    theirs = authors_validation(unbalanced, train_per_class, len(labels))["label"].value_counts().sort_index()
    assert ours.tolist() == theirs.tolist()
    assert set(rows.ids) <= set(unbalanced["id"].astype(str))
