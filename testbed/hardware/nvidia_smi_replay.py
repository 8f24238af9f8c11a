#!/usr/bin/env python3
# REPLAY of recorded `nvidia-smi` output for the ollama-deploy testbed - this is NOT NVIDIA's nvidia-smi.
"""Fake nvidia-smi that replays a recorded hardware profile (ollama-deploy testbed; not NVIDIA software).

Testbed hosts are GPU-less containers. Installed as /usr/local/bin/nvidia-smi, this script prints what
the recorded hardware profile printed, so deploy facts and the Ollama test double see "the" GPUs.
Stdlib only (runs on the hosts' plain python3).

  recording: $NVIDIA_SMI_REPLAY_DIR (default /usr/local/share/nvidia-smi-replay)/gpus.json + table.txt
  failure:   if $NVIDIA_SMI_REPLAY_FAIL_DIR (default /run/nvidia-smi-replay)/fail exists, act like a
             host whose driver is gone (the "GPU fell back to CPU" case).

Supported: no args (table), -L/--list-gpus, -q/--query, --query-gpu=F1,F2 --format=csv[,noheader][,nounits].
"""
import datetime
import json
import os
import sys
import time

DEFAULT_DIR = "/usr/local/share/nvidia-smi-replay"
DEFAULT_FAIL_DIR = "/run/nvidia-smi-replay"

# Exit codes from the nvidia-smi man page (RETURN VALUE).
EXIT_BAD_ARGUMENT = 2
EXIT_DRIVER_NOT_LOADED = 9

DRIVER_FAILURE = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
                  "Make sure that the latest NVIDIA driver is installed and running.\n")
HELP_HINT = "Please run 'nvidia-smi -h' for help."

# Queryable fields -> unit. The unit appears as "[unit]" in the CSV header (even with nounits, as the real
# tool does) and after each value unless nounits is given.
FIELDS = {
    "timestamp": None, "driver_version": None, "count": None, "index": None, "name": None,
    "uuid": None, "pci.bus_id": None, "compute_cap": None, "memory.total": "MiB",
    "memory.used": "MiB", "memory.free": "MiB", "utilization.gpu": "%", "temperature.gpu": None,
    "power.draw": "W", "persistence_mode": None,
}
# Real aliases; the header shows the canonical name (e.g. gpu_name -> "name").
ALIASES = {"gpu_name": "name", "gpu_uuid": "uuid", "gpu_bus_id": "pci.bus_id"}


class UsageError(Exception):
    """A command line the real tool rejects; the message is what it prints."""


def replay_dir():
    return os.environ.get("NVIDIA_SMI_REPLAY_DIR", DEFAULT_DIR)


def driver_failed():
    fail_dir = os.environ.get("NVIDIA_SMI_REPLAY_FAIL_DIR", DEFAULT_FAIL_DIR)
    return os.path.exists(os.path.join(fail_dir, "fail"))


def load_recording():
    path = os.path.join(replay_dir(), "gpus.json")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except OSError as err:
        # A broken testbed install must say so plainly, not pose as a driver problem.
        sys.exit(f"nvidia-smi (testbed replay): cannot read recording {path}: {err.strerror}")


def raw_value(field, gpu, rec):
    """The recorded value of one field for one GPU; None means the GPU does not support it."""
    if field == "timestamp":
        return datetime.datetime.now().strftime("%Y/%m/%d %H:%M:%S.%f")[:-3]
    if field == "driver_version":
        return rec["driver_version"]
    if field == "count":
        return len(rec["gpus"])
    if field == "memory.free":
        # Derived so the recording cannot contradict itself; unified-memory GPUs have no total -> N/A.
        total, used = gpu.get("memory.total"), gpu.get("memory.used")
        return None if total is None or used is None else total - used
    return gpu.get(field)


def format_value(field, value, units):
    if value is None:
        return "[N/A]"
    if field == "power.draw":
        value = f"{value:.2f}"
    unit = FIELDS[field]
    return f"{value} {unit}" if unit and units else str(value)


def parse_format(spec):
    opts = spec.split(",")
    if "csv" not in opts or any(o not in ("csv", "noheader", "nounits") for o in opts):
        bad = next((o for o in opts if o not in ("csv", "noheader", "nounits")), spec)
        raise UsageError(f"ERROR: Option {bad} is not recognized. {HELP_HINT}")
    return "noheader" in opts, "nounits" in opts


