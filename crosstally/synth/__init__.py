"""Synthetic Connecticut youth population and agency extracts with ground truth."""
