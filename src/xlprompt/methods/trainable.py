"""What each method trains: the prompted model at step 0, and the parameters its optimizer may change.

The prompt starts from an init of :data:`xlprompt.runtime.settings.INITS` or from a source prompt (SPoT's
transfer); deep_prompt builds its prefixes instead. Frozen means frozen: :func:`parameter_groups` turns every
gradient off but those of the method's trainable set (:func:`backbone_trained`, ltp's ticket).
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from xlprompt.methods.adapters import bias_names, lora_parameters
from xlprompt.methods.artifacts import artifact_tensors
from xlprompt.methods.deep_prompt import DeepPrompt, DeepPromptedLM
from xlprompt.methods.ltp import ticket_parameters
from xlprompt.models.families import embedding_scale, input_width
from xlprompt.models.prompting import PromptedLM, SoftPrompt, init_prompt
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import TrainConfig

if TYPE_CHECKING:  # transformers for the hints only: importing it costs a second
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)


def frequent_tokens(rows: list[list[int]], special: set[int], top_k: int) -> list[int]:
    """The ``top_k`` most frequent token ids of ``rows`` (ties: lower id first), special tokens left out:
    what ``init: vocab`` samples from (SPoT samples the 5,000 most common tokens)."""
    counts = Counter(token for row in rows for token in row if token not in special)
    return sorted(counts, key=lambda token: (-counts[token], token))[:top_k]


def model_frequent_tokens(tokenizer: PreTrainedTokenizerBase, top_k: int) -> list[int]:
    """The ``top_k`` most frequent tokens of the backbone's own vocabulary: a SentencePiece Unigram model's by
    its scores (the log-probabilities it was trained with; ties by id), any other model's (BPE, WordPiece) by
    id, which stands in for frequency there (BPE ids follow the merges; WordPiece's are not frequency-ordered,
    as logged). Special tokens stay in, as Lester et al.'s population (T5's first ids) keeps them."""
    model = json.loads(tokenizer.backend_tokenizer.to_str())["model"]
    if model["type"] == "Unigram":
        scores = [score for _, score in model["vocab"]]
        order = sorted(range(len(scores)), key=lambda token: (-scores[token], token))
    else:
        logger.info("init vocab from the model: its %s vocabulary has no frequencies; ids stand in", model["type"])
        order = list(range(len(tokenizer)))
    return order[:top_k]


def build_prompted(
    backbone,
    tokenizer,
    cfg: TrainConfig,
    label_ids: list[list[int]],
    source: dict[str, torch.Tensor] | None = None,
    train_rows: list[list[int]] | None = None,
) -> PromptedLM:
    """The prompted model at step 0: prompt from ``cfg.init``, or copied from ``source``.

    ``train_rows``: the training text's token ids, whose ``cfg.vocab_top_k`` most frequent tokens
    ``init: vocab`` samples from (default: every non-special token of the vocabulary).
    deep_prompt: no input-level prompt; its prefixes (and their MLP) start from the seed, PEFT's init.
    """
    if not cfg.spec.input_prompt:  # deep_prompt
        torch.manual_seed(cfg.seed)
        return DeepPromptedLM(backbone, DeepPrompt(backbone, cfg.prompt_length, cfg.deep_prompt), label_ids, cfg.loss)
    prompt = None
    if cfg.prompt_length:
        dim = input_width(backbone)
        scale = embedding_scale(backbone) if cfg.space == "raw" else 1.0
        prompt = SoftPrompt(
            cfg.prompt_length,
            dim,
            cfg.reparam_hidden if cfg.reparameterization else 0,
            scale=scale,
            norm_affine=cfg.reparam_norm_affine,
        )
        generator = torch.Generator().manual_seed(cfg.seed)
        # The reparameterization MLP is initialised from the seed too, before the vectors.
        torch.manual_seed(cfg.seed)
        if prompt.reparam is not None:
            for layer in prompt.reparam:
                reset = getattr(layer, "reset_parameters", None)
                if reset is not None:
                    reset()
        if cfg.init == "source":
            copy_source_prompt(prompt, source)
        else:
            special = set(tokenizer.all_special_ids)
            if cfg.vocab_source == "model":
                candidates = model_frequent_tokens(tokenizer, cfg.vocab_top_k)
            elif train_rows is not None:
                candidates = frequent_tokens(train_rows, special, cfg.vocab_top_k)
            else:
                candidates = [i for i in range(len(tokenizer)) if i not in special]
            label_tokens = [token for word in label_ids for token in ([word] if isinstance(word, int) else word)]
            init_prompt(
                prompt,
                cfg.init,
                backbone.get_input_embeddings(),
                candidates,
                label_tokens,
                generator,
                distinct=cfg.vocab_source == "model",
            )
    return PromptedLM(backbone, prompt, label_ids, cfg.position, cfg.loss)


def copy_source_prompt(prompt: SoftPrompt, source: dict[str, torch.Tensor] | None) -> None:
    """Start exactly where the source prompt ended (with its reparameterization, if any)."""
    if source is None:
        raise ValueError("init 'source' needs a source prompt (train_prompt's --source)")
    with torch.no_grad():
        if prompt.reparam is None:
            prompt.embedding.copy_(source["prompt"] / prompt.scale)  # the stored prompt is what the model read
            return
        if "prompt_raw" not in source:
            raise ValueError("a reparameterised prompt can only start from a source trained with reparameterization")
        prompt.embedding.copy_(source["prompt_raw"])
        prompt.reparam.load_state_dict({k[len("reparam.") :]: v for k, v in source.items() if k.startswith("reparam.")})


def load_source(path: Path, cfg: TrainConfig, backbone_sha: str, dim: int) -> dict[str, torch.Tensor]:
    """A trained prompt to transfer from, checked to fit: same backbone, same length."""
    meta = read_json(path / "meta.json")
    tensors = artifact_tensors(path, meta)
    if meta["inputs_sha256"]["backbone"] != backbone_sha:
        raise ValueError(
            f"{path}: the source prompt was trained on another backbone (cross-model transfer needs a projector)"
        )
    if tuple(tensors["prompt"].shape) != (cfg.prompt_length, dim):
        raise ValueError(
            f"{path}: source prompt is {tuple(tensors['prompt'].shape)} (length x width), "
            f"the target prompt {(cfg.prompt_length, dim)}: transfer needs the same length"
        )
    if ("prompt_raw" in tensors) != cfg.reparameterization or (
        cfg.reparameterization and tensors["prompt_raw"].shape != (cfg.prompt_length, dim)
    ):
        raise ValueError(
            f"{path}: reparameterization of the source ({'prompt_raw' in tensors}) and of the "
            f"target ({cfg.reparameterization}) differ"
        )
    if cfg.reparameterization:  # the source's MLP continues as it is: it must be the same MLP in the same space
        source_cfg = meta["config"]
        for key, default in (("space", "model"), ("reparam_norm_affine", True)):
            if source_cfg.get(key, default) != getattr(cfg, key):
                raise ValueError(
                    f"{path}: a reparameterised source continues only with the same {key} "
                    f"(source {source_cfg.get(key, default)!r}, target {getattr(cfg, key)!r})"
                )
    return tensors


def parameter_groups(model: PromptedLM, cfg: TrainConfig, masks: dict[str, torch.Tensor]) -> list[dict]:
    """Optimizer groups of what the method trains; everything else gets no gradient.

    Frozen means frozen: the backbone's ``requires_grad`` is off unless the method trains it
    (full_ft: all of it; ltp: the ticket's parameters, with gradients masked to the ticket;
    lora: the LoRA matrices; bitfit: the bias terms). Every backbone group learns at ``backbone_lr``;
    the prompt, or deep_prompt's prefixes, at ``lr``.
    """
    model.backbone.requires_grad_(cfg.spec.backbone == "all")
    groups = []
    prompt = prompt_parameters(model)
    if prompt:
        groups.append({"params": prompt, "lr": cfg.lr, "base_lr": cfg.lr})
    trained = backbone_trained(model.backbone, cfg)
    for param in trained:
        param.requires_grad_(True)
    if trained:
        groups.append({"params": trained, "lr": cfg.backbone_lr, "base_lr": cfg.backbone_lr})
    if masks:
        groups.append(
            {
                "params": ticket_parameters(model.backbone, masks),
                "lr": cfg.backbone_lr,
                "base_lr": cfg.backbone_lr,
                "weight_decay": 0.0,
            }
        )
    return groups


def prompt_parameters(model: PromptedLM) -> list[torch.nn.Parameter]:
    """What trains besides backbone weights: the prompt (with its reparameterization), or deep_prompt's prefixes."""
    if isinstance(model, DeepPromptedLM):
        return list(model.deep.parameters())
    return list(model.prompt.parameters()) if model.prompt is not None else []


def backbone_trained(backbone: PreTrainedModel, cfg: TrainConfig) -> list[torch.nn.Parameter]:
    """The backbone parameters a method trains whole, by its record's ``backbone``: all of them (full_ft), the
    LoRA matrices (lora), the bias terms (bitfit). (ltp's ticket: :func:`xlprompt.methods.ltp.ticket_parameters`.)"""
    part = cfg.spec.backbone
    if part == "all":
        return list(backbone.parameters())
    if part == "lora":
        return lora_parameters(backbone)
    if part == "biases":
        params = dict(backbone.named_parameters())
        return [params[name] for name in bias_names(backbone, cfg.bitfit)]
    return []


def trainable_parameter_count(model: PromptedLM, cfg: TrainConfig, masks: dict[str, torch.Tensor]) -> int:
    """How many numbers the method trains: the prompt's or deep_prompt's prefixes (reparameterization included)
    and the backbone's (ltp: the ticket's entries only); 0 for the untrained controls."""
    if not cfg.trains:
        return 0
    prompt = sum(p.numel() for p in prompt_parameters(model))
    ticket = sum(int(mask.sum()) for mask in masks.values())
    return prompt + ticket + sum(p.numel() for p in backbone_trained(model.backbone, cfg))
