"""graphrec: train GNN recommenders on property graphs, in five stages with Arrow between.

1. extract   ``graphrec.loaders``   graph source -> Arrow tables (files, Neo4j), and the bulk
                                    loader behind ``graphrec load``. These are the database
                                    loaders; PyG's mini-batch loaders belong to training.
2. graph     ``graphrec.graph``     Arrow -> PyG HeteroData: ids, features, splits (config
                                    section ``build``)
3. train     ``graphrec.train``     mini-batches (``samplers``) into the models (``models``:
                                    GraphSAGE, LightGCN, PinSage-style)
4. recommend ``graphrec.recommend`` top-k unseen items for every user
5. write     ``graphrec.sinks``     recommendations to Parquet and Neo4j, rerun-safe

``graphrec.job`` runs them in order; ``graphrec.cli`` is the entry point;
``graphrec.distributed`` is where Ray lives (only there).
"""

__version__ = "0.1.0"
