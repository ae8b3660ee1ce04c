"""A model folder's weights in one safetensors file or in shards (as 8B checkpoints come from the Hub)."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
import torch
from transformers import AutoModelForCausalLM

from xlprompt.methods.ltp import TicketConfig, select_ticket
from xlprompt.methods.ticket import write_ticket
from xlprompt.models.backbone import load_backbone
from xlprompt.models.weights import INDEX, load_weights, weight_files, weights_bytes, weights_sha256
from xlprompt.runtime.io import load_tensors, sha256_file


@pytest.fixture(scope="module")
def sharded(stand_ins, tmp_path_factory):
    """The Llama stand-in saved again in shards of at most 20 kB, beside its one-file original."""
    folder = tmp_path_factory.mktemp("sharded") / "llama"
    shutil.copytree(stand_ins["llama"], folder)
    (folder / "model.safetensors").unlink()
    AutoModelForCausalLM.from_pretrained(stand_ins["llama"]).save_pretrained(folder, max_shard_size="20kB")
    return stand_ins["llama"], folder


def test_shards_load_as_the_one_file_checkpoint_does(sharded):
    single, folder = sharded
    files = weight_files(folder)
    assert len(files) > 2
    assert (folder / INDEX).exists()
    assert not (folder / "model.safetensors").exists()
    assert {n: t.tolist() for n, t in load_weights(folder).items()} == {
        n: t.tolist() for n, t in load_tensors(single / "model.safetensors").items()
    }
    assert weights_bytes(folder) == sum(f.stat().st_size for f in files)
    ids = torch.tensor([[3, 4, 5, 6]])
    with torch.no_grad():
        logits = [load_backbone(path)[0].eval()(input_ids=ids).logits for path in (single, folder)]
    assert torch.equal(logits[0], logits[1])


def test_a_checkpoint_is_recorded_by_its_files_digest(sharded):
    single, folder = sharded
    assert weights_sha256(single) == sha256_file(single / "model.safetensors")  # one file: its own digest
    digests = "".join(f"{sha256_file(path)}\n" for path in weight_files(folder))
    assert weights_sha256(folder) == hashlib.sha256(digests.encode()).hexdigest()


def test_a_ticket_of_a_sharded_backbone_is_the_ticket_of_its_one_file_copy(sharded, world_dir, tmp_path):
    from xlprompt.stages import finetune_mlm

    single, folder = sharded
    text = world_dir / "corpus" / "en.txt"
    quick = ["--steps", "2", "--batch-size", "4", "--lr", "1e-3"]
    finetune_mlm.main(["--backbone", str(folder), "--text", str(text), "--out", str(tmp_path / "ft"), *quick])
    summary = write_ticket(folder, tmp_path / "ft", tmp_path / "ticket", TicketConfig(sparsity=0.2))
    masks = load_tensors(tmp_path / "ticket" / "mask.safetensors")
    expected = select_ticket(load_weights(single), load_weights(tmp_path / "ft"), TicketConfig(sparsity=0.2))
    assert masks.keys() == expected.keys()
    assert all(torch.equal(masks[n], expected[n]) for n in masks)
    assert summary["inputs_sha256"]["backbone"] == weights_sha256(folder)


def test_a_folder_without_safetensors_weights_is_refused_with_how_to_convert(tmp_path):
    (tmp_path / "pytorch_model.bin").write_bytes(b"not loaded")
    with pytest.raises(ValueError, match=r"only \['pytorch_model.bin'\]; xlprompt loads weights from safetensors only"):
        weight_files(tmp_path)
    (tmp_path / INDEX).write_text(json.dumps({"metadata": {}}))
    with pytest.raises(ValueError, match="no weight_map naming the shards"):
        weight_files(tmp_path)
