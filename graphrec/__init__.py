"""graphrec: train GNN recommenders on property graphs, in five stages with Arrow between.

1. extract   ``graphrec.loaders``   graph source -> Arrow tables (files; Neo4j, ArangoDB next)
2. build     ``graphrec.build``     Arrow -> PyG HeteroData: ids, features, splits
3. train     ``graphrec.train``     LinkNeighborLoader mini-batches (``samplers``, ``models``)
4. recommend ``graphrec.recommend`` top-k unseen items for every user
5. write     ``graphrec.sinks``     recommendations back to Parquet (databases next)

``graphrec.job`` runs them in order; ``graphrec.cli`` is the entry point;
``graphrec.distributed`` is where Ray lives (only there).
"""

__version__ = "0.1.0"
