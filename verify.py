"""Check that each host's settings took effect, without changing anything.

    pyinfra -y inventory/prod.py verify.py
"""
from ollama_deploy import verify_ollama

verify_ollama()
