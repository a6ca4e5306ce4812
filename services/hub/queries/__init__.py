"""Queries: submission against an agreement, the Paillier key's life, progress and end."""
