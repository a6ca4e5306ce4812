"""Bearer credentials for every role, stored only as SHA-256 hashes."""
