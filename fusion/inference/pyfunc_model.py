"""MLflow "models from code" entry point: MLflow runs this file to build the fusion pyfunc (nothing is pickled).

Saved by `fusion.tracking.export.save_pyfunc`; the weights arrive as the artifact `model` (see nbs/44_pyfunc.ipynb).
"""

import mlflow

from fusion.inference.pyfunc import FusionPyfunc

mlflow.models.set_model(FusionPyfunc())
