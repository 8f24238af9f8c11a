"""The deploy steps (install, configure, service, models, firewall, smoke, verify, rollback,
validate, adopt, uninstall, watch), in the order ``converge`` runs them. Installed as
``ollama_deploy.tasks``."""
