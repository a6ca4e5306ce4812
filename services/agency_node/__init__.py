"""The agency node: reads its extract locally, pulls tasks from the hub, runs protocol steps."""
