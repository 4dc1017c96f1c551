"""Search relevance (`search_relevance`): how well dense, sparse (BM25) and hybrid search find what the generator
planted, on queries whose answers the generator states rather than a person.

The index: every post of the generated corpus the vector_index scenario reads (one day at scale 5, composed like
`silver.content_documents`), plus brand-listening tweets made by the tweets generator
(`strata.generate.tweets.status`; a tweet's document is its `full_text`, as in `silver.content_documents`), synced
into a fresh Qdrant Edge store through `QdrantResource.writer` with the real model: the product's path.

Query groups, with binary relevance:

- topics: one natural-language query per generator topic, written so as not to repeat the topic's vocabulary
  (pets: "my furry companion at the vet"); relevant = the documents of that topic (a post carries its `topic`;
  a tweet's topic is the one whose sentence templates its text matches).
- hashtags: every hashtag of every topic, asked as "#tag"; relevant = the documents whose hashtags hold it.
- terms: every "thing" of every topic, verbatim ("Kyoto", "sourdough", "kettlebell flow"); relevant = the
  documents whose text holds it as whole words, in any case.
- brands: every brand the tweets mention, asked by its name ("Northwind"); relevant = the tweets mentioning it.

Hashtags, terms and brands are the exact-term queries. Each query is asked in each mode over the whole index
(the query built as `assets.vector.search.search` builds it, 10 results), for precision@10 and nDCG@10 (ideal
DCG over min(10, relevant) documents). Every relevant set holds tens to hundreds of documents, far more than 10,
so recall@10 of a whole-index query measures the set's size, not the search. It is measured where it can mean
something: each exact-term query asked again within each network (the search's `network` filter), on the
(query, network) pairs with 1–30 relevant documents, with the best recall@10 those pairs allow beside it.

Targets: hybrid ≥ dense nDCG@10 on every topic (no tolerance), and hybrid above dense in mean nDCG@10 over the
exact-term queries.
"""

from __future__ import annotations

import math
import random
import re
import shutil
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime

import orjson

from strata.bench.core import BenchContext, ScenarioResult
from strata.bench.data import SEED, corpus, parseable
from strata.bench.scenarios.vector import documents_from_posts

POSTS_SCALE = 5
QUICK_POSTS_SCALE = 1
TWEETS = 200  # ~20 per brand: each brand's tweets are one recall@10 pair
QUICK_TWEETS = 50
K = 10
MAX_RELEVANT_FOR_RECALL = 30
COLLECTION = "content_index"
# The corpus's day: strata.generate's default start.
DAY = date(2026, 11, 1)
FIRST_TWEET_ID = 1_850_000_000_000_000_000
GROUPS = ("topic", "hashtag", "term", "brand")
EXACT = ("hashtag", "term", "brand")

# Written once, as a searcher would put each topic, before any result was seen; not tuned to the results.
TOPIC_QUERIES = {
    "pets": "my furry companion at the vet",
    "cooking": "what to bake in my kitchen tonight",
    "fitness": "getting stronger at the gym",
    "travel": "places to visit on a holiday abroad",
    "gaming": "playing video games online with friends",
    "beauty": "how to make my skin look radiant",
    "music": "songs and bands I listen to",
    "tech": "reviews of the latest electronic devices",
    "finance": "saving money and planning for retirement",
    "fashion": "what clothes to wear this season",
    "sports": "last night's big game and the final score",
    "parenting": "raising young kids and family life",
}


@dataclass(frozen=True)
class Labels:
    """What the generator planted in one document."""

    topic: str
    hashtags: frozenset[str]
    brand: str | None = None


@dataclass(frozen=True)
class LabelledQuery:
    group: str
    text: str
    relevant: frozenset[str]
    topic: str | None = None


def precision_at(ranked: Sequence[str], relevant: frozenset[str], k: int = K) -> float:
    return sum(1 for key in ranked[:k] if key in relevant) / k


def recall_at(ranked: Sequence[str], relevant: frozenset[str], k: int = K) -> float:
    return sum(1 for key in ranked[:k] if key in relevant) / len(relevant)


def ndcg_at(ranked: Sequence[str], relevant: frozenset[str], k: int = K) -> float:
    """Binary-gain nDCG: the ideal ranking puts min(k, |relevant|) relevant documents first."""
    dcg = sum(1 / math.log2(rank + 1) for rank, key in enumerate(ranked[:k], start=1) if key in relevant)
    ideal = sum(1 / math.log2(rank + 1) for rank in range(1, min(k, len(relevant)) + 1))
    return dcg / ideal


