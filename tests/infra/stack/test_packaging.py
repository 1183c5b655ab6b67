"""The bundled Lambda packages: what the worker and API assets hold, and what the API handler imports."""

from __future__ import annotations

import subprocess
import sys

from tests.infra.stack.helpers import LAMBDA_UNZIPPED_LIMIT_MB, ROOT, asset_dir, dir_mb


def test_worker_asset_has_no_training_stack_and_fits_lambda(outdir, template, ids):
    """The bundled worker: onnxruntime + numpy for cp312 x86_64, no TensorFlow/Keras/pandas, well under 250 MB."""
    path = asset_dir(outdir, template, ids["worker"])
    top = {p.name.lower() for p in path.iterdir()}
    assert not top & {"tensorflow", "keras", "tf_keras", "pandas", "tensorboard", "torch"}
    assert {"onnxruntime", "numpy", "pydantic_core", "aws_lambda_powertools", "lambdas", "contract"} <= top
    assert (path / "lambdas" / "worker" / "handler.py").exists()
    assert not (path / "model").exists(), "the model comes from S3, not the code package"
    native = {p.name for p in (path / "pydantic_core").glob("*.so")}
    assert any("cpython-312-x86_64-linux-gnu" in n for n in native), native
    assert dir_mb(path) < LAMBDA_UNZIPPED_LIMIT_MB * 0.6


def test_api_asset_leaves_the_model_dependencies_out(outdir, template, ids):
    """The API package has the handlers and pydantic but neither numpy nor onnxruntime."""
    path = asset_dir(outdir, template, ids["api_function"])
    top = {p.name.lower() for p in path.iterdir()}
    assert not top & {"numpy", "onnxruntime"}
    assert {"pydantic", "aws_lambda_powertools", "lambdas", "contract"} <= top
    assert dir_mb(path) < 40


def test_api_handler_imports_without_numpy_or_onnxruntime():
    """What the API package lacks is never imported by the API handler."""
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] in {'numpy', 'onnxruntime', 'tensorflow', 'keras', 'pandas'}:\n"
        "            raise ImportError('blocked: ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import lambdas.api.handler\n"
    )
    env = {"PATH": "", "AWS_DEFAULT_REGION": "us-east-1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
