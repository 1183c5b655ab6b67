"""The simulation's plumbing (bench.experiment_sim) on hand-made lists: the loop's decision on what users did."""

from __future__ import annotations

from bench.experiment_sim import simulate
from lambdas.loop.experiment import PROMOTE, ROLL_BACK, Rating

USERS = [str(u) for u in range(400)]
START = 1_000_000
# every user rates movie "1" in the window; "2" nobody rates
RATED = [Rating(u, "1", 4.0, START + 1_000 * i) for i, u in enumerate(USERS)]
HITS = dict.fromkeys(USERS, ("1", "3"))
MISSES = dict.fromkeys(USERS, ("2", "3"))


def test_a_candidate_whose_lists_users_rate_is_promoted_and_one_they_ignore_rolled_back():
    better = simulate(MISSES, HITS, RATED, USERS, START, seed=0, share=0.5, margin=0.02, confidence=0.95)
    assert better["action"] == PROMOTE and better["hit_rate"] == {"served": 0.0, "candidate": 1.0}
    assert sum(better["users"].values()) == len(USERS) and 0 < better["users_needed"] <= 20
    assert simulate(HITS, MISSES, RATED, USERS, START, 0, 0.5, 0.02, 0.95)["users_needed"] is None
    worse = simulate(HITS, MISSES, RATED, USERS, START, seed=0, share=0.5, margin=0.02, confidence=0.95)
    assert worse["action"] == ROLL_BACK and worse["difference"] == -1.0
    # another seed splits the users another way, the same decision
    again = simulate(MISSES, HITS, RATED, USERS, START, seed=7, share=0.5, margin=0.02, confidence=0.95)
    assert again["action"] == PROMOTE and again["users"] != better["users"]