def post_labels(path) -> dict[str, Labels]:
    """The topic and hashtags the generator gave each post of a corpus, by document key."""
    labels: dict[str, Labels] = {}
    with open(path, "rb") as handle:
        for line in handle:
            post = orjson.loads(line)
            post_id = post.get("post_id") or post.get("postId")
            if post_id and post.get("network"):
                tags = frozenset(tag for tag in post.get("hashtags") or [] if isinstance(tag, str))
                labels[f"post:{post['network']}:{post_id}"] = Labels(post["topic"], tags)
    return labels


def _topic_patterns() -> dict[str, re.Pattern]:
    """Per topic, a pattern matching any sentence `strata.generate.text.sentence` makes for it."""
    from strata.generate.text import TOPICS

    patterns = {}
    for topic, (things, adjectives, templates, _) in TOPICS.items():
        thing = "(?:" + "|".join(map(re.escape, things)) + ")"
        adjective = "(?:" + "|".join(map(re.escape, adjectives)) + ")"
        sentences = (
            re.escape(template).replace(r"\{thing\}", thing).replace(r"\{adj\}", adjective)
            for template in templates
        )
        patterns[topic] = re.compile("|".join(sentences), re.IGNORECASE)
    return patterns


def tweet_documents(count: int) -> list[tuple[object, Labels]]:
    """`count` brand-listening tweets from the generator, as content documents with what it planted in them."""
    from assets.vector.sync import Document
    from strata.generate import tweets

    rng = random.Random(SEED)
    midnight = datetime(DAY.year, DAY.month, DAY.day)
    patterns = _topic_patterns()
    documents = []
    for index in range(count):
        status = tweets.status(rng, FIRST_TWEET_ID + index, midnight)
        text = status["full_text"]
        topics = [topic for topic, pattern in patterns.items() if pattern.search(text)]
        if len(topics) != 1:
            raise RuntimeError(f"cannot tell the topic of the generated tweet {text!r}: {topics}")
        tags = [tag["text"] for tag in status["entities"]["hashtags"]]
        document = Document(
            key=f"tweet:{status['id_str']}",
            source_type="tweet",
            text=text,
            network="x",
            account_id=status["user"]["id_str"],
            created_date=DAY,
            engagement=status["retweet_count"] + status["favorite_count"],
        )
        # The generator puts the brand's tag first, then the topic's hashtags.
        documents.append((document, Labels(topics[0], frozenset(tags), brand=tags[0])))
    return documents


def labelled_queries(documents: Sequence, labels: dict[str, Labels]) -> list[LabelledQuery]:
    """Every query of every group with its relevant document keys; queries nothing is relevant to are left out."""
    from strata.generate.text import TOPICS

    by_topic: dict[str, set[str]] = defaultdict(set)
    by_hashtag: dict[str, set[str]] = defaultdict(set)
    by_brand: dict[str, set[str]] = defaultdict(set)
    for key, planted in labels.items():
        by_topic[planted.topic].add(key)
        for tag in planted.hashtags:
            by_hashtag[tag].add(key)
        if planted.brand:
            by_brand[planted.brand].add(key)
    queries = [
        LabelledQuery("topic", TOPIC_QUERIES[topic], frozenset(by_topic[topic]), topic) for topic in TOPICS
    ]
    for topic, (things, _, _, hashtags) in TOPICS.items():
        queries += [
            LabelledQuery("hashtag", f"#{tag}", frozenset(by_hashtag[tag]), topic) for tag in hashtags
        ]
        for thing in things:
            pattern = re.compile(rf"(?<!\w){re.escape(thing)}(?!\w)", re.IGNORECASE)
            relevant = frozenset(d.key for d in documents if pattern.search(d.text))
            queries.append(LabelledQuery("term", thing, relevant, topic))
    queries += [
        LabelledQuery("brand", brand.capitalize(), frozenset(by_brand[brand])) for brand in sorted(by_brand)
    ]
    return [query for query in queries if query.relevant]


