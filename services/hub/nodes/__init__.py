"""Node enrollment: agency code, X25519 and Ed25519 public keys, a node credential."""
