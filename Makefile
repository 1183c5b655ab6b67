# Every target creates or reuses the virtualenv in $(VENV) from the pinned requirements.txt.
VENV ?= .venv
PY := $(VENV)/bin/python
SYSTEM_PYTHON ?= python3
export TF_CPP_MIN_LOG_LEVEL ?= 3
export PYTHONDONTWRITEBYTECODE = 1

.PHONY: venv test lint demo local retrain bench-replay openapi train export bench bench-search bench-similar bench-explain bench-events bench-quality bench-synthetic ablation tune lr-find package clean loadtest flood bench-experiment bench-two-models fuzz scan bench-train bench-learn

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(SYSTEM_PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

venv: $(VENV)/.installed

$(VENV)/.bench-installed: $(VENV)/.installed requirements-bench.txt
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-bench.txt
	touch $@

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# The suite on TEST_WORKERS processes (pytest-xdist), a test file's tests in one of them (module fixtures such as a
# local stack start once): 419 s instead of 659 s on this 2-core machine (2026-12-07).
TEST_WORKERS ?= 2
test: lint
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile

# The whole story on this machine: train + export when no artifact exists, start the local stack (moto + the
# Lambda handlers), submit a known-user, a cold-start, a similar-movies and a batch request, poll, print.
demo: venv
	$(PY) -m infra.demo

# The request flow on this machine: the web page on http://127.0.0.1:8765/, the API there and under /api/ (Ctrl-C stops).
local: venv
	$(PY) -m infra.local

# The local stack under load: 2,000 mixed requests from 64 clients, long-polling, with 1, 2 and 4 worker processes
# side by side; fails on any lost, stuck or differing request (writes artifacts/loadtest.md). LOADTEST_ARGS adds flags.
LOADTEST_ARGS ?=
loadtest: venv
	$(PY) -m bench.loadtest $(LOADTEST_ARGS)
	$(PY) -m bench.flood

# Are an experiment's decisions right? ml-100k's later ratings as what users did next, a better and a worse candidate
# against the served model over 20 user splits (writes artifacts/experiment_sim.md and docs/experiment_sim.png).
bench-experiment: venv
	$(PY) -m bench.experiment_sim

# What an experiment's two models cost a worker: peak memory and load time, one model against two, at the served
# catalogue and 100,000 movies (writes artifacts/two_models.md).
bench-two-models: venv
	$(PY) -m bench.two_models

# An anonymous flood through the page's /api/ at 3 x its usage plan while an operator works, with the deployed
# throttles; fails if an operator's request is refused or the plan lets too much through (writes artifacts/flood.md).
flood: venv
	$(PY) -m bench.flood

# schemathesis against the local stack: every check and phase, seed 42, 500 examples (the tests run 25).
fuzz: venv
	$(PY) -m infra.fuzz --max-examples 500

# The retraining loop once, against the running local stack (make local in another terminal): gather the stored events
# and the base data, train and export in a subprocess (the SageMaker job's entry point), judge the candidate beside the
# served model on the newest events, publish only past the gate (the stack serves it within seconds). With no base
# data yet it uploads ml-latest-small's first. RETRAIN_ARGS adds flags (python -m infra.retrain --help).
RETRAIN_ARGS ?=
retrain: venv
	$(PY) -m infra.retrain --local --base-dir $${RECSYS_DATA_DIR:-data}/ml-latest-small $(RETRAIN_ARGS)

# Regenerate lambdas/api/openapi.json from the routes and models, and the docs' API reference from it (tests fail
# when either is stale).
openapi: venv
	$(PY) -m infra.openapi
	$(PY) -m infra.api_reference

# Regenerate docs/costs.md from the cost model in infra/costs/ (tests/infra/test_costs_page.py fails when it is stale).
.PHONY: costs
costs: venv
	$(PY) -m infra.costs --page docs/costs.md

# The served model on ml-latest-small, and its serving artifact.
artifacts/model/metadata.json: | venv
	$(PY) -m training.train --out artifacts/model

train: artifacts/model/metadata.json

export: train
	$(PY) -m model_export.export --model artifacts/model --out artifacts/artifact

# Keras predict vs the serving engine, cold start, memory, worker package size (writes artifacts/bench.md).
bench: train
	$(PY) -m bench.serving --model artifacts/model

# GET /movies's title search at a 62,000-movie catalogue and on the served one (writes artifacts/bench_search.md).
bench-search: venv
	$(PY) -m bench.search

# Epoch time and peak memory against data size (synthetic, MovieLens-shaped: 0.1M, 1M, 10M, 25M ratings), the
# per-user softmax beside the per-rating one (writes artifacts/bench_train.md and docs/bench_train.png).
# BENCH_TRAIN_ARGS=--skip-largest leaves out 25M (about 20 minutes here).
BENCH_TRAIN_ARGS ?=
bench-train: venv
	$(PY) -m bench.train_scale $(BENCH_TRAIN_ARGS)

# Time to learn (issue 30): the served configuration to its validation plateau at the 1M, 10M and 25M shapes of
# training.synthetic.movielens_like, where each epoch's seconds go, implicit ALS and BPR beside it and the known
# ceiling (writes artifacts/time_to_learn.md and docs/time_to_learn.png). LEARN_ARGS="--sizes 1M" for the smallest
# only; at 25M this is hours on 2 cores.
LEARN_ARGS ?=
bench-learn: $(VENV)/.bench-installed
	$(PY) -m bench.time_to_learn $(LEARN_ARGS)

# "Similar movies" methods on u1 and ml-latest-small, held-out NDCG@10 and a sanity list (artifacts/similar_eval.md).
artifacts/u1/metadata.json: | venv
	$(PY) -m training.train --test-file u1 --out artifacts/u1

artifacts/u1-artifact/manifest.json: artifacts/u1/metadata.json
	$(PY) -m model_export.export --model artifacts/u1 --out artifacts/u1-artifact

# Is the retraining loop worth it? ml-100k and ml-latest-small replayed in time order through the local stack in 4
# windows: the first model frozen, with events folded in, and the loop retraining after each window (writes
# artifacts/replay/ and docs/replay.png; about half an hour here).
bench-replay: venv
	$(PY) -m bench.replay

# What folding in events is worth against the model alone and retrained (writes artifacts/events_eval/).
bench-events: venv
	$(PY) -m bench.fold_in

bench-similar: export artifacts/u1-artifact/manifest.json
	$(PY) -m bench.similar

# Are the reasons the model's own? Take away the rating a listed movie's first reason names, fold the user in again,
# see how far the movie falls, against a random rating and the most similar one (artifacts/explain_eval/, and
# docs/explain_faithfulness.png).
bench-explain: export artifacts/u1-artifact/manifest.json
	$(PY) -m bench.explain

# Our variants vs baselines, Surprise SVD/SVD++, implicit ALS/BPR and EASE (writes artifacts/bench_quality.md).
bench-quality: $(VENV)/.bench-installed
	$(PY) -m bench.quality

# Real vs synthetic data: served model, EASE, ALS, popularity, the true model's ceiling (artifacts/synthetic_check.md).
bench-synthetic: $(VENV)/.bench-installed
	$(PY) -m bench.synthetic_check $(SYNTHETIC_ARGS)

# Each model improvement added one at a time on u1 and ml-latest-small (writes artifacts/ablation.md).
ablation: venv
	$(PY) -m bench.ablation $(ABLATION_ARGS)

# Hyperparameter search with Optuna (seeded, resumable SQLite study, pruning); report in artifacts/tune.
# TUNE_ARGS, e.g. "--test-file u1 --objective ndcg@10 --sampler random"; see python -m bench.tune --help.
TRIALS ?= 20
TUNE_ARGS ?=
tune: venv
	$(PY) -m bench.tune --trials $(TRIALS) $(TUNE_ARGS)

# Learning-rate range test for the served model's settings (artifacts/lr_find/lr_find.{json,png}).
lr-find: venv
	$(PY) -m bench.lr_find

# The worker Lambda's deployment package, built without Docker (pip for the Lambda platform, trimmed).
package: export
	$(PY) -m model_export.package --out build/worker --artifact artifacts/artifact

# ------------------------------------------------------------------ AWS deployment (infra/, see README "Deploying to AWS")
# The CDK CLI is pinned in package.json and run through npx; the CDK app itself runs in $(VENV).
STACK ?= MovieRecommender
ARTIFACT ?= artifacts/artifact
CDK_DEPLOY_FLAGS ?=
# Context overrides for synth (and so deploy) and destroy, e.g. CDK_CONTEXT="-c waf=false -c retain_data=true".
CDK_CONTEXT ?=
export JSII_SILENCE_WARNING_DEPRECATED_NODE_VERSION ?= 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20
CDK = npx --no-install cdk --no-notices
CDK_APP = --app "$(PY) -m infra.app" -c stack_name=$(STACK) $(CDK_CONTEXT)

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

# cdk.out/$(STACK).template.json; cdk-nag's AWS Solutions checks fail the synth on any unacknowledged finding.
# Without an exported artifact the template deploys no model (-c artifact=none). cfn-lint W3005: CDK makes each
# function DependsOn the role whose ARN it already references; harmless.
synth: venv node_modules/.installed
	$(CDK) synth $(CDK_APP) -c artifact=$(if $(wildcard $(ARTIFACT)/manifest.json),$(ARTIFACT),none) --quiet
	$(VENV)/bin/cfn-lint --ignore-checks W3005 -- cdk.out/$(STACK).template.json

# Deploys exactly the synthesized, linted template (uploading ARTIFACT and web/), then serves ARTIFACT's version;
# publish_model ends with the web page's URL (the SiteUrl output).
deploy: venv node_modules/.installed
	@test -f $(ARTIFACT)/manifest.json || { echo "no model artifact in $(ARTIFACT): run 'make export' first" >&2; exit 2; }
	$(MAKE) synth
	$(CDK) deploy --app cdk.out $(CDK_DEPLOY_FLAGS) $(STACK)
	$(PY) -m infra.publish_model --artifact $(ARTIFACT) --stack $(STACK)

destroy: venv node_modules/.installed
	$(CDK) destroy $(CDK_APP) -c artifact=none $(STACK)

.PHONY: synth deploy destroy

clean:
	rm -rf artifacts build cdk.out .pytest_cache .ruff_cache

# ------------------------------------------------------------------ IaC scan (checkov)
# checkov lives in its own virtualenv: it brings many dependencies the app and its tests never need.
SCAN_VENV ?= .venv-scan

$(SCAN_VENV)/.installed: requirements-scan.txt
	test -x $(SCAN_VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(SCAN_VENV)
	$(SCAN_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-scan.txt
	touch $@

# checkov on the synthesized template: the counts, every failure and every skip with its reason (the skips live in
# the template, written by infra/checkov.py); fails on any unsuppressed finding.
scan: synth $(SCAN_VENV)/.installed
	$(PY) -m infra.scan --stack $(STACK) --checkov $(SCAN_VENV)/bin/checkov

# ------------------------------------------------------------------ Documentation site (mkdocs-material)
# mkdocs lives in its own virtualenv too. The site builds offline (no fonts, scripts or diagrams fetched); --strict
# fails on a broken link or anchor and on a page missing from the nav. Output in site/.
DOCS_VENV ?= .venv-docs

$(DOCS_VENV)/.installed: requirements-docs.txt
	test -x $(DOCS_VENV)/bin/python || $(SYSTEM_PYTHON) -m venv $(DOCS_VENV)
	$(DOCS_VENV)/bin/pip install --quiet --disable-pip-version-check -r requirements-docs.txt
	touch $@

docs: $(DOCS_VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs build --strict

# The site on http://127.0.0.1:8000/, rebuilt on every edit (Ctrl-C stops).
docs-serve: $(DOCS_VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(DOCS_VENV)/bin/mkdocs serve --dev-addr 127.0.0.1:8000

.PHONY: docs docs-serve
