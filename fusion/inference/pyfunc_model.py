"""MLflow "models from code" entry file: MLflow copies and runs this file to build the fusion pyfunc (nothing is pickled).

`fusion.inference.pyfunc` defines the model (`FusionPyfunc`: input decoding, the Predictor); this file only names it for
MLflow, which needs a path to a file that calls `mlflow.models.set_model`. Saved by
`fusion.tracking.export.save_pyfunc`; the weights arrive as the artifact `model` (see nbs/48_inference_pyfunc.ipynb).
"""

import mlflow

from fusion.inference.pyfunc import FusionPyfunc

mlflow.models.set_model(FusionPyfunc())
