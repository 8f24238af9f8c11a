"""ollama-deploy: remove Ollama and what the deploy installed; models and the account stay.

    pyinfra -y inventory/prod.py uninstall.py
    pyinfra -y inventory/prod.py uninstall.py --data ollama_uninstall_models=true --data ollama_uninstall_account=true
"""
from ollama_deploy import uninstall_ollama

uninstall_ollama()
