"""The porcelain: one module per user verb, composing the plumbing; returns data, never prints."""
