"""ollama-deploy: converge each host into a tuned Ollama server.

    pyinfra -y inventory/prod.py deploy.py
"""
from pyinfra import inventory

from tasks.configure import configure_ollama
from tasks.firewall import firewall
from tasks.install import install_ollama
from tasks.models import ensure_models, models_present_or_fail
from tasks.rollback import remember_good_config
from tasks.service import apply_changes
from tasks.smoke import smoke_test
from tasks.summary import failures_summarised_at_exit
from tasks.tunnel import connections_without_nagle
from tasks.validate import validate_inventory
from tasks.verify import verify_host
from tasks.watch import watch

connections_without_nagle(inventory)  # before the first fact: every command is a small request
failures_summarised_at_exit()
validate_inventory()
changes = install_ollama() + configure_ollama()
firewall()
apply_changes(changes)
ensure_models()
smoke_test(changes)
verify_host(changes)
remember_good_config()
watch()
models_present_or_fail()
