"""Service command groups: `crosstally hub|node|query|admin ...` (wired in crosstally/cli.py)."""
