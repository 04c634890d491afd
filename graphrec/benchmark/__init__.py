"""``graphrec bench``: throughput, memory and cost growth of every stage, side by side with
the alternatives (:mod:`graphrec.benchmark.runner`)."""
