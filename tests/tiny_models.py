"""Faithful stand-ins for the advertised backbones: tiny, randomly initialised models of the real
architectures (XLMRoberta, Bert, XGLM, Bloom, MT5), each with its own tokenizer *class* and special
tokens, the vocabulary trained here on the generated world's corpus.

What each real tokenizer does, and its stand-in reproduces (transformers 5 classes):
- xlm-roberta (XLMRobertaTokenizer, SentencePiece Unigram): ``<s> A </s>``, pair ``<s> A </s></s> B </s>``;
  ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>`` last; no token_type_ids.
- bert (BertTokenizer, WordPiece, cased like mBERT): ``[CLS] A [SEP]``, pair ``[CLS] A [SEP] B [SEP]``
  with token_type_ids 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``; no bos/eos.
- xglm (XGLMTokenizer, Unigram): ``</s> A``, pair ``</s> A </s></s> B``; the input starts with ``</s>``.
- bloom (byte-level BPE, loaded as TokenizersBackend from ``BloomTokenizerFast``): no special tokens.
- mt5 (T5Tokenizer, Unigram): ``A </s>``, pair ``A </s> B </s>``; pad (0) is the decoder start.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    BloomConfig,
    BloomForCausalLM,
    MT5Config,
    MT5ForConditionalGeneration,
    PreTrainedTokenizerFast,
    T5Tokenizer,
    XGLMConfig,
    XGLMForCausalLM,
    XGLMTokenizer,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizer,
)

FAMILY = {"xlm-roberta": "masked_lm", "bert": "masked_lm", "xglm": "causal_lm", "bloom": "causal_lm", "mt5": "seq2seq"}
# The class AutoTokenizer returns for each stand-in, as for the real backbone.
TOKENIZER_CLASS = {
    "xlm-roberta": "XLMRobertaTokenizer",
    "bert": "BertTokenizer",
    "xglm": "XGLMTokenizer",
    "bloom": "TokenizersBackend",
    "mt5": "T5Tokenizer",
}
POSITIONS = 48 + 16 + 2  # max length + longest prompt + XLM-R's offset
VOCAB_SIZE = 700


def _corpus(world_dir: Path) -> list[str]:
    return [str(p) for p in sorted((Path(world_dir) / "corpus").glob("*.txt"))]


def _unigram_vocab(files: list[str], special: list[str]) -> list[tuple[str, float]]:
    """A SentencePiece-style Unigram vocabulary (pieces with log-probabilities), specials first."""
    tok = Tokenizer(models.Unigram())
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tok.train(
        files,
        trainers.UnigramTrainer(vocab_size=VOCAB_SIZE, special_tokens=special, unk_token="<unk>", show_progress=False),
    )
    return [(piece, float(score)) for piece, score in json.loads(tok.to_str())["model"]["vocab"]]


def build_tokenizer(kind: str, world_dir: Path):
    """``kind``'s own tokenizer class with a vocabulary trained on the world's corpus."""
    files = _corpus(world_dir)
    if kind == "bert":
        tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
        tok.normalizer = normalizers.BertNormalizer(lowercase=False, strip_accents=False)
        tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
        tok.train(
            files,
            trainers.WordPieceTrainer(
                vocab_size=VOCAB_SIZE,
                show_progress=False,
                special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"],
            ),
        )
        return BertTokenizer(vocab=tok.get_vocab(), do_lower_case=False)
    if kind == "xlm-roberta":
        return XLMRobertaTokenizer(vocab=_unigram_vocab(files, ["<s>", "<pad>", "</s>", "<unk>"]))
    if kind == "xglm":
        return XGLMTokenizer(vocab=_unigram_vocab(files, ["<s>", "<pad>", "</s>", "<unk>"]))
    if kind == "mt5":
        return T5Tokenizer(vocab=_unigram_vocab(files, ["<pad>", "</s>", "<unk>"]), extra_ids=10)
    if kind == "bloom":  # byte-level BPE; BLOOM's tokenizer adds no special tokens
        tok = Tokenizer(models.BPE())
        tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
        tok.decoder = decoders.ByteLevel()
        tok.train(
            files,
            trainers.BpeTrainer(
                vocab_size=VOCAB_SIZE,
                show_progress=False,
                special_tokens=["<unk>", "<s>", "</s>", "<pad>"],
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
            ),
        )
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
        )
    raise ValueError(f"no stand-in for {kind!r}; known: {sorted(FAMILY)}")


def build_tiny(kind: str, world_dir: Path, folder: Path, tokenizer=None) -> Path:
    """A randomly initialised model of ``kind``'s real architecture with its own tokenizer, saved as a
    Hugging Face folder. ``tokenizer``: reuse one already built by :func:`build_tokenizer`."""
    tokenizer = tokenizer if tokenizer is not None else build_tokenizer(kind, world_dir)
    torch.manual_seed(0)
    ids = {"vocab_size": len(tokenizer), "pad_token_id": tokenizer.pad_token_id}
    special = {"bos_token_id": tokenizer.bos_token_id, "eos_token_id": tokenizer.eos_token_id}
    model = {
        "xlm-roberta": lambda: XLMRobertaForMaskedLM(
            XLMRobertaConfig(
                **ids,
                **special,
                hidden_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=POSITIONS,
                type_vocab_size=1,
            )
        ),
        "bert": lambda: BertForMaskedLM(
            BertConfig(
                **ids,
                hidden_size=32,
                num_hidden_layers=1,
                num_attention_heads=2,
                intermediate_size=64,
                max_position_embeddings=POSITIONS,
                type_vocab_size=2,
            )
        ),
        "xglm": lambda: XGLMForCausalLM(
            XGLMConfig(  # scale_embedding: the token embeddings are x sqrt(32)
                **ids,
                **special,
                d_model=32,
                ffn_dim=64,
                num_layers=1,
                attention_heads=2,
                max_position_embeddings=POSITIONS,
            )
        ),
        "bloom": lambda: BloomForCausalLM(BloomConfig(**ids, **special, hidden_size=32, n_layer=1, n_head=2)),
        "mt5": lambda: MT5ForConditionalGeneration(
            MT5Config(
                **ids,
                eos_token_id=tokenizer.eos_token_id,
                decoder_start_token_id=tokenizer.pad_token_id,
                d_model=32,
                d_ff=64,
                d_kv=16,
                num_layers=1,
                num_heads=2,
            )
        ),
    }[kind]()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if kind == "bloom":  # as bigscience/bloom-560m names it; transformers 5 loads it as TokenizersBackend
        config_path = Path(folder) / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["tokenizer_class"] = "BloomTokenizerFast"
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder
