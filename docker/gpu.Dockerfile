# The GPU model server: `python -m model_runtime.server` (see model_runtime/server.py for
# every variable). Models are not baked in: mount an artifact directory at $MODEL_DIR.
#
#   docker build -f docker/gpu.Dockerfile -t inferstack-gpu .
#   docker run --gpus all -p 8080:8080 -v $PWD/build/models/digits:/models:ro inferstack-gpu

ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04

FROM ${CUDA_IMAGE} AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/inferstack
ENV PATH=/opt/inferstack/bin:$PATH
# torch's CUDA build comes from its own index; the runtime and server extras from PyPI.
RUN pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cu128
COPY pyproject.toml README.md /src/
COPY model_runtime /src/model_runtime
RUN pip install --no-cache-dir "/src[server]" && rm -rf /src

FROM ${CUDA_IMAGE}
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --uid 10001 --no-create-home --shell /usr/sbin/nologin inferstack
COPY --from=build /opt/inferstack /opt/inferstack
ENV PATH=/opt/inferstack/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    MODEL_DIR=/models \
    INFERSTACK_HOST=0.0.0.0 \
    INFERSTACK_PORT=8080 \
    INFERSTACK_BACKEND=torch \
    INFERSTACK_DEVICE=auto \
    INFERSTACK_DTYPE=fp32 \
    INFERSTACK_MAX_BATCH_SIZE=64
USER 10001
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen(f\"http://127.0.0.1:{os.environ['INFERSTACK_PORT']}/v2/health/ready\", timeout=2)"]
ENTRYPOINT ["python3", "-m", "model_runtime.server"]
