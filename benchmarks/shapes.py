"""What the step benchmarks share: model shapes (the demo's tiny backbone and XLM-R base's width), and the
model each method trains, built on a backbone as training builds it.

XLM-R base is 12 x 768 with a 250,002-token vocabulary; depth and vocabulary are cut so that
a step fits a 2-core CPU, while the width (what sets the per-token cost) stays.
"""

SHAPES = {
    "tiny (demo: 3 x 128)": {
        "num_hidden_layers": 3,
        "hidden_size": 128,
        "num_attention_heads": 4,
        "intermediate_size": 512,
        "vocab_size": 800,
    },
    "xlm-r-base width (2 x 768, vocab cut to 8k)": {
        "num_hidden_layers": 2,
        "hidden_size": 768,
        "num_attention_heads": 12,
        "intermediate_size": 3072,
        "vocab_size": 8000,
    },
}


def prompted_for(backbone, method: str, length: int, labels: list[int]):
    """(model, TrainConfig) of ``method`` on ``backbone``: deep_prompt's prefixes in every layer and no
    input-level prompt; otherwise an input prompt, with lora's adapters attached to ``backbone`` (which
    they change: give lora a backbone of its own)."""
    from xlprompt.methods.adapters import attach_lora
    from xlprompt.methods.deep_prompt import DeepPrompt, DeepPromptedLM
    from xlprompt.models.prompting import PromptedLM, SoftPrompt
    from xlprompt.runtime.settings import TrainConfig

    cfg = TrainConfig(method=method, prompt_length=length)
    if method == "deep_prompt":
        return DeepPromptedLM(backbone, DeepPrompt(backbone, length, cfg.deep_prompt), labels), cfg
    if method == "lora":
        attach_lora(backbone, cfg.lora)
    return PromptedLM(backbone, SoftPrompt(length, backbone.get_input_embeddings().weight.shape[1]), labels), cfg
