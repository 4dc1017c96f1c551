"""Topic-planted text: captions, titles and descriptions that read like real posts.

Every sentence of a topic is built from that topic's own vocabulary, so semantic search for the topic
finds its posts and tests can check hits against the planted `topic` field. Texts never contain square
brackets or braces, so a loader repairing trailing commas cannot be confused by message content.
"""

from __future__ import annotations

import random

# topic -> (things, adjectives, sentences with {thing}/{adj} slots, hashtags)
TOPICS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "pets": (
        ("puppy", "kitten", "golden retriever", "rescue cat", "bunny", "parrot", "dog bed", "cat tree"),
        ("fluffy", "sleepy", "playful", "adorable", "mischievous"),
        (
            "Our {adj} {thing} learned a new trick today and would not stop wagging.",
            "Vet visit went great, the {thing} got treats and belly rubs.",
            "Adopted a {adj} {thing} from the shelter this weekend, meet the newest family member.",
            "Morning walk at the dog park, the {thing} made three new friends.",
            "Who else has a {thing} that steals socks and hides them under the couch?",
            "Trying a grain free food for our {adj} {thing}, any tips on switching kibble?",
        ),
        ("pets", "dogsofinstagram", "catlife", "adoptdontshop", "puppylove"),
    ),
    "cooking": (
        ("sourdough", "ramen", "lasagna", "pad thai", "banana bread", "risotto", "cast iron pan", "tacos"),
        ("crispy", "homemade", "spicy", "creamy", "one-pot"),
        (
            "Made {adj} {thing} from scratch tonight and the kitchen smells amazing.",
            "Recipe tip: toast the garlic before adding the {thing}, it changes everything.",
            "Meal prep Sunday: {adj} {thing} for the whole week in under an hour.",
            "My grandmother's {thing} recipe, slow simmered and seasoned to taste.",
            "First attempt at {adj} {thing}, the dough rose perfectly in the oven.",
            "Chopping, sauteing and plating a {adj} {thing} for dinner guests.",
        ),
        ("cooking", "recipe", "homecooking", "foodie", "dinnerideas"),
    ),
    "fitness": (
        ("deadlift", "leg day", "HIIT circuit", "5k run", "kettlebell flow", "protein shake", "yoga class"),
        ("brutal", "sweaty", "intense", "rewarding", "early morning"),
        (
            "New personal record on the {thing} today, consistency in the gym pays off.",
            "{adj} {thing} done before sunrise, muscles burning and feeling strong.",
            "Workout split this week: push, pull, legs, then a {adj} {thing}.",
            "Stretch after every {thing} or your hamstrings will remind you tomorrow.",
            "Training for a half marathon, today was a {adj} {thing} with intervals.",
            "Form check on my {thing}, keep the core braced and the back neutral.",
        ),
        ("fitness", "gymlife", "workout", "fitfam", "strengthtraining"),
    ),
    "travel": (
        ("Lisbon", "Kyoto", "Patagonia", "Amalfi coast", "Iceland road trip", "hostel", "night train"),
        ("breathtaking", "hidden", "sunny", "budget-friendly", "unforgettable"),
        (
            "Landed in {thing} and the view from the hotel balcony is {adj}.",
            "Backpacking through {thing} with just a carry-on and a paper map.",
            "Travel tip: book the {thing} early, flights and hotels double in summer.",
            "Exploring a {adj} beach near {thing}, passport stamps collecting fast.",
            "Sunset hike above {thing}, the itinerary was worth every delayed flight.",
            "Our {adj} {thing} adventure: ten days, four cities, one suitcase.",
        ),
        ("travel", "wanderlust", "travelgram", "vacation", "explore"),
    ),
    "gaming": (
        ("speedrun", "ranked match", "boss fight", "indie roguelike", "open world RPG", "controller", "raid"),
        ("clutch", "insane", "cozy", "competitive", "retro"),
        (
            "Finally beat the {adj} {thing} after forty attempts, GG to the squad.",
            "Streaming a {adj} {thing} tonight, come hang out in chat.",
            "Leveled up my character and unlocked the legendary loot from the {thing}.",
            "Hot take: the {thing} in this game is the best level design of the decade.",
            "New gaming setup: mechanical keyboard, 144hz monitor and a {adj} {thing}.",
            "Co-op {thing} with friends until 3am, respawn, retry, victory.",
        ),
        ("gaming", "gamer", "twitchstreamer", "videogames", "esports"),
    ),
    "beauty": (
        ("skincare routine", "red lipstick", "eyeliner", "serum", "foundation", "nail art", "blush"),
        ("glowing", "dewy", "bold", "vegan", "long-lasting"),
        (
            "My {adj} {thing} for sensitive skin, moisturizer first then sunscreen.",
            "Makeup tutorial: a {adj} {thing} look in five minutes.",
            "Tried the viral {thing} and my complexion has never looked this {adj}.",
            "Swatching every shade of this {thing}, the pigment is unreal.",
            "Night routine: cleanser, {adj} {thing}, and a hydrating mask.",
            "Get ready with me, {adj} {thing} and a little highlighter.",
        ),
        ("beauty", "makeup", "skincare", "mua", "glowup"),
    ),
    "music": (
        (
            "guitar riff",
            "new single",
            "vinyl record",
            "live set",
            "piano cover",
            "studio session",
            "playlist",
        ),
        ("acoustic", "catchy", "soulful", "heavy", "late night"),
        (
            "Recorded a {adj} {thing} in the studio today, the chorus is stuck in my head.",
            "Concert last night was electric, the band closed with a {adj} {thing}.",
            "Learning a {thing} by ear, my fingers hurt but the melody is there.",
            "Dropping a {adj} {thing} on Friday, headphones on and volume up.",
            "Crate digging found a {adj} {thing} from 1978 with the original sleeve.",
            "Songwriting session: lyrics, chords and a {adj} {thing} beat.",
        ),
        ("music", "newmusic", "musician", "livemusic", "songwriter"),
    ),
    "tech": (
        ("smartphone", "laptop", "mechanical keyboard", "AI assistant", "smartwatch", "home server", "GPU"),
        ("blazing fast", "foldable", "open source", "wireless", "budget"),
        (
            "Unboxing the {adj} {thing}, battery life and benchmarks inside.",
            "Switched my workflow to a {adj} {thing} and productivity doubled.",
            "Honest review of the {thing}: great display, average camera, solid software updates.",
            "Building a {adj} {thing} from spare parts, the firmware flash finally worked.",
            "Is the new {thing} worth upgrading? Comparing specs, price and performance.",
            "Coding all weekend on a {adj} {thing}, shipping the app update tomorrow.",
        ),
        ("tech", "gadgets", "techreview", "coding", "innovation"),
    ),
    "finance": (
        (
            "index fund",
            "budget spreadsheet",
            "emergency fund",
            "retirement account",
            "credit score",
            "dividend",
        ),
        ("boring", "smart", "long-term", "frugal", "compound"),
        (
            "Paid off the last credit card today, next goal is a {adj} {thing}.",
            "Money tip: automate your savings into a {adj} {thing} on payday.",
            "Why a {thing} beats stock picking for most investors over time.",
            "Monthly budget review: rent, groceries and a {adj} {thing} contribution.",
            "Compound interest is magic, my {thing} grew quietly all year.",
            "Side hustle income goes straight into the {adj} {thing}, no lifestyle creep.",
        ),
        ("finance", "personalfinance", "investing", "budgeting", "moneytips"),
    ),
    "fashion": (
        ("denim jacket", "sneakers", "trench coat", "thrifted dress", "capsule wardrobe", "handbag", "boots"),
        ("vintage", "oversized", "minimalist", "streetwear", "tailored"),
        (
            "Outfit of the day: {adj} {thing} with white tees and gold hoops.",
            "Thrift haul! Found a {adj} {thing} for eight dollars.",
            "Styling one {thing} three ways for the autumn season.",
            "Runway trends I am actually wearing: the {adj} {thing}.",
            "Closet clean-out before building a {adj} {thing} that fits my style.",
            "Fit check in the mirror, {adj} {thing} and layered necklaces.",
        ),
        ("fashion", "ootd", "style", "thrifted", "streetstyle"),
    ),
    "sports": (
        ("penalty kick", "buzzer beater", "derby match", "home run", "championship final", "transfer window"),
        ("dramatic", "historic", "last-minute", "unbelievable", "tense"),
        (
            "What a {adj} {thing}, the stadium erupted and the fans stormed the pitch.",
            "Our team won the {thing} in overtime, the coach deserves all the credit.",
            "Highlights from the {adj} {thing}: two goals, one red card, pure chaos.",
            "Season tickets renewed, cannot wait for the next {thing} against our rivals.",
            "The referee decision on that {thing} will be debated for years.",
            "Training camp report: the striker looks sharp ahead of the {adj} {thing}.",
        ),
        ("sports", "football", "nba", "matchday", "gameday"),
    ),
    "parenting": (
        ("toddler", "newborn", "school run", "bedtime story", "playdate", "lunchbox", "family road trip"),
        ("chaotic", "sweet", "exhausting", "proud", "messy"),
        (
            "Our {adj} {thing} just said their first full sentence and we cried.",
            "Parenting hack: a {thing} routine that actually gets the kids to sleep.",
            "Survived the {adj} {thing} with snacks, wipes and a lot of patience.",
            "Packing a {adj} {thing} with fruit, crackers and a little note from mom.",
            "Mom life: laundry, {thing}, homework and a cold cup of coffee.",
            "Dad joke of the day made the {thing} laugh so hard milk came out.",
        ),
        ("parenting", "momlife", "dadlife", "toddlerlife", "familytime"),
    ),
}
TOPIC_NAMES: tuple[str, ...] = tuple(TOPICS)

