# The crosstally hub: the only container that publishes a port.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 crosstally
WORKDIR /opt/crosstally
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY services ./services
COPY crosstally ./crosstally
RUN pip install --no-cache-dir .
USER crosstally
ENV CROSSTALLY_HUB_HOST=0.0.0.0 \
    CROSSTALLY_HUB_PORT=8700
EXPOSE 8700
HEALTHCHECK --interval=10s --timeout=5s --retries=5 CMD ["crosstally", "hub", "health"]
CMD ["crosstally", "hub", "serve"]
