"""The deployable services: the hub and the agency node, their wire models and commands."""