_OPENERS = ("", "", "", "Okay so... ", "PSA: ", "Not gonna lie, ", "Update: ", "Honestly, ")
_CLOSERS = (
    "",
    "",
    "",
    " Thoughts?",
    " Link in bio.",
    " Save this for later!",
    " Tag a friend who needs this.",
)
_EMOJI = ("", "", " \U0001f525", " \u2764\ufe0f", " \U0001f64c", " \u2728", " \U0001f602")


def sentence(rng: random.Random, topic: str, template: str | None = None) -> str:
    things, adjectives, templates, _ = TOPICS[topic]
    text = (template or rng.choice(templates)).format(thing=rng.choice(things), adj=rng.choice(adjectives))
    return text[0].upper() + text[1:]


def caption(rng: random.Random, topic: str) -> tuple[str, list[str]]:
    """A post caption (one or two topic sentences, a hashtag tail) and its hashtags."""
    tags = rng.sample(TOPICS[topic][3], rng.randint(1, 3))
    templates = rng.sample(TOPICS[topic][2], 2 if rng.random() < 0.4 else 1)
    body = " ".join(sentence(rng, topic, template) for template in templates)
    opener = rng.choice(_OPENERS)
    if opener:
        body = body[0].lower() + body[1:]
    text = opener + body + rng.choice(_CLOSERS) + rng.choice(_EMOJI)
    return text + " " + " ".join("#" + tag for tag in tags), tags


def title(rng: random.Random, topic: str) -> str:
    things, adjectives, _, _ = TOPICS[topic]
    thing = rng.choice(things)
    pattern = rng.choice(
        (
            "The {adj} {thing} guide",
            "I tried a {adj} {thing} for 30 days",
            "{thing}: everything you need to know",
            "Top 10 {adj} {thing} moments",
        )
    )
    text = pattern.format(thing=thing, adj=rng.choice(adjectives))
    return text[0].upper() + text[1:]


def description(rng: random.Random, topic: str, sentences: int = 3) -> str:
    """Multi-line description: paragraphs separated by newlines, as video platforms store them."""
    templates = rng.sample(TOPICS[topic][2], sentences)
    return "\n".join(sentence(rng, topic, template) for template in templates)
