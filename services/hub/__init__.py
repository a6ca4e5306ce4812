"""The hub: enrollment, agreements, queries, task leases, the relay, results and audit."""
