"""Instruction tasks with checkable answers, for training and scoring the small demo model.

Each task makes (question, answer) pairs from a seeded random generator and checks a model's
answer. Items are split into train and held-out by a stable hash of the question, so evaluation
only ever sees questions the model was not trained on (next-book has only 65 questions, so it
is a recall test and is scored on all of them).

The long tasks (count, spell, reverse_long, sort_long, verse) have answers of 24-64 tokens with
the demo's tokenizer, so a model trained on them fills an answer of two or more blocks. Their
generators are new functions: the arithmetic and short word tasks, and so their held-out items,
are unchanged. Word lists and verses were taken from Debian's bible-kjv text (the pre-training
text); tests/test_demo_tasks_long.py checks them against it.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Callable
from dataclasses import dataclass

BOOKS = [
    "Genesis", "Exodus", "Leviticus", "Numbers", "Deuteronomy", "Joshua", "Judges", "Ruth",
    "1 Samuel", "2 Samuel", "1 Kings", "2 Kings", "1 Chronicles", "2 Chronicles", "Ezra",
    "Nehemiah", "Esther", "Job", "Psalms", "Proverbs", "Ecclesiastes", "Song of Solomon",
    "Isaiah", "Jeremiah", "Lamentations", "Ezekiel", "Daniel", "Hosea", "Joel", "Amos",
    "Obadiah", "Jonah", "Micah", "Nahum", "Habakkuk", "Zephaniah", "Haggai", "Zechariah",
    "Malachi", "Matthew", "Mark", "Luke", "John", "Acts", "Romans", "1 Corinthians",
    "2 Corinthians", "Galatians", "Ephesians", "Philippians", "Colossians", "1 Thessalonians",
    "2 Thessalonians", "1 Timothy", "2 Timothy", "Titus", "Philemon", "Hebrews", "James",
    "1 Peter", "2 Peter", "1 John", "2 John", "3 John", "Jude", "Revelation",
]

WORDS = [
    "apple", "bread", "cloud", "dove", "earth", "field", "grape", "house", "iron", "king",
    "lamb", "moon", "night", "olive", "river", "stone", "tree", "water", "wind", "gold",
    "sea", "star", "fire", "light", "seed", "salt", "wine", "horse", "sheep", "city",
]

# Lower-case words of 13-20 letters in the KJV: spelt with hyphens, 25-39 tokens.
SPELL_WORDS = [
    "accomplishing", "accomplishment", "acknowledgement", "acknowledgeth", "acknowledging",
    "administration", "administrations", "affectionately", "blasphemously", "bloodguiltiness",
    "bountifulness", "brokenhearted", "circumspectly", "communication", "communications",
    "concupiscence", "confectionaries", "congregations", "consecrations", "constellations",
    "contemptuously", "contradicting", "contradiction", "controversies", "covenantbreakers",
    "deceitfulness", "deceivableness", "demonstration", "determination", "disappointeth",
    "dissimulation", "doubletongued", "dwellingplace", "dwellingplaces", "establishment",
    "evilfavouredness", "fellowcitizens", "fellowdisciples", "fellowhelpers", "fellowlabourer",
    "fellowlabourers", "fellowprisoner", "fellowservant", "fellowservants", "fellowsoldier",
    "fellowworkers", "firstbegotten", "foreknowledge", "forgetfulness", "forgivenesses",
    "grapegatherer", "grapegatherers", "grapegleanings", "handkerchiefs", "imprisonments",
    "incorruptible", "intercessions", "intermeddleth", "interpretation", "interpretations",
    "justification", "kneadingtroughs", "lasciviousness", "longsuffering", "lookingglasses",
    "maliciousness", "manifestation", "masterbuilder", "moneychangers", "notwithstanding",
    "overspreading", "plenteousness", "predestinated", "presumptuously", "principalities",
    "prognosticators", "purifications", "reconciliation", "reproachfully", "righteousness",
    "righteousnesses", "sanctification", "shamefacedness", "sheepshearers", "shoulderpieces",
    "signification", "stonesquarers", "strengthenedst", "strengtheneth", "strengthening",
    "stumblingblock", "stumblingblocks", "stumblingstone", "superscription", "superstitious",
    "supplications", "swaddlingband", "sweetsmelling", "tenderhearted", "thanksgivings",
    "threshingfloor", "threshingfloors", "threshingplace", "transgressest", "transgresseth",
    "transgressing", "transgression", "transgressions", "transgressors", "treacherously",
    "trucebreakers", "uncircumcised", "uncircumcision", "uncleannesses", "uncorruptible",
    "uncorruptness", "understandest", "understandeth", "understanding", "unprofitableness",
    "unreproveable", "unrighteously", "unrighteousness", "whereinsoever", "whithersoever",
    "womenservants",
]

# Lower-case KJV words of three tokens each with the demo's tokenizer: lists of 9-14 of them
# make answers of 26-43 tokens (the shorter WORDS are one token each).
LIST_WORDS = [
    "abode", "abroad", "always", "apostles", "atonement", "blemish", "bones", "brake",
    "branches", "cherubims", "choose", "countries", "crown", "daily", "divided", "dominion",
    "edge", "endureth", "escape", "escaped", "everlasting", "exalted", "false", "fifth",
    "fowls", "gospel", "harvest", "horns", "hurt", "indeed", "journey", "length", "linen",
    "lying", "nakedness", "named", "next", "officers", "precious", "raiment", "reason",
    "remnant", "rent", "saints", "scattered", "season", "seventy", "shadow", "slaughter",
    "speaketh", "strange", "testimony", "think", "trespass", "troubled", "vanity", "villages",
    "violence", "widow", "worthy",
]

# Well-known verses of 24-64 tokens, verbatim from bible-kjv. A verse cannot be worked out from
# its reference, so this is a recall task, like next_book.
VERSES = {
    "John 3:16": (
        "For God so loved the world, that he gave his only begotten Son, that whosoever "
        "believeth in him should not perish, but have everlasting life."),
    "Psalms 23:4": (
        "Yea, though I walk through the valley of the shadow of death, I will fear no "
        "evil: for thou art with me; thy rod and thy staff they comfort me."),
    "Psalms 23:6": (
        "Surely goodness and mercy shall follow me all the days of my life: and I will "
        "dwell in the house of the LORD for ever."),
    "Romans 8:28": (
        "And we know that all things work together for good to them that love God, to "
        "them who are the called according to his purpose."),
    "Matthew 6:33": (
        "But seek ye first the kingdom of God, and his righteousness; and all these "
        "things shall be added unto you."),
    "Matthew 11:28": (
        "Come unto me, all ye that labour and are heavy laden, and I will give you rest."),
    "John 1:1": "In the beginning was the Word, and the Word was with God, and the Word was God.",
    "John 14:6": (
        "Jesus saith unto him, I am the way, the truth, and the life: no man cometh unto "
        "the Father, but by me."),
    "Isaiah 40:31": (
        "But they that wait upon the LORD shall renew their strength; they shall mount up"
        " with wings as eagles; they shall run, and not be weary; and they shall walk, "
        "and not faint."),
    "Jeremiah 29:11": (
        "For I know the thoughts that I think toward you, saith the LORD, thoughts of "
        "peace, and not of evil, to give you an expected end."),
    "Micah 6:8": (
        "He hath shewed thee, O man, what is good; and what doth the LORD require of "
        "thee, but to do justly, and to love mercy, and to walk humbly with thy God?"),
    "Romans 6:23": (
        "For the wages of sin is death; but the gift of God is eternal life through Jesus"
        " Christ our Lord."),
    "Joshua 1:9": (
        "Have not I commanded thee? Be strong and of a good courage; be not afraid, "
        "neither be thou dismayed: for the LORD thy God is with thee whithersoever thou "
        "goest."),
    "Matthew 7:7": (
        "Ask, and it shall be given you; seek, and ye shall find; knock, and it shall be "
        "opened unto you:"),
    "Galatians 5:22": (
        "But the fruit of the Spirit is love, joy, peace, longsuffering, gentleness, "
        "goodness, faith,"),
    "Proverbs 22:6": (
        "Train up a child in the way he should go: and when he is old, he will not depart"
        " from it."),
    "1 Corinthians 13:4": (
        "Charity suffereth long, and is kind; charity envieth not; charity vaunteth not "
        "itself, is not puffed up,"),
    "Ephesians 2:8": (
        "For by grace are ye saved through faith; and that not of yourselves: it is the "
        "gift of God:"),
    "Matthew 22:37": (
        "Jesus said unto him, Thou shalt love the Lord thy God with all thy heart, and "
        "with all thy soul, and with all thy mind."),
    "Isaiah 9:6": (
        "For unto us a child is born, unto us a son is given: and the government shall be"
        " upon his shoulder: and his name shall be called Wonderful, Counsellor, The "
        "mighty God, The everlasting Father, The Prince of Peace."),
    "Romans 12:2": (
        "And be not conformed to this world: but be ye transformed by the renewing of "
        "your mind, that ye may prove what is that good, and acceptable, and perfect, "
        "will of God."),
    "Psalms 90:2": (
        "Before the mountains were brought forth, or ever thou hadst formed the earth and"
        " the world, even from everlasting to everlasting, thou art God."),
}

HELD_OUT_PERCENT = 10


@dataclass(frozen=True)
class Item:
    task: str
    question: str
    answer: str


def _add2(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return f"What is {a} + {b}?", str(a + b)


def _add3(rng: random.Random) -> tuple[str, str]:
    a, b = rng.randint(100, 999), rng.randint(100, 999)
    return f"What is {a} + {b}?", str(a + b)


def _sub2(rng: random.Random) -> tuple[str, str]:
    a, b = sorted((rng.randint(10, 99), rng.randint(10, 99)), reverse=True)
    return f"What is {a} - {b}?", str(a - b)


def _word_list(rng: random.Random) -> list[str]:
    return rng.sample(WORDS, rng.randint(3, 5))


def _reversed_words(words: list[str]) -> tuple[str, str]:
    return f"Reverse the words: {' '.join(words)}", " ".join(reversed(words))


def _sorted_words(words: list[str]) -> tuple[str, str]:
    return f"Sort the words: {' '.join(words)}", " ".join(sorted(words))


def _reverse(rng: random.Random) -> tuple[str, str]:
    return _reversed_words(_word_list(rng))


def _sort(rng: random.Random) -> tuple[str, str]:
    return _sorted_words(_word_list(rng))


def _next_book(rng: random.Random) -> tuple[str, str]:
    index = rng.randrange(len(BOOKS) - 1)
    return f"Which book comes after {BOOKS[index]}?", BOOKS[index + 1]


def _count(rng: random.Random) -> tuple[str, str]:
    # 9-21 two-digit numbers: 3 tokens each (two digits and a space), 26-62 tokens in all.
    length = rng.randint(9, 21)
    start = rng.randint(10, 100 - length)
    end = start + length - 1
    return f"Count from {start} to {end}.", " ".join(str(n) for n in range(start, end + 1))


def _spell(rng: random.Random) -> tuple[str, str]:
    word = rng.choice(SPELL_WORDS)
    return f"Spell {word}.", "-".join(word)


def _long_list(rng: random.Random) -> list[str]:
    return rng.sample(LIST_WORDS, rng.randint(9, 14))


def _reverse_long(rng: random.Random) -> tuple[str, str]:
    return _reversed_words(_long_list(rng))


def _sort_long(rng: random.Random) -> tuple[str, str]:
    return _sorted_words(_long_list(rng))


def _verse(rng: random.Random) -> tuple[str, str]:
    reference = rng.choice(list(VERSES))
    return f"Recite {reference}.", VERSES[reference]


TASKS: dict[str, Callable[[random.Random], tuple[str, str]]] = {
    "add2": _add2, "add3": _add3, "sub2": _sub2, "reverse": _reverse, "sort": _sort,
    "next_book": _next_book,
    "count": _count, "spell": _spell, "reverse_long": _reverse_long, "sort_long": _sort_long,
    "verse": _verse,
}
RECALL_TASKS = {"next_book", "verse"}
# The tasks of the shipped demo, whose tokenizer was trained on their text (task_corpus); the
# long tasks are trained from that model and its tokenizer, so they do not change it.
SHORT_TASKS = ("add2", "add3", "sub2", "reverse", "sort", "next_book")
LONG_TASKS = ("count", "spell", "reverse_long", "sort_long", "verse")


def is_held_out(question: str) -> bool:
    digest = hashlib.sha256(question.encode("utf-8")).digest()
    return digest[0] * 100 // 256 < HELD_OUT_PERCENT


def make_items(task: str, count: int, split: str, seed: int = 0,
               max_tries: int = 1000) -> list[Item]:
    """`count` distinct items of `task` from the "train" or "held_out" split."""
    if task not in TASKS:
        raise ValueError(f"task {task!r} is unknown; choose from {', '.join(TASKS)}")
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', not {split!r}")
    rng = random.Random(f"{task}:{split}:{seed}")
    items, seen, tries = [], set(), 0
    recall = task in RECALL_TASKS
    while len(items) < count and tries < count * max_tries:
        tries += 1
        question, answer = TASKS[task](rng)
        if not recall and is_held_out(question) != (split == "held_out"):
            continue
        if split == "held_out" and question in seen:
            continue
        seen.add(question)
        items.append(Item(task, question, answer))
    return items


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^\w\s]", " ", text)).strip().lower()


def is_correct(answer_text: str, item: Item) -> bool:
    """The answer is right when its first line says exactly the expected words or number."""
    first_line = answer_text.strip().split("\n", 1)[0]
    return normalise(first_line) == normalise(item.answer)
