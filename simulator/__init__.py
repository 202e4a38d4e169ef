"""AR stylization test bench: replay simulator, pipeline and reports."""

__version__ = "0.1.0"
