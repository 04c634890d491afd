# graphrec on CUDA, for the KubeRay manifests in k8s/ (image ghcr.io/graphrec/graphrec:0.1.0-cuda).
#
#   docker build -t ghcr.io/graphrec/graphrec:0.1.0-cuda .
#
# PyTorch comes from PyPI (its default Linux wheel is a CUDA build); pyg-lib, PyG's compiled
# neighbour sampler, comes from PyG's wheel index for the matching torch/CUDA pair
# (graphrec uses it with sampler.backend=pyg; its own sampler otherwise). Ray, Ray
# Train and Ray Tune are pinned to the version the manifests' rayVersion names.
# Not built in this project's CI (its machines have no Docker daemon); see k8s/README.md.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG TORCH_VERSION=2.15.0
ARG PYG_WHEELS=https://data.pyg.org/whl/torch-2.15.0+cu128.html

ENV DEBIAN_FRONTEND=noninteractive PIP_NO_CACHE_DIR=1 PYTHONUNBUFFERED=1 \
    VIRTUAL_ENV=/opt/venv PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv python3-dev \
       build-essential ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/venv

WORKDIR /app
# dependencies first, so code changes do not reinstall torch
COPY pyproject.toml README.md ./
RUN pip install "torch==${TORCH_VERSION}" \
    && pip install pyg-lib -f "${PYG_WHEELS}" \
    && mkdir graphrec && touch graphrec/__init__.py \
    && pip install -e '.[ray,rust]' && rm -rf graphrec

COPY graphrec ./graphrec
COPY configs ./configs
COPY data ./data
RUN pip install --no-deps -e . && python -c "import graphrec, ray, torch_geometric"

# Ray's images run as a non-root user; KubeRay starts `ray start` through the pod command.
RUN useradd --create-home --uid 1000 ray && chown -R ray /app
USER ray
EXPOSE 8000
# the trainer runs through the RayJob's entrypoint; k8s/serve.yaml runs
# `graphrec serve RUN_DIR --host 0.0.0.0 --port 8000`
CMD ["graphrec", "--help"]
