"""Tasks leased to nodes: claim with a lease, heartbeat, complete, refuse, hold, retry."""
