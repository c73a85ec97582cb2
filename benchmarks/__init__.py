"""graphkit benchmarks: every number in the README and docs comes from a script here."""
