"""Values for every host of this inventory. Each name is a setting declared in
ollama_deploy/lib/settings.py (type, default, description); the README's settings table lists them.

The profiles' own values (cpu_xeon, dual_gpu, dgx_spark) are declared once, in
ollama_deploy/lib/profiles.py, and sit under this file: a value here overrides a profile's. A file
group_data/<group>.py holds values for the hosts of one inventory group, over this one.
"""

ollama_models: list[str] = []
