"""Export a plain soft prompt in PEFT's prompt-tuning format.

``peft.PeftModel.from_pretrained(backbone, folder)`` then loads it; the prompt sits in
``prompt_encoder.default.embedding.weight``, as PEFT's own prompt tuning saves it.
"""

from __future__ import annotations

from pathlib import Path

import torch
from peft import PromptTuningConfig
from safetensors.torch import save_file


def export_prompt_tuning(folder: Path, prompt: torch.Tensor, backbone: torch.nn.Module) -> None:
    """Write adapter_config.json and adapter_model.safetensors for a (L, d) prompt."""
    cfg = backbone.config
    config = PromptTuningConfig(
        task_type=None,  # PEFT has no masked-LM task type; the read-out stays xlprompt's verbalizer
        num_virtual_tokens=prompt.shape[0],
        token_dim=prompt.shape[1],
        num_transformer_submodules=1,
        num_attention_heads=cfg.num_attention_heads,
        num_layers=cfg.num_hidden_layers,
        base_model_name_or_path=getattr(cfg, "_name_or_path", None) or None,
    )
    folder.mkdir(parents=True, exist_ok=True)
    config.save_pretrained(str(folder))
    save_file({"prompt_embeddings": prompt.detach().contiguous()}, folder / "adapter_model.safetensors")
