"""Commands run on hosts rather than messages to agents: `exec` and `sync`, built on carriers."""
