"""AWS Lambda entry point: Mangum around the shared model app.

The engines load once per execution environment, at init, not per request.
"""

from mangum import Mangum

from model_runtime.app import create_app
from model_runtime.settings import RuntimeSettings

settings = RuntimeSettings.from_env()
app = create_app(settings.load_engines(), max_body_bytes=settings.max_body_bytes)
handler = Mangum(app, lifespan="off")
