# A crosstally agency node: pulls work from the hub, publishes no port.
FROM python:3.11-slim
RUN useradd --create-home --uid 10001 crosstally
WORKDIR /opt/crosstally
COPY pyproject.toml README.md ./
COPY protocol ./protocol
COPY services ./services
COPY crosstally ./crosstally
RUN pip install --no-cache-dir . && mkdir -p /var/lib/crosstally && chown crosstally /var/lib/crosstally
USER crosstally
VOLUME ["/var/lib/crosstally"]
HEALTHCHECK --interval=10s --timeout=5s --retries=5 \
    CMD ["crosstally", "node", "health", "--config", "/etc/crosstally/node.toml"]
CMD ["crosstally", "node", "serve", "--config", "/etc/crosstally/node.toml"]
