# docsvc image: the API (uvicorn), the Celery worker and the beat scheduler all run from it;
# docker-compose.yml picks the command. Settings come from DOCSVC_* environment variables.

# --- build: turn the source tree into a wheel, so the runtime image holds no source checkout ---
FROM python:3.11-slim AS build
WORKDIR /src
COPY . .
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# --- runtime ---
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    DOCSVC_DATA_DIR=/var/lib/docsvc

# Noto fonts carry the Vietnamese glyphs for generated PDFs and signature stamps
# (DejaVu glyphs come out mis-scaled in pyHanko stamps).
RUN apt-get update \
    && apt-get install -y --no-install-recommends fonts-noto-core \
    && rm -rf /var/lib/apt/lists/*

# A fixed uid lets operators chown bind mounts predictably; no login shell, no home of its own.
RUN groupadd --system --gid 10001 docsvc \
    && useradd --system --uid 10001 --gid docsvc --home-dir /var/lib/docsvc --shell /usr/sbin/nologin docsvc \
    && install -d -o docsvc -g docsvc -m 0750 /var/lib/docsvc

# Dependencies resolve from the pins in pyproject.toml.
COPY --from=build /wheels /tmp/wheels
RUN pip install /tmp/wheels/*.whl && rm -rf /tmp/wheels

USER docsvc
WORKDIR /var/lib/docsvc
EXPOSE 8000

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]

# Behind a reverse proxy that terminates TLS; WEB_CONCURRENCY sets uvicorn's process count.
CMD ["uvicorn", "docsvc.asgi:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--no-server-header"]
