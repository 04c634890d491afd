"""Stage 4, recommend: top-k unseen items for every user."""

from graphrec.recommend.topk import to_csr, topk_by, topk_unseen

__all__ = ["to_csr", "topk_by", "topk_unseen"]
