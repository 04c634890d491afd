"""Every stage of the job on one graph, timed, with its throughput, its peak memory and,
where there is one, the alternative measured side by side in the same process.

Stages and units: extract (edges/s), build (rows/s; tensor bytes vs peak memory), text
encoding (sentences/s), sampling (mini-batches/s, sampled edges/s), training (labelled
edges/s; alternatives: full-batch training as the seed articles do it, PyG's reference recipe
on the link task, the other kind of embedding gradients), full-graph inference (nodes/s),
top-k (users/s and GFLOP/s against this machine's measured matmul peak; alternatives: a
per-user Python loop, FAISS when installed) and write (rows/s, Parquet).
"""

from __future__ import annotations

import copy
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import torch

from graphrec.benchmark import pyg_reference
from graphrec.config import FeatureSpec, JobConfig
from graphrec.errors import RunError
from graphrec.graph import build_graph, split_target
from graphrec.graph.csr import to_csr
from graphrec.graph.hetero import Graph, message_graph
from graphrec.graph.split import EdgeSplit
from graphrec.loaders import extract, make_source
from graphrec.models.recommender import use_sparse_embeddings
from graphrec.pipeline import RssSampler, StageClock
from graphrec.ranking.topk import topk_unseen
from graphrec.samplers import compiled_sampler_available
from graphrec.sinks.parquet import ParquetSink
from graphrec.train.batches import TrainInputs, make_loader
from graphrec.train.context import resolve_device
from graphrec.train.loop import new_model, train_loop_per_worker
from graphrec.train.losses import batch_loss
from graphrec.train.optimizer import make_optimizer

STAGES = ("extract", "build", "text", "sample", "train", "inference", "topk", "write")
FULL_BATCH_MAX_EDGES = 2_000_000  # above this, one full-batch step needs tens of GB
REPEATS = 5  # graphrec and PyG's recipe, alternated; the best of each is compared (2 quick)
LARGE_EDGES = 20_000_000
"""Above this (``graphrec bench --large``) the train stage runs graphrec alone (PyG's recipe
holds several copies of the edge list, and the comparison is made at 1e6 and 1e7), and
top-k scores the first ``LARGE_TOPK_USERS`` users (all 2M users of a 1e8 graph: about 25
minutes on 2 cores; the exponent leaves top-k out there)."""
LARGE_TOPK_USERS = 200_000


def matmul_peak_gflops(n: int = 2048, repeat: int = 5, device: torch.device | str = "cpu") -> float:
    """Measured float32 matrix-product GFLOP/s of this machine's CPU (torch, all threads),
    or of ``device`` (a GPU: 8192-wide products)."""
    device = torch.device(device)
    if device.type != "cpu":
        n, repeat = max(n, 8192), max(repeat, 10)
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(repeat):
        a @ b
    _sync(device)
    return 2 * n**3 * repeat / (time.perf_counter() - t0) / 1e9


