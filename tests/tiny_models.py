"""Faithful stand-ins for the advertised backbones: tiny, randomly initialised models of the real
architectures (XLMRoberta, Bert, XGLM, Bloom, MT5; Llama, Mistral, Qwen2, Qwen3, Gemma2, Gemma3), each with
its own tokenizer *class* and special tokens, the vocabulary trained here on the generated world's corpus.

What each real tokenizer does, and its stand-in reproduces (transformers 5 classes):
- xlm-roberta (XLMRobertaTokenizer, SentencePiece Unigram): ``<s> A </s>``, pair ``<s> A </s></s> B </s>``;
  ``<s>``=0, ``<pad>``=1, ``</s>``=2, ``<unk>``=3, ``<mask>`` last; no token_type_ids.
- bert (BertTokenizer, WordPiece, cased like mBERT): ``[CLS] A [SEP]``, pair ``[CLS] A [SEP] B [SEP]``
  with token_type_ids 0 for ``[CLS] A [SEP]`` and 1 for ``B [SEP]``; no bos/eos.
- xglm (XGLMTokenizer, Unigram): ``</s> A``, pair ``</s> A </s></s> B``; the input starts with ``</s>``.
- bloom (byte-level BPE, loaded as TokenizersBackend from ``BloomTokenizerFast``): no special tokens.
- mt5 (T5Tokenizer, Unigram): ``A </s>``, pair ``A </s> B </s>``; pad (0) is the decoder start.
- llama (Llama 3: byte-level BPE, ``tokenizer_class`` PreTrainedTokenizerFast, loaded as TokenizersBackend):
  ``<|begin_of_text|> A``, pair ``<|begin_of_text|> A <|begin_of_text|> B``; no pad token.
- mistral (v0.3: ``tokenizer_class`` LlamaTokenizer, BPE over SentencePiece pieces with byte fallback; transformers
  5 loads model type mistral as TokenizersBackend, or MistralCommonBackend where mistral-common is installed):
  ``<s> A``, pair ``<s> A <s> B``; no pad token.
- qwen2, qwen3 (Qwen2Tokenizer, byte-level BPE): no special tokens; ``<|endoftext|>`` is eos and pad.
- gemma2, gemma3_text (GemmaTokenizer, BPE with byte fallback, no prefix space): ``<bos> A``, pair
  ``<bos> A <bos> B``; ``<pad>``=0, ``<eos>``=1, ``<bos>``=2.

The decoder LLMs have 2 layers, grouped-query attention (4 heads, 2 key/value heads), rotary positions and a
gated MLP, their embeddings tied or untied as the pinned checkpoint has them (Mistral untied).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertTokenizer,
    BloomConfig,
    BloomForCausalLM,
    Gemma2Config,
    Gemma2ForCausalLM,
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaTokenizer,
    MistralConfig,
    MistralForCausalLM,
    MT5Config,
    MT5ForConditionalGeneration,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2Tokenizer,
    Qwen3Config,
    Qwen3ForCausalLM,
    T5Tokenizer,
    XGLMConfig,
    XGLMForCausalLM,
    XGLMTokenizer,
    XLMRobertaConfig,
    XLMRobertaForMaskedLM,
    XLMRobertaTokenizer,
)

FAMILY = {"xlm-roberta": "masked_lm", "bert": "masked_lm", "xglm": "causal_lm", "bloom": "causal_lm", "mt5": "seq2seq"}
# Today's decoder LLMs, kept apart so that the tests of the 2021-2022 backbones stay as they were; every
# test of the LLMs' own (tests/test_llms.py) runs on each, and FAMILY-wide tests take them through ALL.
LLM_FAMILY = dict.fromkeys(("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3_text"), "causal_lm")
ALL = {**FAMILY, **LLM_FAMILY}
# The class AutoTokenizer returns for each stand-in, as for the real backbone.
TOKENIZER_CLASS = {
    "xlm-roberta": "XLMRobertaTokenizer",
    "bert": "BertTokenizer",
    "xglm": "XGLMTokenizer",
    "bloom": "TokenizersBackend",
    "mt5": "T5Tokenizer",
    "llama": "TokenizersBackend",
    "mistral": "TokenizersBackend",  # its tokenizer_config names LlamaTokenizer; transformers 5 maps mistral here
    "qwen2": "Qwen2Tokenizer",
    "qwen3": "Qwen2Tokenizer",
    "gemma2": "GemmaTokenizer",
    "gemma3_text": "GemmaTokenizer",
}
# tokenizer_config.json's tokenizer_class as the pinned checkpoint writes it, where saving writes another.
SAVED_TOKENIZER_CLASS = {"bloom": "BloomTokenizerFast", "llama": "PreTrainedTokenizerFast"}
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


def _bpe(files: list[str], special: list[str], pre_tokenizer) -> Tokenizer:
    """A BPE vocabulary trained on the world's corpus, with ``special`` first."""
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizer
    byte_level = isinstance(pre_tokenizer, pre_tokenizers.ByteLevel)
    tok.train(
        files,
        trainers.BpeTrainer(
            vocab_size=VOCAB_SIZE,
            show_progress=False,
            special_tokens=special,
            initial_alphabet=pre_tokenizers.ByteLevel.alphabet() if byte_level else [],
        ),
    )
    if byte_level:
        tok.decoder = decoders.ByteLevel()
    return tok


