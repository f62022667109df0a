# The whole set-up on a fresh machine: `make run` or `make test` creates .venv/ when missing.
# torch is installed first from its pin (a CPU build), so pip never resolves an unpinned torch.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nas-latency-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test bench clean proto constraints

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -c constraints.txt -e '.[dev]'
	@touch $(STAMP)

# constraints.txt: the exact versions of everything but torch in a venv where `make test` passed (run it first)
constraints: $(STAMP)
	{ sed -n '/^#/p' constraints.txt; $(PY) -m pip freeze --exclude-editable | grep -v '^torch=='; } > constraints.txt.new
	mv constraints.txt.new constraints.txt

# The main job: hold a bundled device out of training, onboard it from 10 measurements, serve it over gRPC on
# 127.0.0.1 (a free port), run the latency-constrained NNI search through the server, judge the result against the
# bundled measurements and write reports/nni_search_*.png. State goes to NAS_LATENCY_HOME (default ~/.nas-latency).
RUN_DEVICE ?= gold_6240
RUN_BUDGET_MS ?= 10
RUN_TRIALS ?= 300
run: $(STAMP)
	$(PY) -m nas_latency.mainjob --device $(RUN_DEVICE) --max-latency-ms $(RUN_BUDGET_MS) --trials $(RUN_TRIALS) --reports-dir reports

test: $(STAMP)
	OPENBLAS_NUM_THREADS=1 $(PY) -m pytest -q

bench: $(STAMP)
	$(VENV)/bin/nas-latency benchmark featurize --space nasbench201
	$(VENV)/bin/nas-latency benchmark featurize --space fbnet

clean:
	rm -rf $(VENV) build *.egg-info

# ---- proto: regenerate the Python code of the gRPC contract (nas_latency/v1/*_pb2*.py[i]) from proto/ -------------
# The generated files are committed; tests/server/test_proto_drift.py fails when they differ from this output.
PROTOS := $(wildcard proto/nas_latency/v1/*.proto)
proto: $(STAMP)
	$(PY) -m grpc_tools.protoc -Iproto --python_out=. --pyi_out=. --grpc_python_out=. $(PROTOS)
