# One image for every service: python -m producer | consumer | batch_job.
# Build stage: wheels of the project and its pinned dependencies.
FROM python:3.12-slim-bookworm AS build
WORKDIR /src
COPY docker/requirements.lock ./
RUN pip wheel --no-cache-dir --wheel-dir /wheels -r requirements.lock \
    && cp requirements.lock /wheels/
COPY pyproject.toml README.md ./
COPY streamtrain ./streamtrain
COPY producer ./producer
COPY consumer ./consumer
COPY batch_job ./batch_job
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels .

# Final stage: no build tools, no caches, a non-root user.
FROM python:3.12-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels \
       -r /wheels/requirements.lock streamtrain==0.1.0 \
    && rm -rf /wheels \
    && groupadd --gid 10001 streamtrain \
    && useradd --create-home --uid 10001 --gid 10001 streamtrain \
    && mkdir -p /data/checkpoints /data/models \
    && chown -R streamtrain:streamtrain /data
USER 10001:10001
WORKDIR /home/streamtrain
VOLUME ["/data"]
ENTRYPOINT ["python", "-m"]
CMD ["consumer", "--help"]
