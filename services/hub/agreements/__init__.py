"""Data-sharing agreements the hub checks every query against."""
