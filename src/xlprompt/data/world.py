"""A generated multilingual world: an English-like base language, languages derived from it
at controlled distances, three labelled tasks and an unlabeled pretraining corpus.

Everything is a pure function of a :class:`WorldConfig` (its seed included), so the same
config always gives the same files. The design follows the synthetic-language literature
(K et al. 2020 "Fake-English"; Dufter & Schutze 2020; Deshpande et al. 2022): each derived
language changes English along a few independent knobs.

Knobs of a language (see :class:`LanguageSpec`):
- ``shared_vocab``: share of English word types whose surface form the language keeps;
  the others get new words from a disjoint syllable inventory.
- ``word_order``: ``svo`` (as English), ``sov`` (verb-final) or ``reversed`` (every
  sentence mirrored).
- ``script``: ``latin`` or another alphabet (``greek``, ``cyrillic``) that rewrites every
  word, shared ones included; digits stay, like real numerals.
- ``morphology``: probability that a noun carries a case suffix glued to it (a fused
  subject / object / oblique marker of the language's own).

Anchors: numbers (digits) are the same in every language, as in real text; they occur
in every topic alike, so they align the languages' spaces without giving topics away.

Tasks, mirroring real benchmarks:
- ``topic`` (like SIB-200): a short document, one label per topic.
- ``nli`` (like XNLI): premise and hypothesis; entailment = the hypothesis says less than
  the premise, contradiction = it negates the premise's verb, neutral = it adds a fact the
  premise does not mention.
- ``paraphrase`` (like PAWS-X): two sentences with the same words; paraphrase when they
  describe the same event (active vs passive voice, or a moved phrase), not a paraphrase
  when agent and patient swap. Bag-of-words models cannot solve it.
- ``domain``: a coarse topic task, the topics grouped in pairs ("sports+health", ...), with
  its own examples. Related to ``topic`` as a target is to a good source in SPoT.
- ``rte`` (like RTE/CB next to MNLI): two-way entailment, ``nli``'s neutral and
  contradiction merged into not_entailment. Related to ``nli``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass

logger = logging.getLogger(__name__)

WORD_ORDERS = ("svo", "sov", "reversed")
SCRIPTS = ("latin", "greek", "cyrillic")
TASKS = ("topic", "nli", "paraphrase", "domain", "rte")
TOPIC_NAMES = ("sports", "health", "politics", "science", "travel", "music", "food", "weather")
NLI_LABELS = ("entailment", "neutral", "contradiction")
PARAPHRASE_LABELS = ("different", "paraphrase")
RTE_LABELS = ("entailment", "not_entailment")

# Function words of the base language. They are translated like any other word type.
FUNCTION_WORDS = ("the", "a", "in", "with", "and", "not", "is", "by", "this", "story", "about", ".")

# English syllables and the disjoint inventory of derived words: no derived surface form
# can coincide with an English one by accident.
_EN_ONSETS = "bdfgklmnprst"
_EN_VOWELS = "aeiou"
_DERIVED_ONSETS = ("c", "j", "q", "v", "w", "x", "y", "z", "h", "ch", "sh", "th")
_DERIVED_VOWELS = ("a", "e", "i", "o", "u", "y", "ai", "ou")
_TRANSLITERATION = {
    "greek": dict(zip("abcdefghijklmnopqrstuvwxyz", "αβψδεφγηιξκλμνοπθρστυωςχϋζ")),
    "cyrillic": dict(zip("abcdefghijklmnopqrstuvwxyz", "абцдефгхийклмнопярстужвшыз")),
}
# One letter per letter, so that transliteration never merges two words.
assert all(len(set(table.values())) == len(table) for table in _TRANSLITERATION.values())


# Distances: the weights of each knob in the scalar ``distance`` from English, in [0, 1].
DISTANCE_WEIGHTS = {"vocab": 0.5, "order": 0.2, "script": 0.2, "morphology": 0.1}
_ORDER_DISTANCE = {"svo": 0.0, "sov": 0.5, "reversed": 1.0}


@dataclass(frozen=True)
class LanguageSpec:
    """One language of the world, as a set of knob values relative to English."""

    code: str  # the language's name in every table and folder
    shared_vocab: float = 1.0  # share of English word types whose surface form it keeps; others get new words
    word_order: str = "svo"  # svo as English, sov (verb last), reversed (every sentence mirrored)
    script: str = "latin"  # latin as English, or greek / cyrillic: every word rewritten, digits kept
    morphology: float = 0.0  # probability that a noun carries a case suffix glued to it

    def __post_init__(self) -> None:
        if not 0.0 <= self.shared_vocab <= 1.0:
            raise ValueError(f"language {self.code}: shared_vocab must be in [0, 1], got {self.shared_vocab}")
        if self.word_order not in WORD_ORDERS:
            raise ValueError(f"language {self.code}: word_order must be one of {WORD_ORDERS}, got {self.word_order!r}")
        if self.script not in SCRIPTS:
            raise ValueError(f"language {self.code}: script must be one of {SCRIPTS}, got {self.script!r}")
        if not 0.0 <= self.morphology <= 1.0:
            raise ValueError(f"language {self.code}: morphology must be in [0, 1], got {self.morphology}")

    @property
    def distance(self) -> float:
        """One scalar distance from English: a weighted sum of the knobs (0 = English)."""
        w = DISTANCE_WEIGHTS
        return round(
            w["vocab"] * (1.0 - self.shared_vocab)
            + w["order"] * _ORDER_DISTANCE[self.word_order]
            + w["script"] * (self.script != "latin")
            + w["morphology"] * self.morphology,
            4,
        )


@dataclass(frozen=True)
class WorldConfig:
    """Everything that determines a world. Defaults are the demo's."""

    seed: int = 0  # everything in the world follows from this seed
    languages: tuple[LanguageSpec, ...] = (LanguageSpec("en"),)  # English first; the others derive from it
    n_topics: int = 6  # topic classes (SIB-200 has 7)
    topic_nouns: int = 8  # nouns of each topic's own lexicon
    topic_verbs: int = 4  # verbs of each topic's own lexicon
    topic_adjectives: int = 4  # adjectives of each topic's own lexicon
    generic_nouns: int = 16  # nouns every topic uses (the generic verbalizer's label words among them)
    generic_verbs: int = 8  # verbs every topic uses
    generic_adjectives: int = 8  # adjectives every topic uses
    topic_word_rate: float = 0.6  # share of content words drawn from the topic's lexicon
    label_as_noun_rate: float = 0.25  # share of topic nouns that are the topic's name itself
    meta_sentence_rate: float = 0.5  # share of corpus documents ending "this story is about <topic>"
    anchor_rate: float = 0.3  # share of sentences carrying a shared number
    corpus_documents: int = 120_000  # unlabeled pretraining documents, all languages together
    english_share: float = 0.25  # share of corpus documents in English; the rest split evenly
    train_per_class: int = 100  # labelled training examples per class and language
    dev_per_class: int = 30  # validation examples per class and language (model selection)
    test_per_class: int = 100  # test examples per class and language (every reported number)
    verbalizer: str = "generic"  # "generic": arbitrary generic nouns; "label": the label names
    tasks: tuple[str, ...] = TASKS  # the labelled tasks the world generates

    def __post_init__(self) -> None:
        codes = [lang.code for lang in self.languages]
        if "en" not in codes:
            raise ValueError("world.languages must include 'en', the base language every other derives from")
        if len(set(codes)) != len(codes):
            raise ValueError(f"world.languages: duplicate language codes in {codes}")
        if not 2 <= self.n_topics <= len(TOPIC_NAMES):
            raise ValueError(f"world.n_topics must be in [2, {len(TOPIC_NAMES)}], got {self.n_topics}")
        if self.verbalizer not in ("generic", "label"):
            raise ValueError(f"world.verbalizer must be 'generic' or 'label', got {self.verbalizer!r}")
        if self.generic_nouns < self.n_topics:
            raise ValueError("world.generic_nouns must be at least n_topics (generic nouns serve as verbalizer words)")
        for task in self.tasks:
            if task not in TASKS:
                raise ValueError(f"world.tasks: unknown task {task!r}; allowed: {TASKS}")
        if "domain" in self.tasks and self.n_topics < 3:
            raise ValueError("world.n_topics must be >= 3 for task domain (pairs of topics, at least 2 domains)")


