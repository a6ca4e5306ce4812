"""Results: the joiner's encrypted tally in, a disclosure-controlled table out."""
