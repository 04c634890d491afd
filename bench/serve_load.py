"""Load test of ``graphrec serve`` (the code lives with every other benchmark, in
``graphrec/benchmark/serve_load.py``): ``python bench/serve_load.py --run RUN_DIR``."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from graphrec.benchmark.serve_load import main  # noqa: E402

if __name__ == "__main__":
    main()
