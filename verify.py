"""Check that each host's settings took effect, without changing anything.

    pyinfra -y inventory/prod.py verify.py
"""
from pyinfra import inventory

from tasks.summary import failures_summarised_at_exit
from tasks.tunnel import connections_without_nagle
from tasks.verify import verify_host

# No validate_inventory(): verify changes nothing, and must report a host whose hardware no longer
# matches its profile (a GPU host fallen back to CPU) instead of refusing it.
connections_without_nagle(inventory)
failures_summarised_at_exit()
verify_host()