# --------------------------------------------------------------------------------------
# Lexicon
# --------------------------------------------------------------------------------------


@dataclass
class Lexicon:
    """English word types by class; topic-specific lists are indexed by topic."""

    topic_names: list[str]
    topic_nouns: list[list[str]]
    topic_verbs: list[list[str]]
    topic_adjectives: list[list[str]]
    generic_nouns: list[str]
    generic_verbs: list[str]
    generic_adjectives: list[str]
    numbers: list[str]

    def content_words(self) -> list[str]:
        words = list(self.topic_names)
        for group in (self.topic_nouns, self.topic_verbs, self.topic_adjectives):
            for per_topic in group:
                words.extend(per_topic)
        words += self.generic_nouns + self.generic_verbs + self.generic_adjectives
        return words


def _english_word(rng: random.Random, taken: set[str], syllables: int) -> str:
    while True:
        word = "".join(rng.choice(_EN_ONSETS) + rng.choice(_EN_VOWELS) for _ in range(syllables))
        if word not in taken and word not in FUNCTION_WORDS:
            taken.add(word)
            return word


def _derived_word(rng: random.Random, taken: set[str]) -> str:
    while True:
        n = rng.choice((2, 2, 3))
        word = "".join(rng.choice(_DERIVED_ONSETS) + rng.choice(_DERIVED_VOWELS) for _ in range(n))
        if word not in taken:
            taken.add(word)
            return word


