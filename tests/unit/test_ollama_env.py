"""tasks/ollama_env: the extractor reads a Go tree the way the declaration describes, and says what
differs. (tests/conformance/test_startup.py runs it on the pinned Ollama module itself.)"""
from __future__ import annotations

from ollama_deploy.lib.ollama_env import READS, Var, differences, read_source, side

CONFIG_GO = '''package envconfig

func Host() *url.URL {
	s := strings.TrimSpace(Var("OLLAMA_HOST"))
	return nil
}

var (
	NumParallel = Uint("OLLAMA_NUM_PARALLEL", 1)
	UseAuth = Bool("OLLAMA_AUTH")
)

var GpuOverhead = Uint64("OLLAMA_GPU_OVERHEAD", 0)

func AsMap() map[string]EnvVar {
	ret := map[string]EnvVar{
		"OLLAMA_HOST":         {"OLLAMA_HOST", Host(), "IP Address"},
		"OLLAMA_NUM_PARALLEL": {"OLLAMA_NUM_PARALLEL", NumParallel(), "Maximum number of parallel requests"},
	}
	ret["OLLAMA_GPU_OVERHEAD"] = EnvVar{"OLLAMA_GPU_OVERHEAD", GpuOverhead(), "Reserve"}
	return ret
}
'''


def _tree(tmp_path, files: dict[str, str]):
    for rel, text in {"envconfig/config.go": CONFIG_GO, **files}.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(text)
    return tmp_path


def test_readers_logging_and_the_files_that_read_unlogged_variables(tmp_path):
    src = _tree(tmp_path, {
        "api/client.go": "if envconfig.UseAuth() {}\n",
        "server/routes.go": 'x := os.Getenv("OLLAMA_EXPERIMENT")\nslog.Info("m", "OLLAMA_NOT_READ", 1)\n',
        "server/quantization.go": 'const compatEnv = "OLLAMA_COMPAT"\n',
        "server/routes_test.go": 'os.Getenv("OLLAMA_ONLY_IN_TESTS")\n'})
    assert read_source(src) == {
        "OLLAMA_AUTH": Var("Bool", False, ("api/client.go",)),
        "OLLAMA_COMPAT": Var("getenv", False, ("server/quantization.go",)),
        "OLLAMA_EXPERIMENT": Var("getenv", False, ("server/routes.go",)),
        "OLLAMA_GPU_OVERHEAD": Var("Uint64(0)"),
        "OLLAMA_HOST": Var("func Host"),
        "OLLAMA_NUM_PARALLEL": Var("Uint(1)"),
    }


def test_differences_name_each_variable_the_declaration_gets_wrong(tmp_path):
    found = dict(READS)
    found["OLLAMA_NEW"] = Var("Bool")
    found["OLLAMA_NUM_PARALLEL"] = Var("Uint(2)")
    del found["OLLAMA_EXPERIMENT"]
    lines = differences(found)
    assert [line.split(":")[0] for line in lines] == ["OLLAMA_EXPERIMENT", "OLLAMA_NEW", "OLLAMA_NUM_PARALLEL"]
    assert "declared Var(reader='Uint(1)'" in lines[2] and "the source has Var(reader='Uint(2)'" in lines[2]
    assert differences(dict(READS)) == []


def test_side_tells_the_server_from_the_client():
    assert side("OLLAMA_NUM_PARALLEL") == "server"          # logged
    assert side("OLLAMA_LLAMA_CPP_COMPAT") == "server"      # read by server code, never logged
    assert side("OLLAMA_AUTH") == "client" and side("OLLAMA_SKILLS") == "client"
    assert side("OLLAMA_NUM_THREADS") == ""                 # seed 000's: nothing reads it
