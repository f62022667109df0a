# The whole set-up on a fresh machine: `make run` or `make test` creates .venv/ when missing.
# torch is installed first from its pin (a CPU build), so pip never resolves an unpinned torch.
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.nas-latency-installed
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: setup run test bench clean proto

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nas-latency spaces
	$(VENV)/bin/nas-latency describe --space nasbench201 '|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|' --summary
	$(VENV)/bin/nas-latency benchmark featurize --space nasbench201

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
