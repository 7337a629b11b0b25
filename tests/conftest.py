import os

# Nothing may be fetched at run time; Chroma must not phone home.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
# The application key that labelled stores seal their labels with (a deployment sets its own).
os.environ.setdefault("LLM_IFC_KEY", "tests: the application key of this test session")
