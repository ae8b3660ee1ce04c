"""Writing the generated world (:mod:`xlprompt.data.world`) as data sets of the contract, plus its corpus."""

from __future__ import annotations

import logging
import random
from pathlib import Path

import pandas as pd

from xlprompt.data.contract import SPLITS, LabelSpace, write_labels, write_split
from xlprompt.data.world import (
    TopicSampler,
    WorldConfig,
    build_lexicon,
    corpus_documents,
    label_names,
    realise_languages,
    render,
    sample_examples,
    verbalizer_words,
)
from xlprompt.runtime.io import sha256_tree, write_json
from xlprompt.runtime.logs import progress
from xlprompt.runtime.settings import FAMILIES

logger = logging.getLogger(__name__)


def generate_world(cfg: WorldConfig, out: Path) -> None:
    """Write the whole world into ``out`` (which must be a fresh folder)."""
    lexicon = build_lexicon(cfg)
    languages = realise_languages(cfg, lexicon)
    write_json(
        out / "languages.json",
        [
            {
                "lang": s.code,
                "shared_vocab": s.shared_vocab,
                "word_order": s.word_order,
                "script": s.script,
                "morphology": s.morphology,
                "distance": s.distance,
            }
            for s in cfg.languages
        ],
    )

    sizes = {"train": cfg.train_per_class, "validation": cfg.dev_per_class, "test": cfg.test_per_class}
    for task in cfg.tasks:
        names = label_names(task, cfg.n_topics)
        words = verbalizer_words(task, cfg, lexicon)
        write_labels(out / task, LabelSpace(task, names, dict.fromkeys(FAMILIES, words)))
        for split in SPLITS:
            # One set of abstract examples per split, realised in every language: the test
            # sets are parallel, so languages differ only in how the same content is said.
            sampler = TopicSampler(cfg, lexicon, random.Random(f"{task}-{split}-{cfg.seed}"))
            examples = sample_examples(task, sampler, sizes[split], len(names))
            for code, lang in languages.items():
                rng = random.Random(f"{task}-{split}-{cfg.seed}-{code}-morph")
                rows = [
                    {
                        "id": f"{task}-{split}-{i:06d}",
                        "text": render(ex.events, lang, rng),
                        "text_pair": render(ex.pair, lang, rng) if ex.pair else None,
                        "label": ex.label,
                    }
                    for i, ex in enumerate(examples)
                ]
                write_split(pd.DataFrame(rows), out / task, code, split)
        logger.info("task %s: %d labels, %s examples per class per split", task, len(names), sizes)

    corpus = out / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    n_other = max(len(languages) - 1, 1)
    for code, lang in progress(languages.items(), desc="corpus", unit="lang"):
        share = cfg.english_share if code == "en" else (1 - cfg.english_share) / n_other
        n_docs = max(1, round(cfg.corpus_documents * share))
        (corpus / f"{code}.txt").write_text(
            "\n".join(corpus_documents(cfg, lexicon, lang, n_docs)) + "\n", encoding="utf-8"
        )
    write_json(
        corpus / "focus_words.json",
        {code: [lang.word(w) for w in lexicon.topic_names] for code, lang in languages.items()},
    )
    write_json(out / "manifest.json", sha256_tree(out))
