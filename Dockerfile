# Production image: slim Python, non-root, static files collected at build time, served by
# Uvicorn (the ASGI server chosen by the benchmark, see bench/README.md).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    CHAT_VAR_DIR=/data \
    MEDIA_ROOT=/data/media \
    PORT=8000

WORKDIR /app
RUN useradd --create-home --uid 10001 --shell /usr/sbin/nologin app \
    && mkdir -p /data && chown app:app /data

# Dependencies first, so code changes do not reinstall them.
COPY pyproject.toml constraints.txt README.md ./
COPY chatapp/__init__.py chatapp/__init__.py
RUN pip install -c constraints.txt . && pip uninstall -y gemini-chat

COPY manage.py ./
COPY chatapp ./chatapp
COPY templates ./templates
COPY static ./static
# collectstatic needs settings, not secrets: a throwaway key for this one command.
RUN DJANGO_SECRET_KEY=collectstatic-only CHAT_VAR_DIR=/tmp/build \
    python manage.py collectstatic --noinput --verbosity 0

USER app
VOLUME ["/data"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('PORT', '8000'), timeout=4)"
CMD ["sh", "-c", "python manage.py migrate --noinput && exec uvicorn chatapp.asgi:application --host 0.0.0.0 --port \"$PORT\" --proxy-headers --forwarded-allow-ips='*' --timeout-graceful-shutdown 10 --no-access-log"]