def _sync(device: torch.device | str) -> None:
    """Wait for ``device``'s queued kernels (a GPU's), so that a timer reads their end."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def bench_graph(
    cfg: JobConfig,
    stages: tuple[str, ...],
    quick: bool,
    rss: RssSampler,
    log: Callable[[str], None] = print,
) -> dict:
    """All requested ``stages`` on the graph ``cfg`` describes; one record per stage."""
    cfg = copy.deepcopy(cfg)
    cfg.train.checkpoint_path = None
    cfg.train.patience = 0
    clock = StageClock(rss, log)
    steps = 10 if quick else 40
    state: dict = {}

    def do_extract() -> dict:
        source = make_source(cfg.extract)
        t0 = time.perf_counter()
        state["tables"] = extract(source, progress=False)
        if "text" in stages:  # its titles come from this extraction, not a second one
            state["item_nodes"] = state["tables"].nodes[cfg.extract.edges[cfg.build.target].dst]
        s = time.perf_counter() - t0
        source.close()
        n = state["tables"].num_edges
        return {"edges": n, "seconds": s, "edges_per_s": n / s, "source": cfg.extract.source}

    def do_build() -> dict:
        tables = state.pop("tables")
        rows = sum(t.num_rows for t in tables.nodes.values()) + tables.num_edges
        t0 = time.perf_counter()
        g = build_graph(tables, cfg, progress=False)
        split = split_target(cfg.build.split, g)
        inputs = TrainInputs.of(g, split, cfg)
        s = time.perf_counter() - t0
        del tables
        state.update(graph=g, split=split, inputs=inputs)
        tensor_mb = _tensor_bytes(g, inputs) / 2**20
        return {
            "rows": rows,
            "seconds": s,
            "rows_per_s": rows / s,
            "tensor_mb": tensor_mb,
            "nodes": g.num_nodes,
        }

    def do_text() -> dict:
        from graphrec.graph.features import encode_text

        n = 2000 if quick else 10000
        titles = _titles(cfg, state.pop("item_nodes"), n)
        spec = FeatureSpec(property="title", kind="text")
        stats: dict = {}
        with tempfile.TemporaryDirectory() as tmp:  # no cache: measure the encoder
            encode_text(titles, spec, tmp, stats, progress=False)
        return {
            "sentences": len(titles),
            "seconds": stats["text_seconds"],
            "sentences_per_s": stats["sentences_per_s"],
        }

    def sample_rate(backend: str) -> dict:
        g, inputs = state["graph"], state["inputs"]
        c = copy.deepcopy(cfg)
        c.sampler.backend = backend
        loader = make_loader(inputs.data, g, None, c)
        n = max(1, min(steps, len(loader) - 1))  # a small graph has few batches
        torch.manual_seed(0)
        it = iter(loader)
        next(it)  # warm-up
        edges, t0 = 0, time.perf_counter()
        for _ in range(n):
            batch = next(it)
            edges += sum(batch[et].edge_index.shape[1] for et in batch.edge_types)
        s = time.perf_counter() - t0
        return {
            "batches": n,
            "seconds": s,
            "batches_per_s": n / s,
            "sampled_edges_per_s": edges / s,
            "sampler": type(loader.link_sampler).__name__,
        }

    def do_sample() -> dict:
        out = sample_rate("graphrec")
        if compiled_sampler_available():  # pyg-lib or torch-sparse in this environment
            alt = sample_rate("pyg")
            alt["ratio"] = out["sampled_edges_per_s"] / alt["sampled_edges_per_s"]
            out["alternatives"] = {"pyg_compiled": alt}
        else:
            out["alternatives"] = {
                "pyg_compiled": {"skipped": "neither pyg-lib nor torch-sparse is installed"}
            }
        return out

    def do_train() -> dict:
        c = copy.deepcopy(cfg)
        c.train.epochs, c.train.max_batches_per_epoch = 1, steps
        inputs = state["inputs"]
        no_val = TrainInputs(inputs.graph, _no_val(inputs.split), inputs.data)
        if resolve_device(c.train.device).type == "cuda":  # CUDA context, cuBLAS, caching
            warm = copy.deepcopy(c)  # allocator: not the first measured steps' cost
            warm.train.max_batches_per_epoch = 3
            train_loop_per_worker({"cfg": warm, "inputs": no_val, "progress": False})
        model, result = train_loop_per_worker({"cfg": c, "inputs": no_val, "progress": False})
        state["model"] = model
        row = result.history[-1]
        out = {
            "labelled_edges": row["labelled_edges"],
            "seconds": row["seconds"],
            "labelled_edges_per_s": row["labelled_edges_per_s"],
            "sample_seconds": row["sample_seconds"],
            "compute_seconds": row["compute_seconds"],
        }
        if inputs.graph.target_index.shape[1] > LARGE_EDGES:
            why = (
                f"above {LARGE_EDGES:,} edges graphrec's training runs alone (PyG's recipe "
                "copies the edge list several times; it is compared at 1e6 and 1e7)"
            )
            out["alternatives"] = {"pyg_reference (link, bce)": {"skipped": why}}
            return out
        alts = {"full_batch": _full_batch(state["graph"], inputs, c, quick)}
        # the same mini-batch training with the other kind of embedding gradients
        other = copy.deepcopy(c)
        used = use_sparse_embeddings(c.model.sparse_embeddings, inputs.graph.num_nodes, False)
        out["sparse_embeddings"] = used
        other.model.sparse_embeddings = not used
        _, r2 = train_loop_per_worker({"cfg": other, "inputs": no_val, "progress": False})
        alts[f"sparse_embeddings={str(other.model.sparse_embeddings).lower()}"] = {
            "labelled_edges_per_s": r2.history[-1]["labelled_edges_per_s"],
            "compute_seconds": r2.history[-1]["compute_seconds"],
        }
        for a in alts.values():
            if a.get("labelled_edges_per_s"):
                a["ratio"] = out["labelled_edges_per_s"] / a["labelled_edges_per_s"]
        # PyG's recipe is link prediction: compare it with graphrec on that same task
        # alternated, best of REPEATS each: a shared machine's slow spell hits both
        link = copy.deepcopy(c)
        link.train.objective, link.train.loss = "link", "bce"
        ours, refs = [], []
        for _ in range(2 if quick else REPEATS):
            _, r3 = train_loop_per_worker({"cfg": link, "inputs": no_val, "progress": False})
            ours.append(r3.history[-1]["labelled_edges_per_s"])
            refs.append(pyg_reference.measure(no_val, link, steps))
        ref = max(refs, key=lambda r: r["labelled_edges_per_s"])
        ref["graphrec"] = max(ours)
        ref["repeats"] = {"graphrec": ours, "pyg": [r["labelled_edges_per_s"] for r in refs]}
        ref["ratio"] = ref["graphrec"] / ref["labelled_edges_per_s"]
        alts["pyg_reference (link, bce)"] = ref
        out["alternatives"] = alts
        return out

    def do_inference() -> dict:
        g, model = state["graph"], _model(state, cfg)
        data = message_graph(g, None, cfg.build.reverse_edges)
        t0 = time.perf_counter()
        state["vectors"] = model.vectors(data)
        _sync(state["vectors"][0].device)
        s = time.perf_counter() - t0
        n = sum(g.num_nodes.values())
        return {"nodes": n, "seconds": s, "nodes_per_s": n / s, "device": str(model.device)}

    def do_topk() -> dict:
        g = state["graph"]
        uv, iv = state["vectors"]
        ei = g.target_index
        exclude = to_csr(ei[0], ei[1], len(uv))
        total = len(uv)
        large = ei.shape[1] > LARGE_EDGES and total > LARGE_TOPK_USERS
        if large:  # the first users only (see LARGE_EDGES)
            uv = uv[:LARGE_TOPK_USERS]
            cut = int(exclude[0][LARGE_TOPK_USERS])
            exclude = (exclude[0][: LARGE_TOPK_USERS + 1], exclude[1][:cut])
        n_users = len(uv)
        k = cfg.recommend.k
        if uv.is_cuda:  # the kernels' first launch and the score block's allocation
            b = min(cfg.recommend.batch_users, n_users)
            topk_unseen(uv[:b], iv, (exclude[0][: b + 1], exclude[1]), k, b)
            _sync(uv.device)
        t0 = time.perf_counter()
        items, scores = topk_unseen(uv, iv, exclude, k, cfg.recommend.batch_users)
        s = time.perf_counter() - t0
        state["recs"] = (items, scores)
        flops = 2.0 * n_users * len(iv) * uv.shape[1]
        peak = state.setdefault("peak", matmul_peak_gflops(device=uv.device))
        out = {
            "device": str(uv.device),
            "users": n_users,
            "items": len(iv),
            "seconds": s,
            "users_per_s": n_users / s,
            "gflops": flops / s / 1e9,
            "matmul_peak_gflops": peak,
            "share_of_peak": flops / s / 1e9 / peak,
        }
        bf16 = _bf16_scan(uv, iv, exclude, k, cfg.recommend.batch_users, items, scores, flops)
        bf16["share_of_peak"] = bf16.pop("gflops") / peak  # of the float32 peak
        bf16["ratio"] = out["users_per_s"] / bf16["users_per_s"]
        if large:
            out["sampled_users"] = f"the first {n_users:,} of {total:,} users"
            why = "the exact kernel alone on a graph above --large's threshold"
            out["alternatives"] = {"approximate": {"skipped": why}, "bfloat16_scan": bf16}
            return out
        out["alternatives"] = {"per_user_loop": _per_user_loop(uv, iv, exclude, k, items)}
        out["alternatives"]["bfloat16_scan"] = bf16
        out["alternatives"]["per_user_loop"]["ratio"] = (
            out["users_per_s"] / out["alternatives"]["per_user_loop"]["users_per_s"]
        )
        host = uv.cpu(), iv.cpu()  # faiss-cpu's (one copy each from a GPU; none on a CPU)
        faiss = _faiss(*host, exclude, k, items)
        out["alternatives"]["faiss"] = faiss
        if "users_per_s" in faiss:
            faiss["ratio"] = out["users_per_s"] / faiss["users_per_s"]
        block = _score_block(uv, iv, exclude, k, cfg.recommend.batch_users, scores)
        out["alternatives"]["score_block"] = block
        block["ratio"] = out["users_per_s"] / block["users_per_s"]
        approx = _approximate(*host, exclude, k, scores, cfg)
        out["alternatives"]["approximate"] = approx
        if "users_per_s" in approx:
            approx["ratio"] = out["users_per_s"] / approx["users_per_s"]
        return out

    def do_write() -> dict:
        g = state["graph"]
        items, scores = state["recs"]
        k = items.shape[1]
        users = torch.arange(len(items)).repeat_interleave(k)
        flat = items.flatten()
        keep = flat >= 0
        table = pa.table(
            {
                "user_id": g.node_ids[g.user_type].take(pa.array(users[keep].numpy())),
                "item_id": g.node_ids[g.item_type].take(pa.array(flat[keep].numpy())),
                "rank": pa.array(torch.arange(1, k + 1).repeat(len(items))[keep].numpy()),
                "score": pa.array(scores.flatten()[keep].numpy()),
            }
        )
        with tempfile.TemporaryDirectory() as tmp:
            stats = ParquetSink(Path(tmp) / "recommendations.parquet").write(table)
        return {
            "rows": stats["rows"],
            "seconds": stats["seconds"],
            "rows_per_s": stats["rows_per_s"],
            "sink": "parquet",
        }

    runs = {
        "extract": do_extract,
        "build": do_build,
        "text": do_text,
        "sample": do_sample,
        "train": do_train,
        "inference": do_inference,
        "topk": do_topk,
        "write": do_write,
    }
    needed = _with_prerequisites(stages)
    for name in STAGES:
        if name in needed:
            with clock.stage(name) as rec:
                rec.update(runs[name]() or {})
            if name not in stages:
                rec["prerequisite_only"] = True
    build = clock.stages.get("build")
    if build:
        build["peak_over_tensors"] = build["rss_growth_mb"] / max(build["tensor_mb"], 1e-9)
    return clock.stages


def _with_prerequisites(stages: tuple[str, ...]) -> set[str]:
    need = set(stages)
    if need & {"build", "text", "sample", "train", "inference", "topk", "write"}:
        need |= {"extract", "build"}
    if need & {"inference", "topk", "write"}:
        need |= {"train", "inference"}
    if "write" in need:
        need |= {"topk"}
    return need


def _no_val(split: EdgeSplit) -> EdgeSplit:
    return EdgeSplit(split.train, split.val[:0], split.test[:0])


def _model(state: dict, cfg: JobConfig):
    if "model" not in state:
        torch.manual_seed(cfg.train.seed)
        state["model"] = new_model(state["graph"], state["split"], cfg)
    return state["model"]


def _tensor_bytes(g: Graph, inputs: TrainInputs) -> int:
    tensors = [*g.x.values(), *g.edge_index.values(), g.label, g.time]
    tensors += [inputs.data[et].edge_index for et in inputs.data.edge_types]
    tensors += [inputs.split.train, inputs.split.val, inputs.split.test]
    return sum(t.numel() * t.element_size() for t in tensors if t is not None)


def _titles(cfg: JobConfig, nodes: pa.Table, n: int) -> pa.ChunkedArray:
    """Up to ``n`` item titles (or another string property) from the item node table."""
    spec = cfg.extract.nodes[cfg.extract.edges[cfg.build.target].dst]
    strings = [p for p, t in spec.properties.items() if t == "string"]
    prop = next((p for p in strings if "title" in p), strings[0])
    return nodes.column(prop).slice(0, n).cast(pa.string())


def _full_batch(g: Graph, inputs: TrainInputs, cfg: JobConfig, quick: bool) -> dict:
    """Full-batch training: every step runs the whole training graph and every training
    edge, as the seed articles train (one step per epoch)."""
    n = len(inputs.split.train)
    if g.edge_index[g.target].shape[1] > FULL_BATCH_MAX_EDGES:
        return {"skipped": f"graph above {FULL_BATCH_MAX_EDGES:,} edges (memory)"}
    torch.manual_seed(cfg.train.seed)
    device = resolve_device(cfg.train.device)
    model = new_model(g, inputs.split, cfg).to(device)
    opt = make_optimizer(model, cfg.train.lr)
    data = message_graph(g, inputs.split.train, cfg.build.reverse_edges)
    data[g.target].edge_label_index = g.target_index[:, inputs.split.train]
    if cfg.train.objective == "rating":
        data[g.target].edge_label = g.label[inputs.split.train]
    else:  # one uniform negative per positive, as in the seed articles
        neg = torch.randint(0, g.num_nodes[g.item_type], (n,))
        pos_ei = g.target_index[:, inputs.split.train]
        data[g.target].edge_label_index = torch.cat([pos_ei, torch.stack([pos_ei[0], neg])], dim=1)
        data[g.target].edge_label = torch.cat([torch.ones(n), torch.zeros(n)])
    steps = 2 if quick else 3
    loss_cfg = copy.deepcopy(cfg)
    if loss_cfg.train.loss == "bpr":
        loss_cfg.train.loss = "bce"
    data = data.to(device)
    batch_loss(model, data, loss_cfg)  # warm-up
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad()
        loss, _ = batch_loss(model, data, loss_cfg)
        loss.backward()
        opt.step()
    _sync(device)
    s = (time.perf_counter() - t0) / steps
    return {"step_seconds": s, "labelled_edges_per_s": n / s, "device": str(device)}


def _bf16_scan(uv, iv, exclude, k, batch_users, items, scores, flops) -> dict:
    """Exact top-k with its first pass in bfloat16 (``recommend.scan``), against float32's:
    the share of users with the same k items in the same order, of recommended items
    float32 also recommends, and the largest score difference (rescored: 0 expected)."""
    t0 = time.perf_counter()
    got, got_scores = topk_unseen(uv, iv, exclude, k, batch_users, scan="bfloat16")
    s = time.perf_counter() - t0
    same_items = sum(
        len(set(a) & set(b)) for a, b in zip(got.tolist(), items.tolist(), strict=True)
    )
    finite = torch.isfinite(scores) & torch.isfinite(got_scores)
    return {
        "seconds": s,
        "users_per_s": len(uv) / s,
        "gflops": flops / s / 1e9,
        "same_ranking_users": float((got == items).all(1).float().mean()),
        "recall_of_float32_items": same_items / max(int((items >= 0).sum()), 1),
        "max_score_difference": float((got_scores - scores)[finite].abs().max())
        if finite.any()
        else 0.0,
    }


def _per_user_loop(uv, iv, exclude, k, reference, users: int = 300) -> dict:
    """The seed articles' top-k: one user at a time, in Python (measured on a sample)."""
    indptr, indices = exclude
    sample = torch.linspace(0, len(uv) - 1, min(users, len(uv))).long().unique()
    t0 = time.perf_counter()
    agree = 0
    for u in sample.tolist():
        s = iv @ uv[u]
        s[indices[indptr[u] : indptr[u + 1]]] = float("-inf")
        top = torch.topk(s, min(k, len(s))).indices
        agree += int(torch.equal(top.cpu(), reference[u, : len(top)]))
    sec = time.perf_counter() - t0
    return {
        "users": len(sample),
        "users_per_s": len(sample) / sec,
        "same_result": agree == len(sample),
    }


