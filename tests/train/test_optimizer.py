"""Sparse embedding gradients: only the rows a batch touched move, and resume still works."""

from __future__ import annotations

import io

import torch
from torch import nn

from graphrec.train.optimizer import SplitOptimizer, make_optimizer


class Tiny(nn.Module):
    def __init__(self, sparse: bool) -> None:
        super().__init__()
        self.emb = nn.Embedding(10, 4, sparse=sparse)
        self.lin = nn.Linear(4, 1)

    def forward(self, ids):
        return self.lin(self.emb(ids)).sum()


def test_dense_model_gets_plain_adam():
    assert isinstance(make_optimizer(Tiny(False), 0.01), torch.optim.Adam)


def test_sparse_rows_untouched_by_the_batch_do_not_move():
    torch.manual_seed(0)
    model = Tiny(True)
    opt = make_optimizer(model, 0.1, weight_decay=0.01)
    assert isinstance(opt, SplitOptimizer) and len(opt.parts) == 2
    before = model.emb.weight.detach().clone()
    lin_before = model.lin.weight.detach().clone()
    for _ in range(3):
        opt.zero_grad()
        model(torch.tensor([1, 3])).backward()
        assert model.emb.weight.grad.is_sparse
        opt.step()
    moved = (model.emb.weight.detach() != before).any(1)
    assert moved.tolist() == [i in (1, 3) for i in range(10)]
    assert not torch.equal(model.lin.weight, lin_before)


def test_split_optimizer_state_round_trips():
    torch.manual_seed(0)
    a, b = Tiny(True), Tiny(True)
    b.load_state_dict(a.state_dict())
    opt_a, opt_b = make_optimizer(a, 0.1), make_optimizer(b, 0.1)
    for model, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        model(torch.tensor([2])).backward()
        opt.step()
    buf = io.BytesIO()  # through bytes, as a checkpoint does (no shared state tensors)
    torch.save(opt_a.state_dict(), buf)
    buf.seek(0)
    opt_b.load_state_dict(torch.load(buf))
    for model, opt in ((a, opt_a), (b, opt_b)):
        opt.zero_grad()
        model(torch.tensor([2, 5])).backward()
        opt.step()
    assert torch.equal(a.emb.weight, b.emb.weight) and torch.equal(a.lin.weight, b.lin.weight)


def test_auto_sparse_embeddings_follow_graph_size_and_gpu_workers():
    from graphrec.models.recommender import AUTO_SPARSE_NODES, use_sparse_embeddings

    small, big = {"u": 10, "i": 5}, {"u": AUTO_SPARSE_NODES, "i": 1}
    assert not use_sparse_embeddings("auto", small, nccl=False)
    assert use_sparse_embeddings("auto", big, nccl=False)
    assert not use_sparse_embeddings("auto", big, nccl=True)  # NCCL: no sparse all-reduce
    assert use_sparse_embeddings(True, small, nccl=False)
    assert not use_sparse_embeddings(False, big, nccl=False)


def test_row_sparse_adam_matches_torch_sparse_adam_and_fused_adam_matches_adam():
    """The faster optimizers are the same algorithms: repeated and unsorted row ids (the
    gradient is coalesced first), rows touched at different steps, dense parameters."""
    from graphrec.train.optimizer import RowSparseAdam

    torch.manual_seed(0)
    ours, ref = Tiny(True), Tiny(True)
    ref.load_state_dict(ours.state_dict())
    opt = make_optimizer(ours, 0.05, weight_decay=0.01)
    assert isinstance(opt.parts[1], RowSparseAdam) and opt.parts[0].defaults["fused"]
    ref_opts = [
        torch.optim.Adam(ref.lin.parameters(), lr=0.05, weight_decay=0.01),
        torch.optim.SparseAdam([ref.emb.weight], lr=0.05),
    ]
    for ids in ([4, 1, 4, 7], [], [1, 2], [9, 9, 0, 4]):  # [] : an empty row gradient
        for model in (ours, ref):
            model.zero_grad()
            model(torch.tensor(ids, dtype=torch.long)).backward()
        opt.step()
        for o in ref_opts:
            o.step()
        torch.testing.assert_close(ours.emb.weight, ref.emb.weight, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(ours.lin.weight, ref.lin.weight, rtol=1e-5, atol=1e-6)
    state = opt.parts[1].state[ours.emb.weight]
    ref_state = ref_opts[1].state[ref.emb.weight]
    assert state["step"] == ref_state["step"] == 4
    torch.testing.assert_close(state["exp_avg_sq"], ref_state["exp_avg_sq"])
