"""Parsers that behave exactly as Ollama's Go code does (envconfig rules, host:port, durations,
GGUF metadata). Standard library only: the product and the test double both import it."""

# The Ollama release whose Go code these parsers follow: the one the deploy pins and the testbed builds.
OLLAMA_VERSION = "0.32.15"
