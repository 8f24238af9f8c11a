"""Pure libraries the deploy steps use: the settings declaration, the per-host plan, derived
values, the memory budget, hardware parsing, operations and the remote-shell helper."""
