"""The public transparency summary of queries run."""