def _vocab_and_merges(tok: Tokenizer) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """What the BPE tokenizer classes of transformers 5 take (``vocab=``, ``merges=``)."""
    model = json.loads(tok.to_str())["model"]
    return model["vocab"], [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]


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
        tok = _bpe(files, ["<unk>", "<s>", "</s>", "<pad>"], pre_tokenizers.ByteLevel(add_prefix_space=False))
        return PreTrainedTokenizerFast(
            tokenizer_object=tok, unk_token="<unk>", bos_token="<s>", eos_token="</s>", pad_token="<pad>"
        )
    if kind == "llama":  # Llama 3: byte-level BPE, <|begin_of_text|> before each text (its tokenizer.json)
        bos, eos = "<|begin_of_text|>", "<|end_of_text|>"
        tok = _bpe(files, [bos, eos], pre_tokenizers.ByteLevel(add_prefix_space=False))
        tok.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos}:1 $B:1", special_tokens=[(bos, tok.token_to_id(bos))]
        )
        return PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=bos, eos_token=eos)
    if kind == "mistral":  # SentencePiece pieces ("▁word"), BPE with byte fallback, <s> first
        metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
        vocab, merges = _vocab_and_merges(_bpe(files, ["<unk>", "<s>", "</s>"], metaspace))
        return LlamaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    if kind in ("qwen2", "qwen3"):  # byte-level BPE, no BOS: <|endoftext|> ends a text and pads
        vocab, merges = _vocab_and_merges(
            _bpe(files, ["<|endoftext|>"], pre_tokenizers.ByteLevel(add_prefix_space=False))
        )
        return Qwen2Tokenizer(vocab=vocab, merges=merges)
    if kind in ("gemma2", "gemma3_text"):  # SentencePiece pieces without a prefix space, <bos> first
        metaspace = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never")
        vocab, merges = _vocab_and_merges(_bpe(files, ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>"], metaspace))
        return GemmaTokenizer(vocab=vocab, merges=merges, add_bos_token=True)
    raise ValueError(f"no stand-in for {kind!r}; known: {sorted(ALL)}")


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
        **{kind: lambda kind=kind: _decoder_llm(kind, ids, special) for kind in LLM_FAMILY},
    }[kind]()
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    if kind in SAVED_TOKENIZER_CLASS:  # as the Hub checkpoint names it; transformers 5 loads it as TokenizersBackend
        config_path = Path(folder) / "tokenizer_config.json"
        config = json.loads(config_path.read_text(encoding="utf-8"))
        config["tokenizer_class"] = SAVED_TOKENIZER_CLASS[kind]
        config_path.write_text(json.dumps(config, indent=2), encoding="utf-8")
    return folder


def _decoder_llm(kind: str, ids: dict, special: dict):
    """A 2-layer decoder LLM of ``kind``'s real class: grouped-query attention (4 heads, 2 for keys and
    values), rotary positions, a gated MLP; its embeddings tied as the pinned checkpoint's are."""
    shape = {
        "hidden_size": 32,
        "intermediate_size": 64,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 8,
        "max_position_embeddings": 256,
        **ids,
        **special,
    }
    if kind == "llama":  # Llama 3.2 1B ties its embeddings
        return LlamaForCausalLM(LlamaConfig(**shape, tie_word_embeddings=True))
    if kind == "mistral":  # Mistral 7B v0.3 does not
        return MistralForCausalLM(MistralConfig(**shape, tie_word_embeddings=False, sliding_window=None))
    if kind == "qwen2":  # Qwen2.5 0.5B: tied, biases in q, k and v
        return Qwen2ForCausalLM(Qwen2Config(**shape, tie_word_embeddings=True))
    if kind == "qwen3":
        return Qwen3ForCausalLM(Qwen3Config(**shape, tie_word_embeddings=True))
    if kind == "gemma2":  # tied; sqrt(d)-scaled embeddings, soft-capped logits, alternating sliding windows
        return Gemma2ForCausalLM(Gemma2Config(**shape, query_pre_attn_scalar=8, sliding_window=16))
    return Gemma3ForCausalLM(Gemma3TextConfig(**shape, query_pre_attn_scalar=8, sliding_window=16))
