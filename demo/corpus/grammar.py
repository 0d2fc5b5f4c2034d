"""A small phrase grammar that widens the hand-written sentiment sentences.

Why: a few hundred hand-written sentences are too few to fine-tune a classifier
that has to generalise to unseen review text. The grammar crosses a handful of
review *constructions* (plain praise/criticism, negation, contrast, sarcasm,
mild verdicts, recommendations, ratings, noun-phrase fragments) with slot
fillers for six review *domains* (films, books, products, places, restaurants,
services), so the classifier sees the same constructions over many topics.

How it works:

* A template is a string with ``{slot}`` markers and a fixed label.
  Templates are grouped by the construction they exercise (``TEMPLATES``).
* Each ``{slot}`` is filled with a random choice from the domain's word list
  (``DOMAINS``) or a shared list (``SHARED``). Two slots in one sentence never
  get the same filler, so "great and great" cannot happen.
* In contrast templates the clause after "but"/"despite" decides the label,
  which is the convention of sentence-level sentiment datasets.
* Every sentence is rendered in one of two surface styles (``render``):
  ordinary review text ("The plot isn't bad at all.") or lower-cased,
  space-tokenised text with punctuation and clitics split off
  ("the plot is n't bad at all ."), the style of movie-review treebanks.
* All randomness comes from one ``random.Random(seed)``, so the output is a
  pure function of the seed and the word lists.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable
from dataclasses import dataclass

NEGATIVE = "NEGATIVE"
POSITIVE = "POSITIVE"


@dataclass(frozen=True)
class Domain:
    """Slot fillers for one review domain; aspects ending in '+' are plural."""

    subj: tuple[str, ...]
    noun: tuple[str, ...]
    aspect: tuple[str, ...]
    pos: tuple[str, ...]
    neg: tuple[str, ...]
    again: tuple[str, ...]
    bad_thing: tuple[str, ...]
    good_thing: tuple[str, ...]


DOMAINS: dict[str, Domain] = {
    "film": Domain(
        subj=("the film", "this movie", "the picture", "the sequel", "this documentary",
              "the remake", "this comedy", "the thriller", "the drama", "this animated feature",
              "the horror movie", "the new season", "this romantic comedy", "the biopic",
              "the musical", "this war film", "the western", "the debut feature"),
        noun=("film", "movie", "picture", "comedy", "drama", "thriller", "story", "debut",
              "documentary", "romance", "satire", "family film", "character study", "adventure"),
        aspect=("the acting", "the plot", "the script", "the dialogue", "the cinematography",
                "the soundtrack", "the pacing", "the ending", "the lead performance",
                "the direction", "the editing", "the special effects+", "the cast",
                "the humor", "the characters+", "the score", "the jokes+", "the story",
                "the villain", "the screenplay", "the production design", "the final act"),
        pos=("gripping", "moving", "funny", "affecting", "touching", "witty", "engrossing",
             "heartfelt", "entertaining", "charming", "smart", "thoughtful", "riveting",
             "beautifully made", "hilarious", "poignant", "absorbing", "intelligent",
             "wonderfully acted", "exhilarating", "sweet", "compelling", "original",
             "inventive", "haunting", "tender", "rousing", "warm", "lively", "sharp",
             "well crafted", "refreshing", "powerful", "delightful", "vivid", "fun"),
        neg=("dull", "tedious", "boring", "clumsy", "lifeless", "predictable", "pretentious",
             "overlong", "incoherent", "forgettable", "unfunny", "shallow", "sluggish",
             "bland", "muddled", "lazy", "tiresome", "hollow", "flat", "silly", "mediocre",
             "contrived", "heavy-handed", "listless", "joyless", "derivative", "formulaic",
             "self-indulgent", "sloppy", "uninspired", "ponderous", "cheap", "stale",
             "pointless", "dreary", "plodding", "mean-spirited", "ridiculous"),
        again=("watch it again", "see it again", "sit through it again"),
        bad_thing=("two hours of nothing happening", "a twist I saw coming from the opening credits",
                   "another sequel nobody asked for", "ninety minutes of shouting and explosions",
                   "a comedy without a single laugh", "a love story with zero chemistry",
                   "a horror movie that puts you to sleep", "an ending that makes no sense",
                   "characters I couldn't care less about", "a plot held together with tape"),
        good_thing=("a story that actually goes somewhere", "jokes that actually land",
                    "characters you care about", "an ending that earns its tears",
                    "a cast that clearly loves the material", "a twist nobody will see coming"),
    ),
    "book": Domain(
        subj=("the novel", "this book", "the memoir", "the collection", "this thriller",
              "the biography", "the sequel", "this cookbook", "the short story collection",
              "the audiobook", "this fantasy novel", "the debut novel", "this history book",
              "the graphic novel", "the mystery"),
        noun=("novel", "book", "read", "memoir", "page-turner", "debut", "story", "mystery",
              "biography", "collection"),
        aspect=("the prose", "the characters+", "the plot", "the ending", "the dialogue",
                "the pacing", "the world-building", "the narrator", "the writing",
                "the first chapter", "the middle section", "the research", "the twists+",
                "the translation", "the illustrations+", "the recipes+"),
        pos=("gripping", "beautifully written", "moving", "insightful", "absorbing", "witty",
             "wise", "compelling", "lyrical", "thought-provoking", "charming", "elegant",
             "unputdownable", "vivid", "illuminating", "funny", "heartbreaking", "rich",
             "enthralling", "tender", "engaging", "clever"),
        neg=("dull", "tedious", "clumsy", "overwritten", "confusing", "predictable", "shallow",
             "boring", "bloated", "repetitive", "pretentious", "flat", "lifeless",
             "disappointing", "plodding", "badly edited", "forgettable", "trite",
             "unreadable", "preachy", "thin", "padded", "dreary", "muddled"),
        again=("read it again", "pick up another book by this author", "finish the series"),
        bad_thing=("three hundred pages of nothing happening", "a cliffhanger with no payoff",
                   "a mystery solved by coincidence", "typos on every page",
                   "a narrator who never stops complaining", "an ending copied from a soap opera"),
        good_thing=("characters who feel like old friends", "an ending I didn't see coming",
                    "sentences worth reading twice", "a plot that never lets go"),
    ),
    "product": Domain(
        subj=("this blender", "this pair of headphones", "this phone", "the laptop",
              "this jacket", "the vacuum", "this kettle", "the camera", "the backpack",
              "this charger", "the mattress", "this coffee maker", "the keyboard", "this drill",
              "the printer", "this tent", "the smartwatch", "this frying pan", "the router",
              "this desk chair", "the electric toothbrush", "this water bottle", "the monitor"),
        noun=("product", "gadget", "purchase", "buy", "device", "tool", "machine", "design"),
        aspect=("the battery life", "the build quality", "the price", "the design", "the sound",
                "the screen", "the instructions+", "the packaging", "the materials+",
                "the setup", "the customer support", "the warranty", "the app", "the fit",
                "the noise level", "the zipper", "the software", "the finish"),
        pos=("reliable", "sturdy", "well made", "easy to use", "comfortable", "excellent value",
             "well designed", "solid", "quiet", "fast", "durable", "a pleasure to use",
             "worth every penny", "light", "dependable", "beautifully built", "great value",
             "powerful", "versatile", "handy"),
        neg=("flimsy", "cheaply made", "unreliable", "useless", "overpriced", "poorly made",
             "noisy", "fragile", "clunky", "slow", "uncomfortable", "a waste of money",
             "defective", "badly designed", "frustrating", "junk", "awkward to use",
             "prone to breaking", "disappointing", "garbage"),
        again=("buy it again", "order from them again", "recommend it to a friend"),
        bad_thing=("a battery that dies after an hour", "a charger that quit after a week",
                   "instructions written in riddles", "a handle that snapped on day one",
                   "an update that bricked the whole thing", "a box with half the parts missing",
                   "a zipper that broke the first time I used it"),
        good_thing=("a battery that lasts all week", "setup that takes two minutes",
                    "build quality you can feel", "a price that seems too good to be true"),
    ),
    "place": Domain(
        subj=("the hotel", "this resort", "the museum", "the beach", "the campsite",
              "the old town", "the park", "this inn", "the hostel", "the botanical garden",
              "this bed and breakfast", "the theme park", "the zoo", "this apartment",
              "the ski resort", "the island", "the gallery", "the spa", "the national park"),
        noun=("hotel", "place", "spot", "getaway", "destination", "stay", "trip", "retreat"),
        aspect=("the location", "the rooms+", "the view", "the staff+", "the breakfast",
                "the beds+", "the neighborhood", "the pool", "the check-in", "the bathroom",
                "the wifi", "the parking", "the exhibits+", "the trails+", "the facilities+",
                "the price", "the cleaning"),
        pos=("spotless", "charming", "peaceful", "beautiful", "welcoming", "stunning",
             "relaxing", "lovely", "cozy", "gorgeous", "wonderful", "clean and comfortable",
             "well run", "breathtaking", "friendly", "quiet", "delightful", "magical",
             "great value", "unforgettable"),
        neg=("dirty", "noisy", "shabby", "overcrowded", "run-down", "overpriced", "filthy",
             "depressing", "cramped", "unwelcoming", "tired", "disappointing", "a tourist trap",
             "badly run", "smelly", "dingy", "unsafe", "chaotic", "soulless", "grim"),
        again=("stay there again", "go back", "visit again", "book it again"),
        bad_thing=("a room that smells like an ashtray", "a view of the parking lot",
                   "a pool that was closed all week", "paper-thin walls and a party next door",
                   "a broken elevator and six flights of stairs", "cold showers every morning",
                   "a beach covered in litter"),
        good_thing=("a view you never get tired of", "staff who remember your name",
                    "the comfiest bed I've ever slept in", "a breakfast worth waking up for"),
    ),
    "restaurant": Domain(
        subj=("this restaurant", "the cafe", "the bistro", "the pizzeria", "the bakery",
              "this diner", "the sushi bar", "the food truck", "the steakhouse",
              "this taco place", "the noodle bar", "the brunch spot", "this wine bar",
              "the ramen shop", "the bar", "this vegan restaurant", "the curry house"),
        noun=("restaurant", "meal", "spot", "place to eat", "dinner", "lunch", "brunch",
              "neighborhood place", "menu"),
        aspect=("the food", "the service", "the desserts+", "the wine list", "the portions+",
                "the atmosphere", "the coffee", "the prices+", "the bread", "the waiter",
                "the staff+", "the pasta", "the burgers+", "the cocktails+", "the music",
                "the decor", "the fries+", "the soup", "the menu"),
        pos=("delicious", "fresh", "generous", "cozy", "excellent", "outstanding", "tasty",
             "superb", "mouthwatering", "perfectly cooked", "a hidden gem", "wonderful",
             "great value", "flavorful", "inviting", "friendly", "fantastic", "terrific",
             "first-rate", "impeccable"),
        neg=("bland", "greasy", "stale", "overpriced", "rude", "slow", "disappointing",
             "inedible", "cold", "dirty", "soggy", "mediocre", "tasteless", "overcooked",
             "underwhelming", "a rip-off", "chaotic", "unfriendly", "awful", "forgettable"),
        again=("eat there again", "go back", "order from them again"),
        bad_thing=("cold soup and a forty-minute wait", "a burnt steak and a shrug",
                   "a waiter who forgot us for an hour", "a bill twice the size of the portions",
                   "a sticky table and a rude manager", "pasta that tasted like the can it came in"),
        good_thing=("the best bread in town", "a dessert worth the trip on its own",
                    "service that makes you feel like family", "portions big enough to share"),
    ),
    "service": Domain(
        subj=("the airline", "the delivery service", "the plumber", "the bank",
              "the repair shop", "customer support", "the moving company", "the dentist",
              "the cleaning service", "the gym", "the car rental company", "the electrician",
              "the internet provider", "the hair salon", "the landlord", "the clinic",
              "the courier", "the insurance company", "the tutor", "the travel agency"),
        noun=("service", "company", "experience", "team", "business", "provider"),
        aspect=("the staff+", "the prices+", "the response time", "the communication",
                "the booking process", "the waiting time", "the support", "the billing",
                "the follow-up", "the website", "the paperwork", "the technician",
                "the customer service"),
        pos=("fast", "friendly", "professional", "helpful", "reliable", "efficient",
             "courteous", "honest", "punctual", "thorough", "excellent", "fantastic",
             "top-notch", "responsive", "patient", "trustworthy", "fairly priced",
             "a pleasure to deal with"),
        neg=("slow", "rude", "unhelpful", "careless", "unprofessional", "useless",
             "unreliable", "incompetent", "overpriced", "dishonest", "disorganized",
             "a nightmare to deal with", "terrible", "awful", "frustrating", "dismissive",
             "impossible to reach", "sloppy"),
        again=("use them again", "hire them again", "book with them again", "go back"),
        bad_thing=("an hour on hold and then a dropped call", "a delivery three weeks late",
                   "a repair that lasted a day", "surprise fees on every bill",
                   "a technician who never showed up", "a lost suitcase and a form letter"),
        good_thing=("a fix that took ten minutes", "a refund without any arguing",
                    "someone who actually listens", "a price lower than the quote"),
    ),
}

SHARED: dict[str, tuple[str, ...]] = {
    "intens": ("really", "truly", "incredibly", "genuinely", "remarkably", "very", "so",
               "consistently", "thoroughly", "utterly", "quite", "surprisingly"),
    "apos": ("great", "excellent", "superb", "wonderful", "terrific", "fantastic",
             "first-rate", "outstanding", "impressive", "lovely", "top-notch", "solid",
             "brilliant", "superb", "strong", "perfect", "spot on", "a real highlight"),
    "aneg": ("terrible", "awful", "dreadful", "poor", "weak", "disappointing", "mediocre",
             "abysmal", "lousy", "sloppy", "woeful", "a mess", "a disaster", "a joke",
             "painful", "awkward", "embarrassing", "a real letdown"),
    "mpos": ("decent", "pretty good", "nice", "perfectly pleasant", "enjoyable enough",
             "solid", "better than average", "likeable", "pleasant", "fairly good",
             "rather nice", "worth a look", "quite good"),
    "mneg": ("a bit disappointing", "underwhelming", "rather dull", "not great", "so-so",
             "a little flat", "forgettable", "uneven", "somewhat bland", "mediocre",
             "a bit of a letdown", "lukewarm", "rather weak", "not very good"),
    "love": ("loved", "adored", "really enjoyed", "was blown away by", "fell in love with",
             "was charmed by", "had a great time with", "can't stop thinking about"),
    "hate": ("hated", "disliked", "was bored by", "regret spending money on",
             "couldn't stand", "was let down by", "was annoyed by", "gave up on"),
    "stars_pos": ("five stars", "5/5", "10/10", "4 out of 5", "five out of five",
                  "an easy five stars", "four stars"),
    "stars_neg": ("one star", "1/5", "2/10", "two stars", "zero stars if I could",
                  "one out of five", "a generous two stars"),
    "opener": ("honestly,", "frankly,", "to be fair,", "all in all,", "overall,",
               "in the end,", "in short,", "well,", "simply put,", "bottom line:"),
    "boring": ("watching paint dry", "waiting in line at the post office",
               "reading the terms and conditions", "staring at a wall",
               "listening to a dial tone", "sitting in traffic"),
}

# Templates by construction. Slots: domain fields above (subj, noun, aspect,
# aspect_is, pos, neg, again, bad_thing, good_thing) plus SHARED keys.
TEMPLATES: dict[str, dict[str, tuple[str, ...]]] = {
    POSITIVE: {
        "plain": (
            "{subj} is {intens} {pos_a}.",
            "{subj} is {pos} and {pos}.",
            "{opener} {subj} is {pos}.",
            "I {love} {subj}.",
            "I {love} {subj}; it's {pos} from start to finish.",
            "what a {pos_a} {noun}!",
            "{subj} is {pos}, {pos} and {intens} {pos_a}.",
            "{aspect_is} {apos}, and {aspect2_is} {apos} too.",
            "{aspect_is} {apos}.",
            "a {pos_a}, {pos_a} {noun}.",
            "a {intens} {pos_a} {noun}.",
            "{pos} and {pos}.",
            "{intens} {pos_a}.",
            "one of the most {pos_a} {noun}s I've come across.",
            "{subj} offers {good_thing}.",
            "{good_thing}, and {aspect_is} {apos}.",
        ),
        "negation": (
            "{subj} is not {neg} at all.",
            "{subj} isn't {neg} in the slightest.",
            "not {neg} at all; in fact it's {pos}.",
            "I didn't find {subj} {neg} at all.",
            "never {neg}, always {pos}.",
            "nothing about {subj} feels {neg}.",
            "{aspect_is} never {aneg}.",
            "I can't say enough good things about {subj}.",
            "I didn't expect to like {subj}, but I did.",
            "I couldn't find a single thing wrong with {subj}.",
            "there isn't a {neg_a} moment in it.",
            "not bad at all.",
            "not {neg}, not {neg}, just {pos}.",
            "I wouldn't hesitate to {again}.",
            "you won't be disappointed by {subj}.",
            "no complaints: {aspect_is} {apos}.",
            "{subj} is by no means {neg}.",
        ),
        "contrast": (
            "{aspect_is} {aneg}, but {subj} is still {pos}.",
            "{aspect_is} a bit {mnegadj}, but overall {subj} is {pos}.",
            "despite some issues with {aspect}, {subj} is {intens} {pos_a}.",
            "for all its flaws, {subj} is {pos}.",
            "although {aspect_is} {mneg}, {subj} is {pos}.",
            "{aspect_is} not perfect, but {aspect2_is} {apos}.",
            "it's not perfect, but it's {pos}.",
            "it starts slowly, but it ends up {intens} {pos_a}.",
            "I had my doubts, but {subj} turned out to be {pos}.",
            "{subj} has flaws, yet it's {pos} and {pos}.",
            "the first impression was poor, but {subj} won me over.",
            "it's a little {mnegadj}, but {pos} where it counts.",
            "{aspect_is} forgettable, but {aspect2_is} {apos}, and that's what matters.",
        ),
        "sarcasm": (
            "I hate to admit it, but {subj} is {pos}.",
            "well, there goes my plan to be unimpressed.",
            "{subj} has ruined every other {noun} for me.",
            "great, now I'll have to {again} next week.",
            "I tried hard to find something to complain about and failed.",
        ),
        "mild": (
            "{subj} is {mpos}.",
            "{subj} is {mpos}, and {aspect_is} {apos}.",
            "a {mpos_a} {noun}.",
            "not perfect, but {mpos}.",
            "{opener} {mpos}.",
            "a {mpos_a} way to spend an evening.",
            "{subj} is {mpos}, if not spectacular.",
            "modest, but {pos}.",
        ),
        "verdict": (
            "I would {intens} recommend {subj}.",
            "I'd {again} in a heartbeat.",
            "{stars_pos}. {subj} is {pos}.",
            "{stars_pos}, {pos} and {pos}.",
            "highly recommended: {pos} and {pos}.",
            "{subj}? {pos}. I will definitely {again}.",
            "worth it. I'll {again}.",
        ),
    },
    NEGATIVE: {
        "plain": (
            "{subj} is {intens} {neg_a}.",
            "{subj} is {neg} and {neg}.",
            "{opener} {subj} is {neg}.",
            "I {hate} {subj}.",
            "I {hate} {subj}; it's {neg} from start to finish.",
            "what a {neg_a} {noun}.",
            "{subj} is {neg}, {neg} and {intens} {neg_a}.",
            "{aspect_is} {aneg}, and {aspect2_is} {aneg} too.",
            "{aspect_is} {aneg}.",
            "a {neg_a}, {neg_a} {noun}.",
            "a {intens} {neg_a} {noun}.",
            "{neg} and {neg}.",
            "{intens} {neg_a}.",
            "one of the most {neg_a} {noun}s I've come across.",
            "{subj} gave me {bad_thing}.",
            "{bad_thing}, and {aspect_is} {aneg}.",
        ),
        "negation": (
            "{subj} is not {pos} at all.",
            "{subj} isn't {pos} in the slightest.",
            "I didn't like {subj}.",
            "I didn't enjoy {subj} at all.",
            "I didn't find {subj} {pos}.",
            "not {intens} {pos_a}.",
            "never {pos}, always {neg}.",
            "nothing about {subj} is {pos}.",
            "{aspect_is} not {apos}, and neither is anything else.",
            "I wouldn't {again}.",
            "I can't recommend {subj}.",
            "{subj} is hardly {pos}.",
            "it isn't {pos}, it's just {neg}.",
            "I don't understand why anyone would call it {pos}.",
            "not worth it. I won't {again}.",
            "{subj} is far from {pos}.",
            "there's nothing {pos_a} about {subj}.",
        ),
        "contrast": (
            "{aspect_is} {apos}, but {aspect2_is} {aneg}.",
            "{aspect_is} {apos}, but {subj} is {neg} overall.",
            "despite some nice touches in {aspect}, {subj} is {intens} {neg_a}.",
            "for all its {pos_a} moments, {subj} is {neg}.",
            "although {aspect_is} {apos}, {subj} is {neg}.",
            "{subj} has its moments, but it's {neg}.",
            "it looks {pos} on paper, but it's {neg} in practice.",
            "it starts well, then becomes {intens} {neg_a}.",
            "I wanted to like {subj}, but it's {neg}.",
            "{aspect_is} fine, but {aspect2_is} {aneg}.",
            "{subj} tries to be {pos}, but ends up {neg}.",
            "{aspect_is} {apos}; everything else is {aneg}.",
            "good intentions, but {subj} is {neg}.",
        ),
        "sarcasm": (
            "oh great, {bad_thing}.",
            "wow, {bad_thing}. just what I wanted.",
            "oh, wonderful: {bad_thing}.",
            "just what I needed: {bad_thing}.",
            "sure, {subj} is {pos}, if you enjoy {boring}.",
            "a real masterpiece, if you like {boring}.",
            "ten out of ten for {bad_thing}.",
            "thanks a lot for {bad_thing}.",
            "nothing says quality like {bad_thing}.",
            "{subj} is about as exciting as {boring}.",
            "brilliant. {bad_thing}. again.",
            "what a treat: {bad_thing}.",
            "I'd rather spend the afternoon {boring}.",
        ),
        "mild": (
            "{subj} is {mneg}.",
            "{subj} is {mneg}, and {aspect_is} {aneg}.",
            "a {mneg_a} {noun}.",
            "it's fine, I guess, but I won't {again}.",
            "{opener} {mneg}.",
            "{subj} is okay, but nothing special.",
            "just {mneg}.",
            "{subj} is {mneg}, to be honest.",
        ),
        "verdict": (
            "I would not recommend {subj}.",
            "I'd never {again}.",
            "{stars_neg}. {subj} is {neg}.",
            "{stars_neg}, {neg} and {neg}.",
            "avoid {subj}: {neg} and {neg}.",
            "{subj}? {neg}. I will not {again}.",
            "save your money. {subj} is {neg}.",
        ),
    },
}

# Mild negative adjectives usable after "a bit"/"a little".
SHARED["mnegadj"] = ("slow", "long", "rough", "uneven", "messy", "patchy")

# Predicate-only fillers ("a hidden gem", "worth every penny") cannot stand
# before a noun or after an intensifier; slots ending in "_a" exclude them.
_NOT_ATTRIBUTIVE = {"great value", "excellent value", "junk", "garbage", "clean and comfortable",
                    "lukewarm"}
_SLOT = re.compile(r"\{(\w+)\}")
_PUNCT = re.compile(r"([.,!?;:\"()])")


def _attributive(words: tuple[str, ...]) -> tuple[str, ...]:
    """Keep only fillers that read naturally as "a/very <filler> <noun>"."""
    return tuple(w for w in words if not (w.startswith(("a ", "not ", "worth", "so-so", "better"))
                                          or " to " in w or w in _NOT_ATTRIBUTIVE))


def sst_style(text: str) -> str:
    """Lower-case and split off punctuation and clitics, as movie-review treebanks do.

    Why: the project's yardstick sentences look like "it 's a charming journey .",
    so the model should see that surface form during training.
    """
    text = text.lower().replace("can't", "ca n't").replace("won't", "wo n't")
    text = re.sub(r"(\w)n't\b", r"\1 n't", text)
    text = re.sub(r"(\w)('s|'re|'ve|'ll|'d|'m)\b", r"\1 \2", text)
    text = _PUNCT.sub(r" \1 ", text)
    return " ".join(text.split())


def render(sentence: str, rng: random.Random) -> str:
    """Render a sentence in one of the corpus's surface styles.

    Why: the classifier must not learn casing or punctuation as a label cue,
    and must handle both ordinary and tokenised review text.
    """
    roll = rng.random()
    if roll < 0.45:
        return re.sub(r"(^|[.!?:] )([a-z])", lambda m: m.group(1) + m.group(2).upper(), sentence)
    styled = sst_style(sentence)
    if roll < 0.85:
        return styled
    return styled.rstrip(" .!")


def _fill(template: str, domain: Domain, rng: random.Random) -> str | None:
    """Fill every slot with a distinct random filler; None if that is impossible."""
    aspects = [a.rstrip("+") for a in domain.aspect]
    aspect_is = [a.rstrip("+") + (" are" if a.endswith("+") else " is") for a in domain.aspect]
    table = {f: getattr(domain, f) for f in Domain.__dataclass_fields__}
    table.update(SHARED)
    for name in ("pos", "neg", "mpos", "mneg"):
        table[name + "_a"] = _attributive(table[name])
    table["aspect"] = tuple(aspects)
    table["aspect_is"] = table["aspect2_is"] = tuple(aspect_is)
    used: set[str] = set()
    used_aspects: set[str] = set()

    def pick(match: re.Match[str]) -> str:
        name = match.group(1)
        for _ in range(20):
            value = rng.choice(table[name])
            # "the plot is" and "the plot" count as the same aspect.
            root = value.rsplit(" ", 1)[0] if name.startswith("aspect") and name != "aspect" else value
            if value not in used and root not in used_aspects:
                used.add(value)
                if name.startswith("aspect"):
                    used_aspects.add(root)
                return value
        raise LookupError(name)

    try:
        text = _SLOT.sub(pick, template)
    except LookupError:
        return None
    return re.sub(r"\ba (?=[aeio]|un(?!i)|ho(?:nest|ur))", "an ", text)


def generate(label: str, count: int, seed: int, exclude: Iterable[str] = ()) -> list[str]:
    """Generate `count` distinct sentences with the given label.

    Why: a deterministic, seeded expansion keeps the committed TSV reproducible.
    Constructions and domains are sampled uniformly so none dominates.
    """
    rng = random.Random(f"{seed}:{label}")
    constructions = TEMPLATES[label]
    names = sorted(constructions)
    domains = sorted(DOMAINS)
    seen = set(exclude)
    out: list[str] = []
    attempts = 0
    while len(out) < count:
        attempts += 1
        if attempts > count * 50:
            raise RuntimeError(f"grammar cannot produce {count} distinct {label} sentences")
        template = rng.choice(constructions[rng.choice(names)])
        sentence = _fill(template, DOMAINS[rng.choice(domains)], rng)
        if sentence is None:
            continue
        text = render(sentence, rng)
        if text not in seen:
            seen.add(text)
            out.append(text)
    return out
