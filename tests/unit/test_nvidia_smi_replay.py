"""The testbed's fake nvidia-smi, run as a subprocess against each recorded hardware profile.

Expected values are read from the profile JSON / table here, independently of the script's own code,
so a formatting or lookup bug in the script makes these tests fail.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "testbed" / "hardware" / "nvidia_smi_replay.py"
PROFILES = ROOT / "testbed" / "hardware" / "profiles"
GPU_PROFILES = ["dual_gpu", "dgx_spark"]

# The exact query the deploy facts and the Ollama test double run.
DEPLOY_FIELDS = "index,pci.bus_id,uuid,name,memory.total,memory.used,compute_cap,driver_version"
DEPLOY_QUERY = ["--query-gpu=" + DEPLOY_FIELDS, "--format=csv,noheader,nounits"]


@pytest.fixture
def fail_dir(tmp_path):
    # Always point failure injection at a private dir so a real /run/nvidia-smi-replay/fail can't leak in.
    d = tmp_path / "fail"
    d.mkdir()
    return d


def smi(profile, fail_dir, *args):
    env = {"NVIDIA_SMI_REPLAY_DIR": str(PROFILES / profile), "NVIDIA_SMI_REPLAY_FAIL_DIR": str(fail_dir),
           "PATH": "/usr/bin:/bin"}
    return subprocess.run([sys.executable, str(SCRIPT), *args], env=env, capture_output=True, text=True,
                          timeout=30)


def recording(profile):
    return json.loads((PROFILES / profile / "gpus.json").read_text())


def expected_deploy_row(gpu, driver):
    na = lambda v: "[N/A]" if v is None else str(v)  # noqa: E731
    return [str(gpu["index"]), gpu["pci.bus_id"], gpu["uuid"], gpu["name"], na(gpu["memory.total"]),
            na(gpu["memory.used"]), gpu["compute_cap"], driver]


def test_script_declares_itself_a_replay():
    head = SCRIPT.read_text().splitlines()[:3]
    assert head[0].startswith("#!") and "python3" in head[0]
    assert "REPLAY" in head[1] and "ollama-deploy testbed" in head[1] and "NOT NVIDIA" in head[1]


def test_dual_gpu_deploy_query_gives_two_exact_rows(fail_dir):
    rec = recording("dual_gpu")
    res = smi("dual_gpu", fail_dir, *DEPLOY_QUERY)
    assert res.returncode == 0, res.stdout + res.stderr
    rows = [line.split(", ") for line in res.stdout.splitlines()]
    assert len(rows) == 2
    assert rows == [expected_deploy_row(g, rec["driver_version"]) for g in rec["gpus"]]
    # The seed host's facts, spelled out once so a wrong recording is caught too.
    assert [(r[3], r[4], r[6]) for r in rows] == [("Quadro P4000", "8192", "6.1"),
                                                  ("NVIDIA GeForce GTX 1060 6GB", "6144", "6.1")]
    assert {r[7] for r in rows} == {"580.65.06"}


def test_header_and_units_without_nounits(fail_dir):
    rec = recording("dual_gpu")
    res = smi("dual_gpu", fail_dir, "--query-gpu=" + DEPLOY_FIELDS, "--format=csv")
    lines = res.stdout.splitlines()
    assert res.returncode == 0
    assert lines[0] == ("index, pci.bus_id, uuid, name, memory.total [MiB], memory.used [MiB], "
                        "compute_cap, driver_version")
    first = lines[1].split(", ")
    assert first[4] == f"{rec['gpus'][0]['memory.total']} MiB"
    assert first[5] == f"{rec['gpus'][0]['memory.used']} MiB"
    assert len(lines) == 1 + len(rec["gpus"])


def test_nounits_keeps_header_units_but_drops_value_units(fail_dir):
    rec = recording("dual_gpu")
    res = smi("dual_gpu", fail_dir, "--query-gpu=memory.total,name", "--format=csv,nounits")
    lines = res.stdout.splitlines()
    assert lines[0] == "memory.total [MiB], name"
    assert lines[1:] == [f"{g['memory.total']}, {g['name']}" for g in rec["gpus"]]


def test_any_field_order_aliases_and_derived_fields(fail_dir):
    rec = recording("dual_gpu")
    res = smi("dual_gpu", fail_dir, "--query-gpu=memory.free,gpu_name,count,gpu_bus_id,gpu_uuid",
              "--format=csv")
    lines = res.stdout.splitlines()
    assert res.returncode == 0
    assert lines[0] == "memory.free [MiB], name, count, pci.bus_id, uuid"
    for line, g in zip(lines[1:], rec["gpus"]):
        assert line.split(", ") == [f"{g['memory.total'] - g['memory.used']} MiB", g["name"],
                                    str(len(rec["gpus"])), g["pci.bus_id"], g["uuid"]]


def test_gb10_unified_memory_is_na(fail_dir):
    rec = recording("dgx_spark")
    gpu = rec["gpus"][0]
    assert gpu["memory.total"] is None and gpu["memory.used"] is None  # the recording itself
    res = smi("dgx_spark", fail_dir, *DEPLOY_QUERY)
    assert res.returncode == 0
    assert res.stdout.splitlines() == [", ".join(expected_deploy_row(gpu, rec["driver_version"]))]
    assert res.stdout.split(", ")[4:6] == ["[N/A]", "[N/A]"]
    res = smi("dgx_spark", fail_dir, "--query-gpu=name,memory.total,memory.free,compute_cap", "--format=csv")
    assert res.stdout.splitlines() == ["name, memory.total [MiB], memory.free [MiB], compute_cap",
                                       "NVIDIA GB10, [N/A], [N/A], 12.1"]


def test_unknown_field_is_rejected_like_the_real_tool(fail_dir):
    res = smi("dual_gpu", fail_dir, "--query-gpu=index,foo", "--format=csv")
    assert res.returncode == 2
    assert res.stdout == 'Field "foo" is not a valid field to query.\n\n'


def test_missing_format_is_rejected(fail_dir):
    res = smi("dual_gpu", fail_dir, "--query-gpu=index")
    assert res.returncode == 2
    assert res.stdout.startswith('"--format=" switch is missing.')


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_failure_injection(profile, fail_dir):
    (fail_dir / "fail").touch()
    for args in ([], ["-L"], DEPLOY_QUERY):
        res = smi(profile, fail_dir, *args)
        assert res.returncode == 9
        assert res.stdout.startswith(
            "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.")
    (fail_dir / "fail").unlink()
    assert smi(profile, fail_dir, "-L").returncode == 0


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_list_gpus(profile, fail_dir):
    rec = recording(profile)
    for flag in ("-L", "--list-gpus"):
        res = smi(profile, fail_dir, flag)
        assert res.returncode == 0
        assert res.stdout.splitlines() == [f"GPU {g['index']}: {g['name']} (UUID: {g['uuid']})"
                                           for g in rec["gpus"]]


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_table_mode_prints_date_then_recorded_table(profile, fail_dir):
    rec = recording(profile)
    res = smi(profile, fail_dir)
    assert res.returncode == 0
    date, rest = res.stdout.split("\n", 1)
    assert re.fullmatch(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} {7}", date)
    assert rest == (PROFILES / profile / "table.txt").read_text()
    for g in rec["gpus"]:
        assert g["name"] in rest and g["pci.bus_id"] in rest
    assert f"Driver Version: {rec['driver_version']}" in rest
    assert f"CUDA Version: {rec['cuda_version']}" in rest
    assert "No running processes found" in rest


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_table_memory_cells_agree_with_recording(profile):
    """table.txt is hand-kept next to gpus.json: a human reading it must see the same memory."""
    rec = recording(profile)
    cells = re.findall(r"\|\s+(\d+)MiB /\s+(\d+)MiB \||\| (Not Supported)\s+\|",
                       (PROFILES / profile / "table.txt").read_text())
    want = [(None, None) if g["memory.total"] is None else (g["memory.used"], g["memory.total"])
            for g in rec["gpus"]]
    got = [(None, None) if c[2] else (int(c[0]), int(c[1])) for c in cells]
    assert got == want


@pytest.mark.parametrize("profile", GPU_PROFILES)
def test_query_log(profile, fail_dir):
    rec = recording(profile)
    res = smi(profile, fail_dir, "-q")
    assert res.returncode == 0
    out = res.stdout
    assert "==============NVSMI LOG==============" in out
    assert re.search(rf"^Driver Version\s+: {re.escape(rec['driver_version'])}$", out, re.M)
    assert re.search(rf"^CUDA Version\s+: {re.escape(rec['cuda_version'])}$", out, re.M)
    assert re.search(rf"^Attached GPUs\s+: {len(rec['gpus'])}$", out, re.M)
    for g in rec["gpus"]:
        assert re.search(rf"^    Product Name\s+: {re.escape(g['name'])}$", out, re.M)
        assert re.search(rf"^    GPU UUID\s+: {g['uuid']}$", out, re.M)
        total = "N/A" if g["memory.total"] is None else f"{g['memory.total']} MiB"
        assert re.search(rf"^        Total\s+: {total}$", out, re.M)


@pytest.mark.parametrize("profile", ["cpu_xeon", "dual_gpu", "dgx_spark"])
def test_hardware_json_schema(profile):
    hw = json.loads((PROFILES / profile / "hardware.json").read_text())
    assert set(hw) == {"profile", "arch", "cpu_model", "physical_cores", "threads", "mem_total_mib",
                       "cpu_flags", "source"}
    assert hw["profile"] == profile and hw["source"]
    assert hw["arch"] in ("x86_64", "aarch64") and isinstance(hw["cpu_flags"], list)
    if hw["physical_cores"] is not None:
        assert hw["threads"] >= hw["physical_cores"] > 0 and hw["mem_total_mib"] > 0


def test_cpu_profile_has_no_recording():
    assert not (PROFILES / "cpu_xeon" / "gpus.json").exists()
    assert "no nvidia-smi" in (PROFILES / "cpu_xeon" / "README").read_text().lower()
