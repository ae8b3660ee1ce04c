"""PEFT round trip: an exported prompt, loaded the way PEFT documents it
(``PeftModel.from_pretrained(AutoModelFor...from_pretrained(backbone), export)``) and run through
PEFT's own forward, reproduces xlprompt's logits and predictions on every test row, for each
family's stand-in; what PEFT cannot express is not exported and the artifact says why."""

from __future__ import annotations

import pytest
import torch
from conftest import single_token_words, with_label_words
from peft import PeftModel
from tiny_models import ALL, LLM_FAMILY

from xlprompt.data.contract import load_split
from xlprompt.data.encoding import encode_split
from xlprompt.methods.artifacts import load_trained
from xlprompt.methods.training import train_prompt
from xlprompt.models.backbone import load_backbone
from xlprompt.models.families import auto_class
from xlprompt.runtime.io import read_json
from xlprompt.runtime.settings import TrainConfig


def peft_label_logits(
    peft_model, family: str, batch: dict[str, torch.Tensor], n_virtual: int, verbalizer: torch.Tensor
) -> torch.Tensor:
    """Label logits (B, n_labels) read from PEFT's forward where readout.json says."""
    rows = torch.arange(batch["input_ids"].shape[0])
    if family == "seq2seq":
        start = torch.full((len(rows), 1), peft_model.base_model.config.decoder_start_token_id)
        logits = peft_model(
            input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], decoder_input_ids=start
        ).logits[:, 0]
    else:
        logits = peft_model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        offset = -1 if family == "causal_lm" else 0  # a causal LM predicts the next token
        logits = logits[rows, n_virtual + batch["mask_index"] + offset]
    return logits[:, verbalizer]


CASES = {  # kind: (task, extra settings); nli is a task of pairs, topic of single texts
    "xlm-roberta": ("nli", {}),
    "xlm-roberta-reparameterised": ("nli", {"reparameterization": True, "reparam_hidden": 8}),
    "bert": ("topic", {}),
    "xglm": ("nli", {"position": "prefix"}),
    "bloom": ("topic", {"position": "prefix"}),
    "mt5": ("nli", {}),
    # Today's decoder LLMs: the prompt first (PEFT's layout), before each tokenizer's own BOS where it has one
    **{kind: ("nli", {"position": "prefix"}) for kind in LLM_FAMILY},
}


@pytest.mark.parametrize("case", list(CASES))
def test_peft_forward_on_the_export_reproduces_xlprompts_predictions(case, stand_ins, world_dir, tmp_path):
    kind = case.split("-reparameterised")[0]
    task, extra = CASES[case]
    family, folder = ALL[kind], stand_ins[kind]
    _, tokenizer = load_backbone(folder)
    data = with_label_words(world_dir / task, tmp_path / task, single_token_words(tokenizer, world_dir, family, 3))
    cfg = TrainConfig(
        method="spt", prompt_length=4, steps=6, batch_size=8, eval_every=3, lr=0.3, max_length=48, seed=4, **extra
    )
    out = tmp_path / "prompt"
    train_prompt(folder, data, cfg, out)
    meta = read_json(out / "meta.json")
    assert meta["peft_export"]["exported"], meta["peft_export"]

    model, _ = load_trained(out, folder)
    test = encode_split(tokenizer, load_split(data, "en", "test"), 48, family)
    batch = test.batch(list(range(len(test))), tokenizer.pad_token_id)
    peft_model = PeftModel.from_pretrained(auto_class(family).from_pretrained(folder), out / "peft")
    peft_model.eval()
    readout = read_json(out / "peft" / "readout.json")
    verbalizer = torch.tensor([ids[0] for ids in readout["verbalizer_token_ids"]])
    with torch.no_grad():
        ours = model.score_batch(batch)
        theirs = peft_label_logits(peft_model, family, batch, cfg.prompt_length, verbalizer)
    print(f"{case}: largest |PEFT - xlprompt| label logit difference {(theirs - ours).abs().max().item():.3g}")
    torch.testing.assert_close(theirs, ours, atol=1e-4, rtol=0)
    assert theirs.argmax(-1).tolist() == ours.argmax(-1).tolist()  # 100% of the test rows


@pytest.mark.parametrize(
    ("kind", "task", "extra", "reason"),
    [
        ("xglm", "topic", {}, "PEFT puts virtual tokens first"),
        ("bert", "nli", {}, "PEFT's prompt tuning drops token_type_ids"),
        ("xlm-roberta", "topic", {"method": "full_ft"}, "only a prompt on an unchanged backbone"),
    ],
)
def test_what_peft_cannot_express_is_not_exported_and_the_artifact_says_why(
    kind, task, extra, reason, stand_ins, world_dir, tmp_path
):
    family, folder = ALL[kind], stand_ins[kind]
    _, tokenizer = load_backbone(folder)
    data = with_label_words(world_dir / task, tmp_path / task, single_token_words(tokenizer, world_dir, family, 3))
    cfg = TrainConfig(
        **{"method": "spt", "prompt_length": 4, "steps": 2, "batch_size": 8, "eval_every": 2, "max_length": 48, **extra}
    )
    train_prompt(folder, data, cfg, tmp_path / "prompt")
    export = read_json(tmp_path / "prompt" / "meta.json")["peft_export"]
    assert not export["exported"]
    assert reason in export["reason"]
    assert not (tmp_path / "prompt" / "peft").exists()
