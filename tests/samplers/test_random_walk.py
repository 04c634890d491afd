"""Random-walk neighbourhoods and per-user triplet sampling on hand-made graphs."""

import torch

from graphrec.samplers.random_walk import item_neighbourhoods
from graphrec.samplers.users import UserSampler


def two_communities():
    """Users 0-3 interact only with items 0-4, users 4-7 only with items 5-9."""
    users, items = [], []
    for u in range(8):
        block = range(0, 5) if u < 4 else range(5, 10)
        for i in block:
            if (u + i) % 4 != 0:  # not every pair: walks must find the rest
                users.append(u)
                items.append(i)
    return torch.tensor(users), torch.tensor(items)


def test_walk_neighbourhoods_stay_in_the_community_and_weights_are_shares():
    users, items = two_communities()
    nbr, w = item_neighbourhoods(users, items, 8, 12, walks=40, length=2, top_t=3, seed=1)
    assert nbr.shape == (12, 3) and w.shape == (12, 3)
    for i in range(10):
        got = nbr[i][nbr[i] >= 0]
        assert len(got) == 3 and i not in got.tolist()  # never the item itself
        assert all((j < 5) == (i < 5) for j in got.tolist())
        assert torch.all(w[i, :-1] >= w[i, 1:])  # most visited first
        assert float(w[i].sum()) == __import__("pytest").approx(1.0)
    # items 10 and 11 have no edges: no neighbours, zero weights
    assert (nbr[10:] == -1).all() and (w[10:] == 0).all()
    again = item_neighbourhoods(users, items, 8, 12, walks=40, length=2, top_t=3, seed=1)
    assert torch.equal(again[0], nbr)  # seeded


def test_triplets_never_draw_a_users_own_item_as_negative():
    users, items = two_communities()
    gen = torch.Generator().manual_seed(0)
    s = UserSampler(users, items, 8, 12, batch_size=64, num_negatives=5, generator=gen)
    known = set(zip(users.tolist(), items.tolist(), strict=True))
    for batch in s:
        rows = zip(batch.users.tolist(), batch.pos.tolist(), batch.neg.tolist(), strict=True)
        for u, p, negs in rows:
            assert (u, p) in known
            assert not any((u, n) in known for n in negs)
    assert len(s) == -(-len(users) // 64)


def test_user_batches_carry_every_training_item_of_their_users():
    users, items = two_communities()
    s = UserSampler(users, items, 8, 12, batch_size=3, generator=torch.Generator())
    s.users_only = True
    seen = set()
    for b in s:
        got = set(zip(b.users[b.owner].tolist(), b.pos.tolist(), strict=True))
        seen |= got
    assert seen == set(zip(users.tolist(), items.tolist(), strict=True))
    assert len(s) == 3  # 8 users in batches of 3


def test_hard_negatives_come_from_the_positives_neighbourhood_and_are_unseen():
    users, items = two_communities()
    nbr, _ = item_neighbourhoods(users, items, 8, 12, walks=40, length=2, top_t=4, seed=0)
    gen = torch.Generator().manual_seed(0)
    s = UserSampler(users, items, 8, 12, batch_size=200, num_negatives=2, generator=gen)
    s.hard_table, s.hard_share = nbr, 0.5
    known = set(zip(users.tolist(), items.tolist(), strict=True))
    b = s.sample(200)
    hard = b.neg[:, 0]
    for u, p, n in zip(b.users.tolist(), b.pos.tolist(), hard.tolist(), strict=True):
        assert (u, n) not in known
        if n in nbr[p].tolist():  # a hard one: from the positive item's community
            assert (n < 5) == (p < 5)

    # the hard column lands in the positive's neighbourhood far more often than the uniform one
    def share_in_hood(col):
        pairs = zip(b.pos.tolist(), b.neg[:, col].tolist(), strict=True)
        return sum(n in nbr[p].tolist() for p, n in pairs) / len(b.pos)

    assert share_in_hood(0) > share_in_hood(1) + 0.2, (share_in_hood(0), share_in_hood(1))


def test_user_batches_hand_out_each_edges_own_weight():
    users, items = two_communities()
    weights = (users * 100 + items).float()  # a distinct weight per edge
    s = UserSampler(users, items, 8, 12, 3, generator=torch.Generator(), users_only=True,
                       weights=weights)  # fmt: skip
    for b in s:
        assert torch.equal(b.weight, (b.users[b.owner] * 100 + b.pos).float())
