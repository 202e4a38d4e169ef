"""AR stylization test bench: replay simulator, pipeline and reports."""

from simulator.host_memory import keep_freed_memory

__version__ = "0.1.0"

# Before any frame is allocated: large freed buffers stay in the heap for reuse (every
# process that runs arsim code, the app and pool workers included; see host_memory.py).
keep_freed_memory()