def _score_block(uv, iv, exclude, k, batch_users, exact_scores) -> dict:
    """The exact top-k through the ``users x items`` score block (the kernel before the
    tiled one, still used on GPUs and for wide vectors), on the same vectors."""
    from graphrec.ranking import topk as kernel
    from graphrec.ranking.approximate import recall

    saved = kernel.TILED_MIN
    kernel.TILED_MIN = 1 << 62  # never tiled
    try:
        t0 = time.perf_counter()
        _, got = topk_unseen(uv, iv, exclude, k, batch_users)
        sec = time.perf_counter() - t0
    finally:
        kernel.TILED_MIN = saved
    return {
        "users": len(uv),
        "seconds": sec,
        "users_per_s": len(uv) / sec,
        "same_scores": recall(got, exact_scores) == 1.0,
    }


def _approximate(uv, iv, exclude, k, exact_scores, cfg: JobConfig) -> dict:
    """``recommend.method=approximate`` for every user: the IVF index built, its probes
    tuned to ``recommend.target_recall``, every user searched; its recall@k measured
    against the exact top-k of every user (not only the tuning sample)."""
    try:
        from graphrec.ranking.approximate import MIPSIndex, recall, topk_unseen_approximate

        t0 = time.perf_counter()
        index = MIPSIndex(iv, cfg.recommend.index_lists, cfg.train.seed)
        built = time.perf_counter() - t0
        _, got, report = topk_unseen_approximate(
            uv, iv, exclude, k, cfg.recommend.batch_users, cfg.recommend.target_recall,
            seed=cfg.train.seed, index=index,
        )  # fmt: skip
        sec = time.perf_counter() - t0
    except RunError as exc:  # FAISS not installed
        return {"skipped": str(exc)}
    return {
        "users": len(uv),
        "seconds": sec,
        "index_build_seconds": built,
        "users_per_s": len(uv) / sec,
        "recall_at_k_all_users": recall(got, exact_scores),
        **report.as_dict(),
    }


