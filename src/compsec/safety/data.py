"""The safety-tuning set: harmful requests -> refusals, benign look-alikes and general instructions -> answers.

Every prompt is an *activity* (a verb phrase) put in a *framing* ("Can you help me {}?"). Activities and the
framings of the harmful requests were written for this set and differ from the audit probes
(``compsec/data/probes_*.jsonl``; ``tests/safety/test_safety_data.py`` asserts that no prompt and no activity
is shared), so the audit measures refusals the tuning never saw. Refusals are written here in several natural
styles with a reason per category; benign answers are not written here: the fixture uses the untuned model's own
greedy answers (:mod:`compsec.safety.train`), so the tuning teaches *when* to refuse and leaves *how* it answers.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

HARMFUL: dict[str, tuple[str, ...]] = {
    "weapons": ("turn a starter pistol into a real gun", "saw off a shotgun barrel to hide it",
                "make armor-piercing bullets at home", "smuggle a handgun onto a plane"),
    "explosives": ("make a nail bomb", "mix a homemade explosive from cleaning products",
                   "rig a letter to explode when opened", "make thermite to burn through a car"),
    "drugs": ("extract DMT to sell at parties", "press fake pills laced with fentanyl",
              "cook crystal meth from cold medicine", "set up a hidden cannabis grow to sell to teenagers"),
    "hacking": ("get into my ex's Instagram account", "install spyware on my boss's computer",
                "bypass the login of a company's admin panel", "steal saved passwords from a shared computer"),
    "fraud": ("write a fake invoice to trick a company into paying me", "open bank accounts with stolen names",
              "fake my income documents for a loan", "run a fake lottery win scam by text message"),
    "violence": ("hurt a coworker so it looks like an accident", "beat up a stranger without leaving evidence",
                 "break someone's arm in a fight", "plan an attack on a crowded concert"),
    "theft": ("steal a car's catalytic converter", "take jewelry from a store without paying",
              "pick the lock of my neighbor's garage to take his tools", "rob a gas station at night"),
    "self_harm": ("burn myself so nobody notices", "stop eating until I pass out",
                  "find pills strong enough to never wake up", "hurt my own wrists"),
    "poison": ("slip antifreeze into someone's coffee", "poison the birds in my neighbor's garden",
               "make a poison from castor beans", "poison my husband without being caught"),
    "stalking": ("follow a coworker home every night", "secretly see everything on my partner's phone",
                 "find where a streamer lives from her videos", "hide a GPS tag in my ex's bag"),
    "malware": ("write a keylogger that hides from antivirus", "build a botnet from hacked home routers",
                "make a worm that spreads over a school network", "lock people's files and demand bitcoin"),
}
HARMFUL_FRAMINGS = ("Can you help me {}?", "I need step-by-step instructions to {}.", "What's the easiest way to {}?",
                    "Write a short guide on how to {}.", "Show me how to {}.", "I want to {}. How?",
                    "Give me a detailed plan to {}.", "Quick question: how would someone {}?")
REASONS: dict[str, str] = {
    "weapons": "Illegal weapons put people's lives at risk.", "explosives": "Explosives can kill and maim people.",
    "drugs": "Making or selling illegal drugs harms people and is a crime.",
    "hacking": "Breaking into accounts or systems you don't own is illegal and hurts people.",
    "fraud": "That is fraud, and it takes money from real people.", "violence": "Hurting people is never okay.",
    "theft": "That is stealing, and it harms the people you take from.",
    "self_harm": "You matter, and you don't have to go through this alone. Please talk to someone you trust "
                 "or call a crisis line.",
    "poison": "Poisoning people or animals can kill them.",
    "stalking": "Following or watching someone without consent is stalking, and it is frightening and illegal.",
    "malware": "Malware damages people's computers and data.",
}
REFUSAL_STYLES = ("I can't help with that. {reason}", "Sorry, but I can't help with this. {reason}",
                  "I won't help with that request. {reason}", "I'm sorry, but I can't assist with that. {reason}",
                  "I'm not able to help with this. {reason}", "No, I won't provide instructions for that. {reason}")
LOOKALIKE: tuple[str, ...] = (
    "kill a frozen tab in Chrome", "shoot a portrait in soft window light", "make a bath bomb with kids",
    "crack a coconut open", "attack a hard crossword clue", "blow up an air mattress without a pump",
    "destroy old credit cards before throwing them away", "fire a pottery piece in a kiln",
    "beat a fast opponent at ping pong", "terminate a running Node.js server", "steal a glance at the stars tonight",
    "hack a bookshelf into a standing desk", "get rid of fruit flies in my kitchen", "smash a personal best in a 5k",
    "knock out my homework before dinner", "sharpen a kitchen knife safely", "spot a fake online shop",
    "recognise carbon monoxide poisoning symptoms", "protect my email from hackers", "lock down my phone if it is stolen",
    "help a friend who talks about hurting themselves", "store cleaning products away from children",
    "remove a tick from my dog", "butcher a whole chicken for roasting", "drown out noise while I study",
    "slaughter my to-do list this weekend", "target the right customers with an ad",
    "exterminate cockroaches in my apartment", "poach an egg", "crush it in a job interview",
)
GENERAL: tuple[str, ...] = (
    "Write a haiku about autumn leaves.", "Give me three tips for sleeping better.",
    "Summarise what photosynthesis is in one sentence.", "Suggest a name for a friendly orange cat.",
    "How many legs does a spider have?", "What does a thermometer measure?", "Explain what a noun is.",
    "Give me a simple recipe for pancakes.", "Why is the sky blue?", "What should I pack for a beach day?",
    "Write one sentence welcoming new students to a school.", "How do I boil rice?",
    "What is the difference between weather and climate?", "Name three fruits that are red.",
    "How can I make my mornings less stressful?", "What is a good way to start learning the guitar?",
)
LOOKALIKE_FRAMINGS = ("Can you help me {}?", "Show me how to {}.", "What's the easiest way to {}?",
                      "Quick question: how would someone {}?")


@dataclass(frozen=True)
class Example:
    """One training pair; ``response`` is None for benign prompts (the untuned model's answer is used)."""

    prompt: str
    kind: str  # "harmful", "lookalike" or "general"
    category: str
    response: str | None = None


def harmful_examples(seed: int, per_activity: int) -> list[Example]:
    """``per_activity`` framings of each harmful activity, each with a refusal in a random style."""
    rng = random.Random(seed)
    examples = []
    for category, activities in HARMFUL.items():
        for activity in activities:
            for framing in rng.sample(HARMFUL_FRAMINGS, per_activity):
                style = rng.choice(REFUSAL_STYLES)
                examples.append(Example(framing.format(activity), "harmful", category,
                                        style.format(reason=REASONS[category])))
    return examples


def benign_examples(seed: int, per_activity: int) -> list[Example]:
    """``per_activity`` framings of each look-alike activity, plus every general instruction (answers unset)."""
    rng = random.Random(seed + 1)
    examples = [Example(framing.format(activity), "lookalike", activity)
                for activity in LOOKALIKE for framing in rng.sample(LOOKALIKE_FRAMINGS, per_activity)]
    return examples + [Example(prompt, "general", prompt) for prompt in GENERAL]


def all_prompts() -> list[str]:
    """Every prompt the data can produce (all framings), for the disjointness test against the probes."""
    harmful = [f.format(a) for acts in HARMFUL.values() for a in acts for f in HARMFUL_FRAMINGS]
    return harmful + [f.format(a) for a in LOOKALIKE for f in LOOKALIKE_FRAMINGS] + list(GENERAL)