def search_relevance(ctx: BenchContext) -> ScenarioResult:
    from assets.vector.content_index import sync_documents
    from resources.embeddings import EmbeddingModelResource
    from resources.qdrant import QdrantResource
    from resources.vector_store import MIN_SHOULD_MATCH, RRF_K, Filters, Mode, Query, bm25_query

    modes = (Mode.DENSE, Mode.SPARSE, Mode.HYBRID)
    result = ScenarioResult(
        "search_relevance",
        "dense vs sparse (BM25) vs hybrid search on generator-planted topics, hashtags, terms and brands: "
        "precision@10 and nDCG@10 over the whole index, recall@10 within a network",
        columns=[
            ("queries", "queries", ",d"),
            ("relevant", "relevant", ",.0f"),
            *((f"nDCG@10 {mode}", f"ndcg_{mode}", ".3f") for mode in modes),
            *((f"P@10 {mode}", f"precision_{mode}", ".3f") for mode in modes),
            ("recall pairs", "pairs", ",d"),
            *((f"recall@10 {mode}", f"recall_{mode}", ".3f") for mode in modes),
            ("best recall@10", "recall_ceiling", ".3f"),
        ],
    )
    scale = QUICK_POSTS_SCALE if ctx.quick else POSTS_SCALE
    source = parseable(corpus(ctx.home, scale, log=ctx.log))
    posts = documents_from_posts(source.path, source.records)
    labels = post_labels(source.path)
    tweets = tweet_documents(QUICK_TWEETS if ctx.quick else TWEETS)
    labels = {d.key: labels[d.key] for d in posts} | {d.key: planted for d, planted in tweets}
    documents = [*posts, *(d for d, _ in tweets)]
    queries = labelled_queries(documents, labels)
    ctx.log(f"search_relevance: {len(posts):,} posts and {len(tweets):,} tweets, {len(queries)} queries")

    embedder = EmbeddingModelResource()
    folder = ctx.work_dir / "search-relevance"
    shutil.rmtree(folder, ignore_errors=True)
    qdrant = QdrantResource(url=folder.as_uri())
    try:
        started = time.perf_counter()
        with qdrant.writer(COLLECTION, log=ctx.log) as store:
            synced = sync_documents(store, documents, embedder)
        index_s = time.perf_counter() - started
        ctx.log(f"search_relevance: indexed {synced.embedded:,} documents in {index_s:.1f} s; querying")

        texts = sorted({query.text for query in queries})
        dense = dict(zip(texts, (vector.tolist() for vector in embedder.encode(texts)), strict=True))
        sparse = {text: bm25_query(text) for text in texts}
        networks: dict[str, set[str]] = defaultdict(set)
        for document in documents:
            networks[document.network].add(document.key)

        with qdrant.reader(COLLECTION) as store:

            def ranked(text: str, mode: Mode, network: str | None = None) -> list[str]:
                # As assets.vector.search.search builds its query; one reader serves every query.
                query = Query(
                    mode=mode,
                    limit=K,
                    filters=Filters(network=network),
                    dense=dense[text] if mode is not Mode.SPARSE else None,
                    sparse=sparse[text] if mode is not Mode.DENSE else None,
                )
                return [match.payload["document_key"] for match in store.query(query)]

            scores: dict[tuple[str, Mode], list[tuple[float, float]]] = defaultdict(list)
            recalls: dict[tuple[str, Mode], list[float]] = defaultdict(list)
            ceilings: dict[str, list[float]] = defaultdict(list)
            by_topic: dict[str, dict[Mode, tuple[float, float]]] = defaultdict(dict)
            for query in queries:
                for mode in modes:
                    top = ranked(query.text, mode)
                    score = (ndcg_at(top, query.relevant), precision_at(top, query.relevant))
                    scores[query.group, mode].append(score)
                    if query.group == "topic":
                        by_topic[query.topic][mode] = score
                if query.group not in EXACT:
                    continue
                for network in sorted(networks):
                    relevant = query.relevant & networks[network]
                    if not 1 <= len(relevant) <= MAX_RELEVANT_FOR_RECALL:
                        continue
                    ceilings[query.group].append(min(1.0, K / len(relevant)))
                    for mode in modes:
                        recalls[query.group, mode].append(
                            recall_at(ranked(query.text, mode, network), relevant)
                        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)

    mean = statistics.fmean

    def group_figure(label: str, groups: Sequence[str]) -> dict:
        members = [query for query in queries if query.group in groups]
        pairs = [value for group in groups for value in ceilings.get(group, [])]
        figure: dict = {
            "label": label,
            "queries": len(members),
            "relevant": mean(len(query.relevant) for query in members),
        }
        for mode in modes:
            figure[f"ndcg_{mode}"] = mean(s[0] for group in groups for s in scores[group, mode])
            figure[f"precision_{mode}"] = mean(s[1] for group in groups for s in scores[group, mode])
        if pairs:
            figure["pairs"] = len(pairs)
            for mode in modes:
                figure[f"recall_{mode}"] = mean(r for group in groups for r in recalls[group, mode])
            figure["recall_ceiling"] = mean(pairs)
        return figure

    present = [group for group in GROUPS if any(query.group == group for query in queries)]
    result.figures["topics"] = group_figure("topic queries (mean)", ["topic"])
    for query in (query for query in queries if query.group == "topic"):
        result.figures[f"topic {query.topic}"] = {
            "label": f'topic {query.topic}: "{query.text}"',
            "queries": 1,
            "relevant": len(query.relevant),
            **{f"ndcg_{mode}": by_topic[query.topic][mode][0] for mode in modes},
            **{f"precision_{mode}": by_topic[query.topic][mode][1] for mode in modes},
        }
    for group, label in (
        ("hashtag", "hashtag queries"),
        ("term", "term queries"),
        ("brand", "brand queries"),
    ):
        if group in present:
            result.figures[f"{group}s"] = group_figure(f"{label} (mean)", [group])
    exact = [group for group in EXACT if group in present]
    result.figures["exact-term"] = group_figure("exact-term queries: hashtags, terms, brands (mean)", exact)

    for name, figure in result.figures.items():
        if not name.startswith("topic "):
            result.ratio(f"hybrid/dense nDCG@10, {name}", figure["ndcg_hybrid"], figure["ndcg_dense"])
    worst = min(by_topic, key=lambda topic: by_topic[topic][Mode.HYBRID][0] - by_topic[topic][Mode.DENSE][0])
    margin = by_topic[worst][Mode.HYBRID][0] - by_topic[worst][Mode.DENSE][0]
    behind = sorted(topic for topic, s in by_topic.items() if s[Mode.HYBRID][0] < s[Mode.DENSE][0])
    result.target("topics: hybrid − dense nDCG@10, worst topic", margin, ">=", 0)
    result.target(
        "exact-term queries: hybrid/dense mean nDCG@10",
        result.ratios["hybrid/dense nDCG@10, exact-term"],
        ">",
        1,
        "×",
    )

    result.notes.append(
        f"index: {len(posts):,} posts (one generated day at scale {scale}) and {len(tweets):,} tweets, embedded by "
        f"the sync into a fresh Qdrant Edge store in {index_s:.1f} s; {len(queries)} queries "
        f"({', '.join(f'{sum(q.group == g for q in queries)} {g}' for g in present)})"
    )
    result.notes.append(
        f"topics where hybrid's nDCG@10 is below dense's: {', '.join(behind) if behind else 'none'}; worst: "
        f"{worst} ({margin:+.3f})"
    )
    result.notes.append(
        f"hybrid fuses the dense and the sparse ranking by reciprocal rank (k={RRF_K}), "
        f"{Query(mode=Mode.HYBRID, limit=K, filters=Filters()).candidates} candidates from each side, the sparse "
        f"side's holding at least {MIN_SHOULD_MATCH:.0%} of the query's terms (rounded down, at least one); a "
        "query's dense vector comes from the model, its sparse vector from the same BM25 tokenizer as the documents'"
    )
    result.notes.append(
        "topic queries have hundreds of relevant documents each: their recall@10 would measure the topic's size, "
        "so they get precision@10 and nDCG@10 only. Exact-term relevant sets are also larger than 10 over the "
        f"whole index; their recall@10 is on (query, network) pairs with 1–{MAX_RELEVANT_FOR_RECALL} relevant "
        "documents within the network, asked with that network's filter; best recall@10 = mean of min(1, 10/relevant)"
    )
    result.notes.append(
        "relevance is binary and comes from the generator: a post's topic and hashtags fields, a tweet's planted "
        "brand tag and hashtags, and for terms the document text itself (whole words, any case); the topic "
        "queries are the only hand-written part: paraphrases, not the topic's vocabulary (a few share a word with "
        "it, as a searcher's words would: vet, gym, skin)"
    )
    return result