def build_lexicon(cfg: WorldConfig) -> Lexicon:
    rng = random.Random(f"lexicon-{cfg.seed}")
    taken: set[str] = set(TOPIC_NAMES)

    def words(n: int, syllables: int) -> list[str]:
        return [_english_word(rng, taken, syllables) for _ in range(n)]

    topics = range(cfg.n_topics)
    return Lexicon(
        topic_names=list(TOPIC_NAMES[: cfg.n_topics]),
        topic_nouns=[words(cfg.topic_nouns, 2) for _ in topics],
        topic_verbs=[words(cfg.topic_verbs, 2) for _ in topics],
        topic_adjectives=[words(cfg.topic_adjectives, 2) for _ in topics],
        generic_nouns=words(cfg.generic_nouns, 2),
        generic_verbs=words(cfg.generic_verbs, 2),
        generic_adjectives=words(cfg.generic_adjectives, 2),
        numbers=[str(n) for n in (3, 7, 12, 20, 45, 99, 150, 365, 1000, 2024)],
    )


@dataclass
class Language:
    """A realised language: a word map from English plus its grammar knobs."""

    spec: LanguageSpec
    words: dict[str, str]  # English word type -> surface form in this language
    case_suffixes: dict[str, str]  # role -> suffix ("subj", "obj", "obl")

    def word(self, english: str) -> str:
        return self.words.get(english, english)


def realise_languages(cfg: WorldConfig, lexicon: Lexicon) -> dict[str, Language]:
    """Give every language its word map. Derived forms are unique across the whole world."""
    taken: set[str] = set(lexicon.content_words()) | set(FUNCTION_WORDS)
    vocabulary = list(FUNCTION_WORDS) + lexicon.content_words()
    languages = {}
    for spec in cfg.languages:
        rng = random.Random(f"language-{cfg.seed}-{spec.code}")
        # Choose the shared word types by a seeded shuffle so shared_vocab is exact.
        order = list(vocabulary)
        rng.shuffle(order)
        n_shared = round(spec.shared_vocab * len(order))
        shared = set(order[:n_shared])
        words = {w: (w if w in shared else _derived_word(rng, taken)) for w in vocabulary}
        words["."] = "."  # punctuation is shared by every language
        suffixes = {role: _derived_word(rng, taken)[:2] for role in ("subj", "obj", "obl")}
        if spec.script != "latin":
            table = _TRANSLITERATION[spec.script]
            words = {w: "".join(table.get(ch, ch) for ch in form) for w, form in words.items()}
            suffixes = {r: "".join(table.get(ch, ch) for ch in s) for r, s in suffixes.items()}
        languages[spec.code] = Language(spec, words, suffixes)
    return languages


# --------------------------------------------------------------------------------------
# Sentences: an abstract event, then its realisation in a language
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NounPhrase:
    noun: str
    adjective: str | None = None
    determiner: str = "the"


@dataclass(frozen=True)
class Event:
    """Who does what to whom, with optional place and number: language-independent."""

    agent: NounPhrase
    verb: str
    patient: NounPhrase
    place: NounPhrase | None = None
    number: str | None = None
    negated: bool = False
    passive: bool = False
    place_first: bool = False