def query_gpu(fields_spec, format_spec, rec):
    """--query-gpu: one CSV row per GPU, values joined by ", " like the real tool."""
    if format_spec is None:
        raise UsageError(f'"--format=" switch is missing. {HELP_HINT}')
    fields = []
    for name in fields_spec.split(","):
        canonical = ALIASES.get(name.strip(), name.strip())
        if canonical not in FIELDS:
            # Real text (stdout, blank line after, exit 2), e.g. CoHDI/composable-resource-operator#37.
            raise UsageError(f'Field "{name.strip()}" is not a valid field to query.\n')
        fields.append(canonical)
    noheader, nounits = parse_format(format_spec)
    lines = []
    if not noheader:
        lines.append(", ".join(f"{f} [{FIELDS[f]}]" if FIELDS[f] else f for f in fields))
    for gpu in rec["gpus"]:
        lines.append(", ".join(format_value(f, raw_value(f, gpu, rec), not nounits) for f in fields))
    return "\n".join(lines) + "\n"


def list_gpus(rec):
    return "".join(f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})\n" for g in rec["gpus"])


def table(rec):
    # nvidia-smi starts with the current date (asctime layout + trailing spaces); the rest is recorded.
    with open(os.path.join(replay_dir(), "table.txt"), encoding="utf-8") as f:
        return time.asctime() + "       \n" + f.read()


def query_log(rec):
    """-q: the headline subset of the real NVSMI LOG, same "label : value" column layout."""
    def row(label, value, indent=0):
        pad = " " * indent
        return f"{pad}{label:<{42 - indent}}: {value}\n"

    def mib(v):
        return "N/A" if v is None else f"{v} MiB"

    out = "\n==============NVSMI LOG==============\n\n"
    out += row("Timestamp", time.asctime())
    out += row("Driver Version", rec["driver_version"])
    out += row("CUDA Version", rec["cuda_version"]) + "\n"
    out += row("Attached GPUs", len(rec["gpus"]))
    for g in rec["gpus"]:
        out += f"GPU {g['pci.bus_id']}\n"
        out += row("Product Name", g["name"], 4)
        out += row("GPU UUID", g["uuid"], 4)
        out += "    PCI\n" + row("Bus Id", g["pci.bus_id"], 8)
        out += "    FB Memory Usage\n"
        out += row("Total", mib(g.get("memory.total")), 8)
        out += row("Used", mib(g.get("memory.used")), 8)
        out += row("Free", mib(raw_value("memory.free", g, rec)), 8)
        out += "\n"
    return out


def option_value(args, i):
    """Value of --name=value or --name value; returns (value, next index)."""
    name, eq, value = args[i].partition("=")
    if eq:
        return value, i + 1
    if i + 1 < len(args):
        return args[i + 1], i + 2
    raise UsageError(f"ERROR: Option {name} is missing its value. {HELP_HINT}")


def run(args):
    """Returns (stdout text, exit code)."""
    if driver_failed():
        return DRIVER_FAILURE + "\n", EXIT_DRIVER_NOT_LOADED
    rec = load_recording()
    mode, fields_spec, format_spec, i = "table", None, None, 0
    while i < len(args):
        name = args[i].partition("=")[0]
        if name in ("-L", "--list-gpus"):
            mode, i = "list", i + 1
        elif name in ("-q", "--query"):
            mode, i = "log", i + 1
        elif name == "--query-gpu":
            mode = "csv"
            fields_spec, i = option_value(args, i)
        elif name == "--format":
            format_spec, i = option_value(args, i)
        else:
            raise UsageError(f"ERROR: Option {args[i]} is not recognized. {HELP_HINT}")
    if mode == "csv":
        return query_gpu(fields_spec, format_spec, rec), 0
    if format_spec is not None:
        # --format without a --query-* switch, real message.
        raise UsageError(f"Invalid combination of input arguments. {HELP_HINT}")
    return {"list": list_gpus, "log": query_log, "table": table}[mode](rec), 0


def main(argv=None):
    try:
        text, code = run(sys.argv[1:] if argv is None else argv)
    except UsageError as err:
        text, code = f"{err}\n", EXIT_BAD_ARGUMENT
    sys.stdout.write(text)
    return code


if __name__ == "__main__":
    sys.exit(main())
