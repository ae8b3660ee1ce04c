"""What each training method is, one record per method (as PEFT keeps one tuner per method).

Everything that asks "which method is this?" reads these records: what trains (the prompt, which of the
backbone's weights), whether the prompt takes input positions, what the artifact holds besides the
prompt, and which PEFT tuner exports it. A new method, or a new fact about one, is one entry here plus the
code that acts on the new value. Importable without torch: the workflow's config checks read it.
"""

from __future__ import annotations

from dataclasses import dataclass

# What of the backbone a method trains (Method.backbone).
BACKBONE_PARTS = ("none", "all", "ticket", "lora", "biases")
# Whether a run of the method has a soft prompt (Method.prompt): required (prompt_length >= 1), optional (0
# allowed), none (prompt_length 0).
PROMPT_NEEDS = ("required", "optional", "none")
# The PEFT tuner whose format can hold the trained result (Method.peft; xlprompt.methods.peft_export).
PEFT_TUNERS = ("prompt_tuning", "prefix_tuning", "lora")


@dataclass(frozen=True)
class Method:
    """One training method."""

    name: str
    summary: str  # one line: what trains
    trains: bool = True  # takes optimisation steps (untrained and no_prompt are controls that do not)
    # What of the backbone trains (BACKBONE_PARTS), and so what the artifact keeps besides the prompt: the whole
    # model (all), the ticket's entries, the LoRA adapter, the bias terms, or nothing.
    backbone: str = "none"
    prompt: str = "required"  # PROMPT_NEEDS
    # The prompt is L input vectors beside the text; false: L key/value prefixes in every layer's attention
    # (deep_prompt), which take no input position and cannot share a backbone pass with other prompts.
    input_prompt: bool = True
    peft: str | None = None  # the PEFT tuner that exports it where the layout allows (PEFT_TUNERS), else None

    def __post_init__(self) -> None:
        if self.backbone not in BACKBONE_PARTS:
            raise ValueError(f"method {self.name}: backbone must be one of {BACKBONE_PARTS}, got {self.backbone!r}")
        if self.prompt not in PROMPT_NEEDS:
            raise ValueError(f"method {self.name}: prompt must be one of {PROMPT_NEEDS}, got {self.prompt!r}")
        if self.peft is not None and self.peft not in PEFT_TUNERS:
            raise ValueError(f"method {self.name}: peft must be one of {PEFT_TUNERS} or None, got {self.peft!r}")

    @property
    def trains_backbone(self) -> bool:
        """Whether backbone weights change."""
        return self.backbone != "none"

    @property
    def trains_alone(self) -> bool:
        """Whether a run needs a job of its own instead of sharing a backbone pass with other prompts
        (xlprompt.methods.training.train_prompts): its backbone changes, or its prompt sits in every layer."""
        return self.trains_backbone or not self.input_prompt


METHOD_LIST = (
    Method("spt", "the prompt; the backbone frozen", peft="prompt_tuning"),
    Method("full_ft", "the prompt and every backbone weight", backbone="all"),
    Method("ltp", "the prompt and a winning ticket's entries of the backbone", backbone="ticket"),
    Method(
        "lora",
        "LoRA matrices beside the frozen weights (and the prompt, if any)",
        backbone="lora",
        prompt="optional",
        peft="lora",
    ),
    Method("bitfit", "the backbone's bias terms (and the prompt, if any)", backbone="biases", prompt="optional"),
    Method("deep_prompt", "key/value prefixes of every layer's attention", input_prompt=False, peft="prefix_tuning"),
    Method("untrained", "nothing: the prompt as initialised (a control)", trains=False),
    Method("no_prompt", "nothing, and no prompt: the backbone's own reading (a control)", trains=False, prompt="none"),
)
METHODS_BY_NAME = {method.name: method for method in METHOD_LIST}


def is_ltp(name: str) -> bool:
    """``ltp`` or ``ltp-<ticket>``: a method that trains a winning ticket."""
    return name == "ltp" or name.startswith("ltp-")


def method_of(name: str) -> Method:
    """The record of a method by its name (``ltp-<ticket>``: ltp's)."""
    method = METHODS_BY_NAME.get("ltp" if is_ltp(name) else name)
    if method is None:
        raise ValueError(f"method must be one of {tuple(METHODS_BY_NAME)} (or ltp-<ticket>), got {name!r}")
    return method
