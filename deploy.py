"""ollama-deploy: converge each host into a tuned Ollama server.

    pyinfra -y inventory/prod.py deploy.py

The steps, in order, are in tasks/converge.py; other deploys call the same entry point.
"""
from ollama_deploy import deploy_ollama, deploy_site_registry

deploy_site_registry()  # hosts of the inventory's site_registry group, if any: before any host pulls
deploy_ollama()
