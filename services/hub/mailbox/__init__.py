"""The relay mailbox: sealed node-to-node blobs the hub stores but cannot read."""
