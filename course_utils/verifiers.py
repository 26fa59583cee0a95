"""Tasks that a program can check (notebook 10): the reward of RL with verifiable rewards.

A task is one of the course's instructions with constraints added, in the course's format:

    Instruction: Write a movie review in at most 8 words, mentioning 'love'.
    Response:

Each constraint comes from a family (``FAMILIES``) with one value:

    max_words  n   "in at most n words"         the response has 1..n words
    min_words  n   "in at least n words"        the response has >= n words
    include    w   "mentioning 'w'"             w is one of the response's words
    exclude    w   "without the word 'w'"       w is none of the response's words
    ending     m   "ending with 'm'"            the response's last character is m

Words are runs of letters and digits (an apostrophe inside a word keeps it whole), compared
in lower case; punctuation is not a word. A response with no word passes no task.

Held out from training: the family ``ending`` (``HELD_OUT_FAMILIES``), the words
``HELD_OUT_WORDS`` and the odd lengths (training draws even ones), so that a test on
held-out tasks asks whether what RL taught carries over to constraints it never saw.

``verify`` is the pass/fail reward, ``partial_credit`` a graded one (a length missed by
one word earns almost full marks). ``verify_loose`` is the same check written carelessly,
with holes a policy can find: it counts whitespace-separated pieces as words (so an empty
or punctuation-only response is "at most 8 words") and checks a mention as a substring
(so "lovely" mentions "love").
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from . import _checks
from .data import DOMAINS, INSTRUCTIONS, format_prompt

FAMILIES = ("max_words", "min_words", "include", "exclude", "ending")
HELD_OUT_FAMILIES = ("ending",)
TRAIN_WORDS = ("the", "good", "love", "time", "great", "like", "this", "just")
HELD_OUT_WORDS = ("and", "really", "well", "best", "people", "with")
MAX_WORDS = range(3, 11)          # values of max_words: even ones in training, odd ones held out
MIN_WORDS = range(8, 16)         # values of min_words, split the same way
ENDINGS = ("!", "?", ".")
_PHRASES = {"max_words": "in at most {} words", "min_words": "in at least {} words", "include": "mentioning '{}'",
            "exclude": "without the word '{}'", "ending": "ending with '{}'"}
_WORD = re.compile(r"[A-Za-z0-9]+(?:'[A-Za-z0-9]+)*")


def words(text: str) -> list[str]:
    """The words of ``text``, in lower case: runs of letters and digits ("don't" is one word;
    "!!!" is none)."""
    _check_text("words", text)
    return [w.lower() for w in _WORD.findall(text)]


def _check_text(where: str, text):
    if not isinstance(text, str):
        raise TypeError(f"{where}: text must be a string (a response), got {type(text).__name__}")


@dataclass(frozen=True)
class Constraint:
    """One checkable requirement: ``family`` (one of ``FAMILIES``) and its ``value`` (a number of
    words, a single word, or an ending mark). One that no response can meet is refused."""
    family: str
    value: int | str

    def __post_init__(self):
        where = "Constraint"
        _checks.choice(where, "family", self.family, FAMILIES)
        if self.family in ("max_words", "min_words"):
            _checks.integer(where, f"value (of {self.family})", self.value, minimum=1)
        elif self.family == "ending":
            _checks.choice(where, "value (of ending)", self.value, ENDINGS)
        else:
            _checks.string(where, f"value (of {self.family})", self.value)
            if _WORD.fullmatch(self.value) is None or self.value != self.value.lower():
                raise ValueError(f"Constraint: the value of {self.family} must be one lower-case word (letters and "
                                 f"digits), got {self.value!r}: no response's words could ever match it")

    @property
    def phrase(self) -> str:
        return _PHRASES[self.family].format(self.value)

    @property
    def held_out(self) -> bool:
        """Whether training never sees this family or value."""
        if self.family in HELD_OUT_FAMILIES:
            return True
        if self.family in ("include", "exclude"):
            return self.value in HELD_OUT_WORDS
        return self.value % 2 == 1


@dataclass(frozen=True)
class Task:
    """An instruction of ``domain`` (one of ``data.DOMAINS``) with ``constraints`` (a tuple of at
    least one ``Constraint``). Constraints that contradict each other are refused."""
    domain: str
    constraints: tuple

    def __post_init__(self):
        where = "Task"
        _checks.choice(where, "domain", self.domain, DOMAINS)
        if not isinstance(self.constraints, tuple) or not self.constraints or not all(
                isinstance(c, Constraint) for c in self.constraints):
            raise TypeError("Task: constraints must be a non-empty tuple of Constraint")
        values = {}
        for c in self.constraints:
            if c.family in values and c.family not in ("include", "exclude"):
                raise ValueError(f"Task: two {c.family} constraints; give each family at most once "
                                 "(include and exclude may repeat)")
            values.setdefault(c.family, set()).add(c.value)
        if min(values.get("max_words", {10 ** 9})) < max(values.get("min_words", {0})):
            raise ValueError(f"Task: at least {max(values['min_words'])} and at most {min(values['max_words'])} "
                             "words cannot both hold")
        both = values.get("include", set()) & values.get("exclude", set())
        if both:
            raise ValueError(f"Task: {sorted(both)[0]!r} is both required and forbidden")
        if len(values.get("include", ())) > min(values.get("max_words", {10 ** 9})):
            raise ValueError("Task: more words to mention than the most words allowed")

    @property
    def instruction(self) -> str:
        return f"{INSTRUCTIONS[self.domain][:-1]} {', '.join(c.phrase for c in self.constraints)}."

    @property
    def prompt(self) -> str:
        return format_prompt(self.instruction)

    @property
    def held_out(self) -> bool:
        return any(c.held_out for c in self.constraints)


def task_from_prompt(prompt: str) -> Task:
    """The task that ``prompt`` (a ``Task.prompt``) states: how a reward function that sees only
    the prompt and the response (TRL's) knows what to check."""
    _checks.string("task_from_prompt", "prompt", prompt)
    head, tail = format_prompt("@").split("@")
    for domain in DOMAINS:
        stem = head + INSTRUCTIONS[domain][:-1] + " "
        if prompt.startswith(stem) and prompt.endswith("." + tail):
            constraints = []
            for piece in prompt[len(stem):-len(tail) - 1].split(", "):
                for family, phrase in _PHRASES.items():
                    value = r"(\d+)" if "words" in family else "(.+)"
                    match = re.fullmatch(re.escape(phrase).replace(r"\{\}", value), piece)
                    if match:
                        value = match.group(1)
                        constraints.append(Constraint(family, int(value) if "words" in family else value))
                        break
                else:
                    raise ValueError(f"task_from_prompt: {piece!r} is not a constraint this module states")
            return Task(domain, tuple(constraints))
    raise ValueError(f"task_from_prompt: {prompt[:60]!r} is not the prompt of a Task")


def meets(constraint: Constraint, text: str, loose: bool = False) -> bool:
    """Whether ``text`` meets ``constraint`` (with ``loose=True``, by the careless check of
    ``verify_loose``)."""
    if not isinstance(constraint, Constraint):
        raise TypeError(f"meets: constraint must be a Constraint, got {type(constraint).__name__}")
    _check_text("meets", text)
    family, value = constraint.family, constraint.value
    count = len(text.split()) if loose else len(words(text))
    if family == "max_words":
        return count <= value
    if family == "min_words":
        return count >= value
    if family == "ending":
        return text.rstrip().endswith(value)
    if family == "include" and loose:
        return value in text.lower()
    return (value in words(text)) == (family == "include")


def _check_task(where: str, task, text):
    if not isinstance(task, Task):
        raise TypeError(f"{where}: task must be a Task, got {type(task).__name__}")
    _check_text(where, text)


def verify(task: Task, text: str) -> bool:
    """Pass/fail: ``text`` has at least one word and meets every constraint of ``task``."""
    _check_task("verify", task, text)
    return bool(words(text)) and all(meets(c, text) for c in task.constraints)


def verify_loose(task: Task, text: str) -> bool:
    """``verify`` written carelessly: words are whitespace-separated pieces (punctuation counts,
    and an empty response has 0 words, which is "at most n"), and a mention is a substring."""
    _check_task("verify_loose", task, text)
    return all(meets(c, text, loose=True) for c in task.constraints)


def partial_credit(task: Task, text: str) -> float:
    """The mean over ``task``'s constraints of a score in [0, 1]: a length bound earns n/words
    (``max_words``) or words/n (``min_words``) when missed, the other families 0 or 1. A response
    with no word earns 0. Equals ``verify`` when every constraint is met."""
    _check_task("partial_credit", task, text)
    count = len(words(text))
    if not count:
        return 0.0
    scores = []
    for c in task.constraints:
        if c.family == "max_words":
            scores.append(min(1.0, c.value / count))
        elif c.family == "min_words":
            scores.append(min(1.0, count / c.value))
        else:
            scores.append(float(meets(c, text)))
    return float(np.mean(scores))


VERIFIERS = {"verify": verify, "verify_loose": verify_loose, "partial_credit": partial_credit}


def reward_function(verifier: str = "verify"):
    """A reward function ``f(prompts, completions, **kwargs) -> list[float]`` that reads each task
    from its prompt (``task_from_prompt``) and scores the completion with ``verifier`` (a name in
    ``VERIFIERS``): what ``notebook 10``'s GRPO step and TRL's ``GRPOTrainer(reward_funcs=...)`` call."""
    _checks.choice("reward_function", "verifier", verifier, VERIFIERS)
    check = VERIFIERS[verifier]

    def reward(prompts, completions, **kwargs):
        if isinstance(prompts, str) or isinstance(completions, str) or len(prompts) != len(completions):
            raise ValueError("reward: prompts and completions must be lists of one length")
        return [float(check(task_from_prompt(p), c)) for p, c in zip(prompts, completions)]

    reward.__name__ = reward.__qualname__ = verifier
    return reward


def _values(family: str, held_out: bool):
    if family in ("include", "exclude"):
        return HELD_OUT_WORDS if held_out else TRAIN_WORDS
    if family == "ending":
        return ENDINGS
    numbers = MAX_WORDS if family == "max_words" else MIN_WORDS
    return [n for n in numbers if n % 2 == int(held_out)]


def make_tasks(n: int, held_out: bool = False, families=None, seed: int = 0) -> list[Task]:
    """``n`` distinct tasks of one constraint each, drawn with ``seed``: a domain, a family (of
    ``families``, by default every training family, or with ``held_out=True`` every family) and
    a value, all from training values, or with ``held_out=True`` all held out."""
    _checks.integer("make_tasks", "n", n, minimum=1)
    _checks.integer("make_tasks", "seed", seed, minimum=0)
    if not isinstance(held_out, bool):
        raise TypeError(f"make_tasks: held_out must be True or False, got {held_out!r}")
    allowed = FAMILIES if held_out else tuple(f for f in FAMILIES if f not in HELD_OUT_FAMILIES)
    families = allowed if families is None else tuple(families)
    for f in families:
        _checks.choice("make_tasks", "families", f, allowed)
    pool = [Task(d, (Constraint(f, v),)) for f in families for v in _values(f, held_out) for d in DOMAINS
            if Constraint(f, v).held_out == held_out]
    if n > len(pool):
        raise ValueError(f"make_tasks: only {len(pool)} distinct tasks of these families; n={n}")
    rng = np.random.default_rng(seed)
    # every family about equally often, whatever its number of values
    by_family = {f: [t for t in pool if t.constraints[0].family == f] for f in families}
    order = [by_family[f][i] for f in families for i in rng.permutation(len(by_family[f]))]
    ranks = np.concatenate([np.arange(len(by_family[f])) / len(by_family[f]) for f in families])
    return [order[i] for i in np.argsort(ranks, kind="stable")[:n]]
