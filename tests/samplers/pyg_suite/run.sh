#!/usr/bin/env bash
# PyTorch Geometric's own loader and sampler tests with graphrec's sampler (issue 22).
# PyG ships its tests in its repository only (neither the wheel nor the sdist has them), so
# this clones the tagged release once into a cache folder and runs
# tests/samplers/test_pyg_suite.py against it. Needs git and access to github.com.
#   tests/samplers/pyg_suite/run.sh                 # check against expected.txt
#   tests/samplers/pyg_suite/run.sh --regenerate    # rewrite expected.txt from this run
set -euo pipefail
cd "$(dirname "$0")/../../.."
tag=${PYG_TESTS_TAG:-2.8.0}
dest=${GRAPHREC_PYG_TESTS:-${XDG_CACHE_HOME:-$HOME/.cache}/graphrec/pytorch_geometric-$tag}
if [ ! -f "$dest/test/loader/test_neighbor_loader.py" ]; then
  mkdir -p "$(dirname "$dest")"
  git clone --quiet --depth 1 --branch "$tag" https://github.com/pyg-team/pytorch_geometric "$dest"
fi
if [ "${1:-}" = "--regenerate" ]; then
  export GRAPHREC_PYG_REGENERATE=1
  shift
fi
GRAPHREC_PYG_TESTS="$dest" exec python -m pytest -q -p no:cacheprovider \
  tests/samplers/test_pyg_suite.py "$@"
