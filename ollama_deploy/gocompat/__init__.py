"""Parsers that behave exactly as Ollama's Go code does (envconfig rules, host:port, durations,
GGUF metadata). Standard library only: the product and the test double both import it."""
