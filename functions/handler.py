"""AWS Lambda entry point: Mangum around the shared model app.

The engines load once per execution environment, at init, not per request.
"""

import os

# onnxruntime's telemetry persists a device ID under $HOME at session creation; Lambda
# allows writes only under /tmp, and the warning it logs otherwise is noise.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

from mangum import Mangum

from model_runtime.app import create_app
from model_runtime.settings import RuntimeSettings

settings = RuntimeSettings.from_env()
app = create_app(
    settings.load_engines(),
    max_body_bytes=settings.max_body_bytes,
    cors_allow_origin=settings.cors_allow_origin,
)
handler = Mangum(app, lifespan="off")
