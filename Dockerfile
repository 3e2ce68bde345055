# LULC Change Explorer: the Streamlit dashboard on the bundled demo scenes (offline by default).
# Build: docker build -t lulc-change-explorer .   Run: docker run -p 8501:8501 lulc-change-explorer
# Sentinel Hub: docker run -e SH_CLIENT_ID=... -e SH_CLIENT_SECRET=... -p 8501:8501 lulc-change-explorer
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LULC_CACHE_DIR=/data/cache

RUN apt-get update \
 && apt-get install -y --no-install-recommends openssl \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /app
# The app runs on the CPU: take torch's CPU build first (PyPI's default build adds several GB of CUDA
# libraries). `--build-arg TORCH_INDEX=https://pypi.org/simple` uses PyPI's build instead.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
COPY requirements.txt .
RUN grep -E '^(torch|torchvision)==' requirements.txt > /tmp/torch.txt \
 && pip install --index-url "$TORCH_INDEX" -r /tmp/torch.txt \
 && pip install -r requirements.txt

COPY .streamlit ./.streamlit
COPY app.py ./
COPY pages ./pages
COPY ui ./ui
COPY static ./static
COPY lulc_core ./lulc_core
COPY docs ./docs

# static/maps: large map images the app serves by URL (ui/served_images.py), written at run time
RUN useradd --create-home app && mkdir -p /data/cache /app/static/maps && chown -R app /data /app/static/maps
USER app
VOLUME ["/data/cache"]
EXPOSE 8501

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import urllib.request, sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4).read() != b'ok')"

CMD ["python", "-m", "ui.serve", "--server.port=8501", "--server.address=0.0.0.0"]
