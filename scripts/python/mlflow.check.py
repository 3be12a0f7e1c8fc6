# Run by scripts/python-venv.sh before it marks the MLflow venv ready: MLflow 3.18.0 must be what
# `import mlflow` and the `mlflow` command see, with the scorer SDK and the server importable.
import subprocess
import sys
from pathlib import Path

import mlflow
from mlflow.genai.scorers import ScorerSamplingConfig, scorer  # noqa: F401
from mlflow.genai.scorers.registry import list_scorer_versions  # noqa: F401
import mlflow.server  # noqa: F401

assert mlflow.__version__ == "3.18.0", mlflow.__version__
out = subprocess.run([str(Path(sys.executable).parent / "mlflow"), "--version"], capture_output=True, text=True, check=True)
assert "3.18.0" in out.stdout, out.stdout
print(out.stdout.strip())
