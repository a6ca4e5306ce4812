"""Evaluation harness: classic hub linkage vs the private protocol on the same records."""