class TopicSampler:
    """Draws content words for a topic: topic-specific with probability topic_word_rate."""

    def __init__(self, cfg: WorldConfig, lexicon: Lexicon, rng: random.Random) -> None:
        self.cfg, self.lex, self.rng = cfg, lexicon, rng

    def noun(self, topic: int) -> str:
        if self.rng.random() < self.cfg.topic_word_rate:
            if self.rng.random() < self.cfg.label_as_noun_rate:
                return self.lex.topic_names[topic]
            return self.rng.choice(self.lex.topic_nouns[topic])
        return self.rng.choice(self.lex.generic_nouns)

    def verb(self, topic: int) -> str:
        if self.rng.random() < self.cfg.topic_word_rate:
            return self.rng.choice(self.lex.topic_verbs[topic])
        return self.rng.choice(self.lex.generic_verbs)

    def adjective(self, topic: int) -> str | None:
        if self.rng.random() < 0.5:
            return None
        if self.rng.random() < self.cfg.topic_word_rate:
            return self.rng.choice(self.lex.topic_adjectives[topic])
        return self.rng.choice(self.lex.generic_adjectives)

    def noun_phrase(self, topic: int) -> NounPhrase:
        return NounPhrase(self.noun(topic), self.adjective(topic), self.rng.choice(("the", "the", "a")))

    def event(self, topic: int) -> Event:
        agent = self.noun_phrase(topic)
        patient = self.noun_phrase(topic)
        while patient.noun == agent.noun:
            patient = NounPhrase(self.noun(topic), patient.adjective, patient.determiner)
        place = NounPhrase(self.noun(topic)) if self.rng.random() < 0.3 else None
        number = self.rng.choice(self.lex.numbers) if self.rng.random() < self.cfg.anchor_rate else None
        return Event(agent, self.verb(topic), patient, place, number)


def realise(event: Event, lang: Language, rng: random.Random) -> list[str]:
    """Turn an event into the tokens of one language, applying its order and morphology."""

    def phrase(np: NounPhrase, role: str) -> list[str]:
        noun = lang.word(np.noun)
        if lang.spec.morphology > 0 and rng.random() < lang.spec.morphology:
            noun = noun + lang.case_suffixes[role]
        out = [lang.word(np.determiner)]
        if np.adjective:
            out.append(lang.word(np.adjective))
        return [*out, noun]

    subject, obj = (event.patient, event.agent) if event.passive else (event.agent, event.patient)
    verb = ([lang.word("not")] if event.negated else []) + [lang.word(event.verb)]
    if event.passive:
        # "the patient is VERB by the agent": the agent moves into a by-phrase.
        verb = [lang.word("is"), *verb]
        tail = [lang.word("by"), *phrase(obj, "obl")]
        core = phrase(subject, "subj") + (tail + verb if lang.spec.word_order == "sov" else verb + tail)
    elif lang.spec.word_order == "sov":
        core = phrase(subject, "subj") + phrase(obj, "obj") + verb
    else:
        core = phrase(subject, "subj") + verb + phrase(obj, "obj")
    extra: list[str] = []
    if event.place is not None:
        extra = [lang.word("in"), *phrase(event.place, "obl")]
    if event.number is not None:
        extra += [lang.word("with"), event.number]
    tokens = extra + core if event.place_first else core + extra
    if lang.spec.word_order == "reversed":
        tokens.reverse()
    return [*tokens, "."]


# --------------------------------------------------------------------------------------
# Task examples (language-independent), realised per language
# --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Example:
    events: tuple[Event, ...]
    label: int
    pair: tuple[Event, ...] | None = None


def topic_example(sampler: TopicSampler, topic: int) -> Example:
    n = sampler.rng.choice((2, 3))
    return Example(tuple(sampler.event(topic) for _ in range(n)), topic)


def nli_example(sampler: TopicSampler, label: int) -> Example:
    rng = sampler.rng
    topic = rng.randrange(sampler.cfg.n_topics)
    premise = sampler.event(topic)
    name = NLI_LABELS[label]
    if name == "entailment":
        # Say less: drop adjectives, place or number.
        hyp = Event(
            NounPhrase(premise.agent.noun),
            premise.verb,
            NounPhrase(premise.patient.noun),
            premise.place if rng.random() < 0.5 else None,
        )
    elif name == "contradiction":
        hyp = Event(
            NounPhrase(premise.agent.noun, premise.agent.adjective),
            premise.verb,
            NounPhrase(premise.patient.noun),
            negated=True,
        )
    else:
        # Add a fact: an adjective the premise does not give, or a place it does not name.
        fresh = sampler.adjective(topic) or rng.choice(sampler.lex.generic_adjectives)
        while fresh in (premise.agent.adjective, premise.patient.adjective):
            fresh = rng.choice(sampler.lex.generic_adjectives + sampler.lex.topic_adjectives[topic])
        if premise.place is None and rng.random() < 0.5:
            hyp = Event(
                NounPhrase(premise.agent.noun),
                premise.verb,
                NounPhrase(premise.patient.noun),
                NounPhrase(sampler.noun(topic)),
            )
        else:
            hyp = Event(NounPhrase(premise.agent.noun, fresh), premise.verb, NounPhrase(premise.patient.noun))
    return Example((premise,), label, (hyp,))


