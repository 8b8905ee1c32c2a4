# The API (and, with GENMEDIA_WORKERS=0 plus a second service running `genmedia worker`, the workers).
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    GENMEDIA_HOST=0.0.0.0 \
    GENMEDIA_PORT=8080 \
    GENMEDIA_DATA_DIR=/data \
    GENMEDIA_LOG_FORMAT=json

RUN useradd --create-home --uid 10001 studio && mkdir /data && chown studio /data
WORKDIR /app

COPY pyproject.toml constraints.txt ./
COPY app.py cli.py client.py config.py logs.py wiring.py ./
COPY domain ./domain
COPY schema ./schema
COPY resolvers ./resolvers
COPY subscriptions ./subscriptions
COPY middleware ./middleware
COPY endpoints ./endpoints
COPY backends ./backends
RUN pip install -c constraints.txt .

USER studio
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s CMD python -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=2)" || exit 1
CMD ["genmedia", "serve"]
