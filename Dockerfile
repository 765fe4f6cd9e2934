# mathbot in a container. Build and run with compose (compose.yaml), or by hand:
#   docker build -t mathbot . && docker run --env-file .env -v mathbot-data:/data mathbot
# Settings come from the environment (docs/settings.md); the SQLite memory lives in /data.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    MPLCONFIGDIR=/tmp/matplotlib \
    SESSION_DB=/data/maths_db.db

WORKDIR /app
COPY pyproject.toml README.md LICENSE ./
COPY bot ./bot
# With the PostgreSQL and Redis extras, so that SESSION_DB may name either server.
RUN pip install "./[postgres,redis]" \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin mathbot \
    && mkdir /data && chown mathbot /data

USER 10001
VOLUME ["/data"]

# Healthy when METRICS_PORT is unset (no health endpoint to ask); otherwise /healthz must answer 200.
HEALTHCHECK --interval=30s --timeout=10s --start-period=60s --retries=3 \
    CMD ["sh", "-c", "[ -z \"${METRICS_PORT:-}\" ] || python -c \"import urllib.request; urllib.request.urlopen('http://127.0.0.1:${METRICS_PORT}/healthz', timeout=5)\""]

CMD ["python", "-m", "bot"]
