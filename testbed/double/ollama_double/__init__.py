"""ollama_double: the ollama-deploy TEST DOUBLE of Ollama (not Ollama).

It stands in for the real ``ollama`` binary on the testbed, where no real
Ollama can be downloaded and no GPU exists.  Its machine-visible behaviour
(HTTP API, journal lines in Go slog format, CLI output) imitates Ollama
v0.32.15 as documented in ``docs/ollama-0.32.15.md``; it
never runs a model.  Every human-facing entry point says it is a test double
(``ollama --version`` prints a note on stderr, the simulated llama-server
prints a banner line when it "loads" a model).

Layout inside a release tarball::

    bin/ollama                                   launcher (testbed/double/bin_ollama)
    lib/ollama/test-double/ollama_double/        this package
    lib/ollama/test-double/ollama_deploy/gocompat/   the product's Go-compatible parsers (GGUF too)
    lib/ollama/test-double/config.json           version, arch, registry, speeds
"""