def paraphrase_example(sampler: TopicSampler, label: int) -> Example:
    rng = sampler.rng
    base = sampler.event(rng.randrange(sampler.cfg.n_topics))
    voice = rng.random() < 0.5
    if PARAPHRASE_LABELS[label] == "paraphrase":
        other = Event(
            base.agent, base.verb, base.patient, base.place, base.number, passive=voice, place_first=not voice
        )
    else:
        # Same words, agent and patient swapped: a different event.
        other = Event(base.patient, base.verb, base.agent, base.place, base.number, passive=voice)
    return Example((base,), label, (other,))


def domain_example(sampler: TopicSampler, domain: int) -> Example:
    """A topic document labelled with its topic's group: topics 2k and 2k+1 form domain k."""
    topics = [t for t in (2 * domain, 2 * domain + 1) if t < sampler.cfg.n_topics]
    return Example(topic_example(sampler, sampler.rng.choice(topics)).events, domain)


def rte_example(sampler: TopicSampler, label: int) -> Example:
    """Two-way entailment: not_entailment is nli's neutral or contradiction, half each."""
    nli_label = 0 if label == 0 else sampler.rng.choice((1, 2))
    example = nli_example(sampler, nli_label)
    return Example(example.events, label, example.pair)


def domain_names(n_topics: int) -> list[str]:
    return ["+".join(TOPIC_NAMES[t] for t in range(first, min(first + 2, n_topics))) for first in range(0, n_topics, 2)]


def label_names(task: str, n_topics: int) -> list[str]:
    """Label names of a task of a world with ``n_topics`` topics."""
    if task == "topic":
        return list(TOPIC_NAMES[:n_topics])
    if task == "domain":
        return domain_names(n_topics)
    return list({"nli": NLI_LABELS, "paraphrase": PARAPHRASE_LABELS, "rte": RTE_LABELS}[task])


def verbalizer_words(task: str, cfg: WorldConfig, lexicon: Lexicon) -> list[str]:
    """English words that stand for the labels at the mask slot.

    ``generic`` (default) uses generic nouns, which the corpus spreads evenly over topics:
    the backbone alone cannot map a document to them, so whatever accuracy a method reaches
    is what its trained prompt (or weights) learned. ``label`` uses the label names, which
    the corpus ties to their topics (zero-shot prompting already works then).
    """
    names = label_names(task, cfg.n_topics)
    if cfg.verbalizer == "label" and task == "topic":
        return names
    return lexicon.generic_nouns[: len(names)]


def sample_examples(task: str, sampler: TopicSampler, per_class: int, n_classes: int) -> list[Example]:
    make = {
        "topic": topic_example,
        "nli": nli_example,
        "paraphrase": paraphrase_example,
        "domain": domain_example,
        "rte": rte_example,
    }[task]
    examples = [make(sampler, label) for label in range(n_classes) for _ in range(per_class)]
    sampler.rng.shuffle(examples)
    return examples


def render(events: tuple[Event, ...], lang: Language, rng: random.Random) -> str:
    return " ".join(tok for event in events for tok in realise(event, lang, rng))


def corpus_documents(cfg: WorldConfig, lexicon: Lexicon, lang: Language, n: int) -> Iterator[str]:
    """Unlabeled documents of one language for masked-LM pretraining."""
    rng = random.Random(f"corpus-{cfg.seed}-{lang.spec.code}")
    sampler = TopicSampler(cfg, lexicon, rng)
    meta = [lang.word(w) for w in ("this", "story", "is", "about")]
    for _ in range(n):
        topic = rng.randrange(cfg.n_topics)
        events = [sampler.event(topic) for _ in range(rng.choice((1, 2, 3)))]
        # Negation and passive voice appear in the corpus too, so the backbone knows them.
        events = [
            Event(
                e.agent, e.verb, e.patient, e.place, e.number, negated=rng.random() < 0.15, passive=rng.random() < 0.2
            )
            for e in events
        ]
        text = render(tuple(events), lang, rng)
        if rng.random() < cfg.meta_sentence_rate:
            tokens = [*meta, lang.word(lexicon.topic_names[topic]), "."]
            if lang.spec.word_order == "reversed":
                tokens = [*tokens[-2::-1], "."]
            text += " " + " ".join(tokens)
        yield text
