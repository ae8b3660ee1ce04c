"""The tiny offline backbone: a WordPiece tokenizer and an XLM-R-architecture masked LM.

Both are saved as an ordinary Hugging Face folder, so everything downstream loads them with
``AutoTokenizer`` / ``AutoModelForMaskedLM`` exactly as it would load xlm-roberta-base.
"""

from __future__ import annotations

import logging
import unicodedata
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from transformers import PreTrainedTokenizerFast, XLMRobertaConfig, XLMRobertaForMaskedLM

from xlprompt.runtime.io import read_utf8
from xlprompt.runtime.settings import BackboneShape

logger = logging.getLogger(__name__)

SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>", "<mask>")  # XLM-R's ids 0..3, mask last


def learn_vocabulary(corpus_files: Iterable[Path], vocab_size: int, min_frequency: int = 2) -> dict[str, int]:
    """A WordPiece vocabulary, deterministically: special tokens, every character (as a word
    start and as a ``##`` continuation, so any word can be spelled), then whole words by
    descending frequency (ties broken alphabetically) until ``vocab_size``.

    The tokenizers library's WordPiece trainer breaks frequency ties differently from run to
    run (three different vocabularies in four runs on the demo corpus), which would make
    the same seed give different models.
    """
    counts: Counter[str] = Counter()
    for path in corpus_files:
        for line in read_utf8(path).splitlines():
            counts.update(unicodedata.normalize("NFC", line).split())
    chars = sorted({ch for word in counts for ch in word})
    tokens = list(SPECIAL_TOKENS) + chars + [f"##{ch}" for ch in chars]
    if vocab_size < len(tokens):
        raise ValueError(
            f"vocab_size {vocab_size} is below the {len(tokens)} special and character tokens the corpus needs"
        )
    seen = set(tokens)
    ranked = sorted(
        (w for w, c in counts.items() if c >= min_frequency and w not in seen), key=lambda w: (-counts[w], w)
    )
    tokens += ranked[: vocab_size - len(tokens)]
    return {token: index for index, token in enumerate(tokens)}


def train_tokenizer(corpus_files: Iterable[Path], vocab_size: int) -> PreTrainedTokenizerFast:
    """WordPiece over whitespace-split words, with XLM-R's special tokens and pair template."""
    vocab = learn_vocabulary(corpus_files, vocab_size)
    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="<unk>", max_input_chars_per_word=64))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tok.decoder = decoders.WordPiece()
    bos, eos = vocab["<s>"], vocab["</s>"]
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", bos), ("</s>", eos)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<s>",
        eos_token="</s>",
        sep_token="</s>",
        cls_token="<s>",
        unk_token="<unk>",
        pad_token="<pad>",
        mask_token="<mask>",
    )


def build_model(tokenizer: PreTrainedTokenizerFast, shape: BackboneShape, seed: int) -> XLMRobertaForMaskedLM:
    torch.manual_seed(seed)
    config = XLMRobertaConfig(
        vocab_size=len(tokenizer),
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        intermediate_size=shape.ffn,
        hidden_dropout_prob=shape.dropout,
        attention_probs_dropout_prob=shape.dropout,
        # XLM-R positions start after the padding index, hence the + 2.
        max_position_embeddings=shape.max_length + shape.max_prompt_length + 2,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
    )
    # Eager attention: about 1.3x faster than sdpa with padding masks on 2 CPU cores.
    config._attn_implementation = "eager"
    return XLMRobertaForMaskedLM(config)
