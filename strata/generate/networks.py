"""The social networks and how their post schemas drift from one another."""

from __future__ import annotations

from dataclasses import dataclass, field

MEASURES = ("likes", "comments", "shares", "views")


@dataclass(frozen=True)
class Network:
    name: str
    prefix: str
    posts_per_day: int  # at scale 1; the six networks sum to 1,440 posts a day
    view_mu: float  # log-mean of views: engagement is lognormal and its level differs per network
    text_key: str = "caption"
    # measure -> field name in this network's JSON
    count_keys: dict[str, str] = field(default_factory=lambda: _keys())


def _keys(**overrides: str) -> dict[str, str]:
    return {
        "likes": "like_count",
        "comments": "comment_count",
        "shares": "share_count",
        "views": "view_count",
    } | overrides


NETWORKS: dict[str, Network] = {
    net.name: net
    for net in (
        Network("youtube", "yt", 150, 8.5),
        Network("instagram", "ig", 300, 7.5),
        Network("tiktok", "tt", 300, 8.8, count_keys=_keys(views="play_count")),
        Network("facebook", "fb", 200, 6.5),
        Network("snapchat", "sc", 150, 7.0),
        Network("x", "x", 340, 7.2, text_key="text", count_keys=_keys(shares="retweet_count")),
    )
}
