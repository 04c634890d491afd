"""graphrec: train GNN recommenders on property graphs, in five stages with Arrow between.

1. extract   ``graphrec.loaders``   graph source -> Arrow tables (files, Neo4j), and the bulk
                                    loader behind ``graphrec load``. These are the database
                                    loaders; PyG's mini-batch loaders belong to training.
2. graph     ``graphrec.graph``     Arrow -> PyG HeteroData: ids, features, splits (config
                                    section ``build``)
3. train     ``graphrec.train``     mini-batches (``samplers``) into the models (``models``:
                                    one registry; GraphSAGE, LightGCN, PinSage-style,
                                    popularity)
4. recommend ``graphrec.recommend`` top-k unseen items for every user; test evaluation
5. write     ``graphrec.sinks``     recommendations to Parquet and Neo4j, rerun-safe

``graphrec.pipeline`` runs stages 1-2 and times every stage; ``graphrec.ranking`` holds the
top-k kernel and metrics that training, recommendation and ``compare`` share;
``graphrec.job`` runs the stages in order; ``graphrec.cli`` is the entry point;
``graphrec.distributed`` is where Ray lives (only there); ``graphrec.benchmark`` holds every
benchmark.
"""

__version__ = "0.1.0"
