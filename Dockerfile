# The dca worker and panel in one image; compose.yaml runs one container of each on one
# data volume. Build: docker build -t dca .   Run alone: docker run -v dca-data:/data dca
FROM python:3.11-slim

# uv installs exactly what uv.lock pins; no dev tools (pytest, playwright) in the image.
RUN pip install --no-cache-dir uv
ENV UV_PROJECT_ENVIRONMENT=/opt/dca \
    UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    PATH=/opt/dca/bin:$PATH \
    PYTHONUNBUFFERED=1
WORKDIR /app
COPY pyproject.toml uv.lock README.md ./
RUN uv sync --frozen --no-dev --no-install-project
COPY dca ./dca
COPY app.py ./
COPY pages ./pages
COPY .streamlit ./.streamlit
RUN uv sync --frozen --no-dev

# Not root: the container writes only to the data volume.
RUN useradd --create-home --uid 1000 dca && mkdir /data && chown dca /data
USER dca
# Plan, ledger, notifications and the trading-day cache all live on the volume, so a
# new container (an upgrade, a reboot) finds the same ledger and needs no rebuild of the
# calendar table.
ENV DCA_HOME=/data XDG_CACHE_HOME=/data/cache
VOLUME /data

# `docker stop` sends SIGTERM: the run in flight finishes, then the worker exits 0.
# Give it time (docker stop -t 120, or stop_grace_period in compose.yaml).
STOPSIGNAL SIGTERM
CMD ["dca", "worker"]