def _faiss(uv, iv, exclude, k, reference, users: int = 2000) -> dict:
    """Exact inner-product search (IndexFlatIP) for k + the most seen items of each user,
    then the seen ones dropped; on a sample of users (a search that deep for every user of a
    large graph would not fit in memory)."""
    try:
        import faiss
    except ImportError:
        return {"skipped": "faiss is not installed (pip install faiss-cpu)"}
    indptr, indices = exclude
    sample = torch.linspace(0, len(uv) - 1, min(users, len(uv))).long().unique()
    seen_max = int((indptr[sample + 1] - indptr[sample]).max())
    index = faiss.IndexFlatIP(iv.shape[1])
    index.add(iv.float().numpy())
    t0 = time.perf_counter()
    _, found = index.search(uv[sample].float().numpy(), min(k + seen_max, len(iv)))
    found = torch.from_numpy(found)
    same = 0
    for row, u in zip(found, sample.tolist(), strict=True):
        seen = indices[indptr[u] : indptr[u + 1]]
        top = row[~torch.isin(row, seen)][:k]
        same += int(torch.equal(top, reference[u, : len(top)]))
    sec = time.perf_counter() - t0
    return {
        "users": len(sample),
        "users_per_s": len(sample) / sec,
        "share_same_top_k": same / len(sample),
    }
